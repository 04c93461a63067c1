"""Benchmark: Classify over gRPC on `tfx-tabular serve`, next to the in-process SavedModel call (the floor).

For batches of 1 and 64 examples at concurrency 1, 8 and 32 (closed loop: each client thread sends its next
request when the last one is answered), prints p50/p99 latency and throughput of
  - gRPC: a ClassificationRequest (tf.Examples) through the tensorflow-serving-api stub to the server, a
    separate process on loopback, batching off (TF Serving's default);
  - gRPC, batching: the same with `--enable_batching` and the --batching_parameters below;
  - floor: the same serialized examples through the SavedModel's signature in this process, as
    `tf.saved_model.load(...).signatures[...]` calls it;
  - session: the same through a TensorFlow session callable in this process, the way TF Serving (and this
    server) runs a model: the cost of the model alone;
and the gRPC rows' ratios to the floor (measured again just before each gRPC cell), the CPU each request cost
(the bench process's; for gRPC rows, the client's and the server process's together) and the load average, since
client threads, server and whatever else runs share the machine's cores.

    .venv/bin/python bench/serving.py [--model_base_path serving_models/penguins] [--csv rows.csv |
        --examples 'Split-eval/*.gz' | --config data/penguins/config.yaml] [--seconds 4]

Examples come from --csv (rows typed by the model's serving_raw signature), --examples (TFRecord files of
serialized tf.Examples, gzipped or not), or --config (the eval split of that pipeline config's latest run).
Without --model_base_path it first trains the penguins model into a temporary folder (about 1.5 minutes) and
uses that run's eval split.
"""
import argparse
import csv
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCHES = (1, 64)
CONCURRENCY = (1, 8, 32)
# One batch thread: with each request's ops in its own thread, one thread running merged batches (which TensorFlow
# spreads over the cores) did better here than two running smaller ones.
BATCHING = 'max_batch_size { value: 1024 } num_batch_threads { value: 1 }'


def train_penguins(tmp: str):
    """Runs the pipeline on the shipped penguins data into `tmp`; returns (the model's base path, its run dir)."""
    import yaml
    from tfx_tabular.pipeline.core.config import load_config
    from tfx_tabular.pipeline.runner import run_pipeline
    with open(os.path.join(ROOT, 'data', 'penguins', 'config.yaml')) as f:
        raw = yaml.safe_load(f)
    raw['data']['csv'] = os.path.join(ROOT, 'data', 'penguins', 'penguins.csv')
    raw['run_dir'], raw['serving']['push_dir'] = os.path.join(tmp, 'run'), os.path.join(tmp, 'serving')
    raw['model']['train_steps'] = 100
    path = os.path.join(tmp, 'config.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump(raw, f)
    config = load_config(path)
    print('Training the penguins model for the benchmark...', flush=True)
    summary = run_pipeline(config, echo=lambda line: None)
    if not summary.get('pushed'):
        sys.exit('the penguins model was not pushed; see ' + summary['log'])
    return os.path.dirname(summary['pushed_to']), config.run_path


def eval_split_files(run_path: str):
    """The eval split CsvExampleGen wrote in the latest run under `run_path`."""
    splits = glob.glob(os.path.join(run_path, 'pipeline_root', '*ExampleGen', 'examples', '*', 'Split-eval'))
    if not splits:
        sys.exit(f'{run_path}: no ExampleGen eval split; run the pipeline first, or pass --csv / --examples')
    newest = max(splits, key=lambda p: int(os.path.basename(os.path.dirname(p))))
    return sorted(glob.glob(os.path.join(newest, '*')))


def read_examples(files):
    """Serialized tf.Examples from TFRecord files (gzipped when named *.gz)."""
    import tensorflow as tf
    examples = []
    for path in files:
        compression = 'GZIP' if path.endswith('.gz') else ''
        examples += [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)]
    return examples


