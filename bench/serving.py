"""Benchmark: Classify over gRPC on `tfx-tabular serve`, next to the in-process SavedModel call (the floor).

For batches of 1 and 64 examples at concurrency 1, 8 and 32 (closed loop: each client thread sends its next
request when the last one is answered), prints p50/p99 latency and throughput of
  - gRPC: a ClassificationRequest (tf.Examples) through the tensorflow-serving-api stub to the server, a
    separate process on loopback, with server-side batching on (and, with --compare_batching, off);
  - floor: the same serialized examples through the SavedModel's serving_default signature in this process;
and their ratios. Runs on whatever cores the machine has; the client threads share them with the server.

    .venv/bin/python bench/serving.py [--model_base_path serving_models/penguins] [--seconds 4]

Without --model_base_path it first trains the penguins model into a temporary folder (about 1.5 minutes).
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCHES = (1, 64)
CONCURRENCY = (1, 8, 32)


def train_penguins(tmp: str) -> str:
    """Runs the pipeline on the shipped penguins data into `tmp`; returns the model's base path."""
    import yaml
    from pipeline.config import load_config
    from pipeline.runner import run_pipeline
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
    return os.path.dirname(summary['pushed_to'])


def start_server(base_path: str, batching: bool):
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    proc = subprocess.Popen([exe, 'serve', '--model_base_path', base_path, '--port', '0',
                             f'--enable_batching={str(batching).lower()}'],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    match = re.search(r'Serving gRPC on (\S+?);', line)
    if not match:
        proc.kill()
        sys.exit(f'the server did not start: {line!r}')
    return proc, match[1]


def closed_loop(call, concurrency: int, seconds: float, warmup: float = 0.5):
    """Latencies (s) of `call()` from `concurrency` threads over `seconds`, after a warm-up."""
    latencies, lock = [], threading.Lock()
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds

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
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def stats(latencies, rows: int, seconds: float):
    lat = np.array(latencies) * 1000
    return {'p50_ms': float(np.percentile(lat, 50)), 'p99_ms': float(np.percentile(lat, 99)),
            'rows_per_s': len(lat) * rows / seconds, 'requests': len(lat)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model_base_path', help='<push_dir>/<model> of a model with serving_raw/serving_default '
                                                  '(default: train penguins first)')
    parser.add_argument('--seconds', type=float, default=4.0, help='measured seconds per cell (default 4)')
    parser.add_argument('--compare_batching', action='store_true', help='also run the server without batching')
    args = parser.parse_args()
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc
    from serving import model_config as mc
    from serving.examples import raw_feature_dtypes, serialize

    with tempfile.TemporaryDirectory() as tmp:
        base = args.model_base_path or train_penguins(tmp)
        versions = mc.list_versions(base)
        if not versions:
            sys.exit(f'{base}: no model version; pass --model_base_path <push_dir>/<model>')
        model_dir = os.path.join(base, str(versions[-1]))
        model = tf.saved_model.load(model_dir)
        signature = model.signatures['serving_default']
        with open(os.path.join(ROOT, 'data', 'penguins', 'penguins.csv'), newline='') as f:
            rows = list(csv.DictReader(f))
        examples = serialize(rows, raw_feature_dtypes(model_dir))
        name = os.path.basename(os.path.abspath(base))

        results = {}
        for batch in BATCHES:
            inputs = tf.constant(examples[:batch])
            for c in CONCURRENCY:
                results[('floor', batch, c)] = stats(
                    closed_loop(lambda: signature(inputs=inputs), c, args.seconds), batch, args.seconds)
        for batching in (True, False) if args.compare_batching else (True,):
            proc, target = start_server(base, batching)
            try:
                channel = grpc.insecure_channel(target)
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                for batch in BATCHES:
                    request = classification_pb2.ClassificationRequest()
                    request.model_spec.name = name
                    for e in examples[:batch]:
                        request.input.example_list.examples.add().ParseFromString(e)
                    stub.Classify(request, timeout=30)
                    for c in CONCURRENCY:
                        latencies = closed_loop(lambda: stub.Classify(request, timeout=30), c, args.seconds)
                        results[('grpc' if batching else 'grpc, no batching', batch, c)] = stats(
                            latencies, batch, args.seconds)
                channel.close()
            finally:
                proc.terminate()
                proc.wait(30)

    print(f'\nBenchmark: Classify on {name} ({len(examples[0])}-byte tf.Examples), {os.cpu_count()} cores, '
          f'{args.seconds:g} s per cell, client threads and server on the same machine')
    print('| path | batch | concurrency | p50 ms | p99 ms | rows/s | p50 vs floor | rows/s vs floor |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for kind in ('floor', 'grpc', 'grpc, no batching'):
        for batch in BATCHES:
            for c in CONCURRENCY:
                r = results.get((kind, batch, c))
                if r is None:
                    continue
                floor = results[('floor', batch, c)]
                print(f'| {kind} | {batch} | {c} | {r["p50_ms"]:.2f} | {r["p99_ms"]:.2f} | {r["rows_per_s"]:,.0f} | '
                      f'{r["p50_ms"] / floor["p50_ms"]:.1f}x | {r["rows_per_s"] / floor["rows_per_s"]:.2f}x |')


if __name__ == '__main__':
    main()