def load_examples(args, model_dir: str, run_path: str):
    if args.csv:
        from tfx_tabular.serving.examples import raw_feature_dtypes, serialize
        with open(args.csv, newline='') as f:
            rows = list(csv.DictReader(f))
        return serialize(rows, raw_feature_dtypes(model_dir)), args.csv
    if args.examples:
        files = sorted(glob.glob(args.examples))
        if not files:
            sys.exit(f'--examples {args.examples}: no such files')
        return read_examples(files), args.examples
    if args.config:
        from tfx_tabular.pipeline.core.config import load_config
        run_path = load_config(args.config, check_csv=False).run_path
    if not run_path:
        sys.exit('pass --csv, --examples or --config to say which examples to send to this model')
    files = eval_split_files(run_path)
    return read_examples(files), os.path.dirname(files[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_server(base_path: str, name: str, batching_file: str = ''):
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    batching = ['--enable_batching', f'--batching_parameters_file={batching_file}'] if batching_file else []
    proc = subprocess.Popen([exe, 'serve', f'--model_base_path={base_path}', f'--model_name={name}',
                             f'--port={free_port()}', *batching],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    match = re.search(r'Serving gRPC on (\S+?)[,;]', line)
    if not match:
        proc.kill()
        sys.exit(f'the server did not start: {line!r}')
    return proc, match[1]


def cpu_seconds(pid: int = 0) -> float:
    """CPU time (user + system) used so far by process `pid` (0: this one), all its threads."""
    if not pid:
        return time.process_time()
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def closed_loop(call, concurrency: int, seconds: float, warmup: float = 0.5, server_pid: int = 0):
    """Latencies (s) of `call()` from `concurrency` threads over `seconds`, after a warm-up, and the CPU seconds
    this process and the server (if any) used meanwhile."""
    latencies, lock = [], threading.Lock()
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    cpu = [0.0]

    def measure():  # CPU of the measured seconds only, not of the warm-up
        time.sleep(max(0.0, measure_from - time.monotonic()))
        before = cpu_seconds() + (cpu_seconds(server_pid) if server_pid else 0)
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu[0] = cpu_seconds() + (cpu_seconds(server_pid) if server_pid else 0) - before

    def worker():
        mine = []
        while True:
            t0 = time.monotonic()
            if t0 >= stop_at:
                break
            call()
            t1 = time.monotonic()
            if t0 >= measure_from:
                mine.append(t1 - t0)
        with lock:
            latencies.extend(mine)
    threads = [threading.Thread(target=worker) for _ in range(concurrency)] + [threading.Thread(target=measure)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, cpu[0]


def stats(measured, rows: int, seconds: float):
    latencies, cpu = measured
    lat = np.array(latencies) * 1000
    return {'p50_ms': float(np.percentile(lat, 50)), 'p99_ms': float(np.percentile(lat, 99)),
            'rows_per_s': len(lat) * rows / seconds, 'requests': len(lat), 'cpu_us': cpu / len(lat) * 1e6}


def session_floor(model_dir: str, signature_name: str):
    """The signature as a session callable, fed and fetched by tensor name, as TF Serving runs it."""
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.saved_model import loader_impl
    session = tf.compat.v1.Session(graph=tf.Graph())
    meta_graph = loader_impl.SavedModelLoader(model_dir).load(session, ['serve'])
    signature = meta_graph.signature_def[signature_name]
    options = config_pb2.CallableOptions(feed=[signature.inputs['inputs'].name],
                                         fetch=[t.name for t in signature.outputs.values()])
    return session._make_callable_from_options(options)  # noqa: SLF001 - TF's own API


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model_base_path', help='<push_dir>/<model> of a model with a classification signature '
                                                  '(default: train penguins first)')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--csv', help='CSV rows to send (typed by the model\'s serving_raw signature)')
    source.add_argument('--examples', help='glob of TFRecord files of serialized tf.Examples to send')
    source.add_argument('--config', help='pipeline config whose latest run\'s eval split to send')
    parser.add_argument('--signature', default='serving_default', help='classification signature (default '
                                                                       'serving_default)')
    parser.add_argument('--seconds', type=float, default=4.0, help='measured seconds per cell (default 4)')
    parser.add_argument('--batching_parameters', default=BATCHING,
                        help=f'BatchingParameters (text) of the batching run (default: {BATCHING})')
    args = parser.parse_args()
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc
    from tfx_tabular.serving import model_config as mc

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        run_path = None
        if args.model_base_path:
            base = os.path.abspath(args.model_base_path)
        else:
            base, run_path = train_penguins(tmp)
        folders = mc.version_folders(base)
        if not folders:
            sys.exit(f'{base}: no model version; pass --model_base_path <push_dir>/<model>')
        model_dir = os.path.join(base, folders[max(folders)])
        examples, source = load_examples(args, model_dir, run_path)
        if len(examples) < max(BATCHES):
            examples = (examples * max(BATCHES))[:max(BATCHES)]
        name = os.path.basename(base)
        signature = tf.saved_model.load(model_dir).signatures[args.signature]
        session = session_floor(model_dir, args.signature)

        results, reference = {}, {}
        floor_call = {batch: (lambda inputs=tf.constant(examples[:batch]): signature(inputs=inputs))
                      for batch in BATCHES}
        for batch in BATCHES:
            array = np.array(examples[:batch], dtype=object)
            for c in CONCURRENCY:
                results[('floor', batch, c)] = stats(closed_loop(floor_call[batch], c, args.seconds), batch,
                                                     args.seconds)
                results[('session', batch, c)] = stats(
                    closed_loop(lambda: session(array), c, args.seconds), batch, args.seconds)
        batching_file = os.path.join(tmp, 'batching.txt')
        with open(batching_file, 'w') as f:
            f.write(args.batching_parameters)
        for batching in (False, True):
            proc, target = start_server(base, name, batching_file if batching else '')
            try:
                channel = grpc.insecure_channel(target)
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                for batch in BATCHES:
                    request = classification_pb2.ClassificationRequest()
                    request.model_spec.name, request.model_spec.signature_name = name, args.signature
                    for e in examples[:batch]:
                        request.input.example_list.examples.add().ParseFromString(e)
                    stub.Classify(request, timeout=30)
                    for c in CONCURRENCY:
                        kind = 'gRPC, batching' if batching else 'gRPC'
                        # The floor again, just before: the load of a shared machine drifts over the minutes a run
                        # takes, so a ratio is only worth something between two measurements seconds apart.
                        reference[(kind, batch, c)] = stats(closed_loop(floor_call[batch], c, args.seconds), batch,
                                                            args.seconds)
                        measured = closed_loop(lambda: stub.Classify(request, timeout=30), c, args.seconds,
                                               server_pid=proc.pid)
                        results[(kind, batch, c)] = stats(measured, batch, args.seconds)
                channel.close()
            finally:
                proc.terminate()
                proc.wait(30)

    load = ' to '.join(f'{x:.1f}' for x in (load_before, os.getloadavg()[0]))
    print(f'\nBenchmark: Classify on {name} ({len(examples[0])}-byte tf.Examples from {source}), {os.cpu_count()} '
          f'cores, {args.seconds:g} s per cell, client threads and server on the same machine; load average '
          f'{load}. CPU µs/req: this process\'s CPU (gRPC rows: client and server process) per request; gRPC rows '
          f'are compared with the floor measured just before each of them ({args.seconds:g} s, same batch and '
          f'concurrency), the floor rows show the first measurement')
    print('| path | batch | concurrency | p50 ms | p99 ms | rows/s | CPU µs/req | p50 vs floor | rows/s vs floor |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for kind in ('floor', 'session', 'gRPC', 'gRPC, batching'):
        for batch in BATCHES:
            for c in CONCURRENCY:
                r = results.get((kind, batch, c))
                if r is None:
                    continue
                floor = reference.get((kind, batch, c), results[('floor', batch, c)])
                print(f'| {kind} | {batch} | {c} | {r["p50_ms"]:.2f} | {r["p99_ms"]:.2f} | {r["rows_per_s"]:,.0f} | '
                      f'{r["cpu_us"]:,.0f} | {r["p50_ms"] / floor["p50_ms"]:.1f}x | '
                      f'{r["rows_per_s"] / floor["rows_per_s"]:.2f}x |')


if __name__ == '__main__':
    main()
