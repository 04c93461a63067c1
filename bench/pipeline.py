"""Benchmark: the full pipeline on the shipped binary dataset, timed per component, with peak memory.

Runs in a fresh temporary run directory (so nothing comes from TFX's cache) and samples the resident memory
of this process and all its children (Beam workers) every 0.1 s.

    .venv/bin/python bench/pipeline.py [--config data/attrition/config.yaml]
    .venv/bin/python bench/pipeline.py --taxi

`--taxi` runs, each in its own process one after the other: the demo config; TFX's own Chicago taxi example
(`tfx.examples.chicago_taxi_pipeline.taxi_pipeline_native_keras`, the CSV and module file that ship inside the
`tfx` package, its own Beam arguments, LocalDagRunner); and this package on the same CSV, with the example's label
(`tips` over 20% of `fare`, as `big_tipper`; `tips` itself left out) and the config `tfx-tabular init` writes. It
prints each run's per-component seconds and wall time, and ours on the taxi CSV as a ratio of TFX's.
"""
import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from tfx_tabular.pipeline.core.config import load_config  # noqa: E402
from tfx_tabular.pipeline.runner import run_pipeline  # noqa: E402


class MemorySampler(threading.Thread):
    """Peak RSS of the process tree, overall and per pipeline component."""

    def __init__(self):
        super().__init__(daemon=True)
        self.me = psutil.Process()
        self.component = 'startup'
        self.peak = {}
        self.peak_main = 0
        self.stop = threading.Event()

    def tree_rss(self):
        total = 0
        for p in [self.me] + self.me.children(recursive=True):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def run(self):
        while not self.stop.is_set():
            rss = self.tree_rss()
            self.peak[self.component] = max(self.peak.get(self.component, 0), rss)
            self.peak_main = max(self.peak_main, self.me.memory_info().rss)
            time.sleep(0.1)


def run_ours(config_path: str) -> dict:
    """This package's pipeline on `config_path` in a fresh run directory: its table, and the figures as a dict."""
    config = load_config(config_path)
    with tempfile.TemporaryDirectory() as tmp:
        config.run_dir = os.path.join(tmp, 'run')
        config.serving.push_dir = os.path.join(tmp, 'serving')
        sampler = MemorySampler()
        sampler.start()

        def echo(line):
            match = re.match(r'\[\d+\] (\S+)\s+started', line)
            if match:
                sampler.component = match.group(1)
            print(line, flush=True)

        start = time.time()
        summary = run_pipeline(config, echo=echo)
        wall = time.time() - start
        sampler.stop.set()
        sampler.join()

    rows = len(open(config.csv_files[0]).readlines()) - 1
    mb = 1024 * 1024
    print(f'\nBenchmark: {config.name}, {rows} rows, {len(config.features)} features, '
          f'{config.models[0].train_steps} train steps, {os.cpu_count()} cores, beam args {" ".join(config.beam.args)}')
    print(f'| {"component":<17} | {"seconds":>8} | {"peak RSS, process tree (MB)":>28} |')
    print(f'|{"-" * 19}|{"-" * 9}:|{"-" * 29}:|')
    for c in summary['components']:
        peak = sampler.peak.get(c['component'], 0) / mb
        print(f'| {c["component"]:<17} | {c["seconds"]:>8.1f} | {peak:>28.0f} |')
    print(f'| {"total (wall)":<17} | {wall:>8.1f} | {max(sampler.peak.values()) / mb:>28.0f} |')
    print(f'Peak RSS of the main process alone: {sampler.peak_main / mb:.0f} MB; '
          f'accuracy {summary["metrics"]["overall"].get("accuracy")}, blessed {summary.get("blessed")}')
    return {'wall': wall, 'components': {c['component']: c['seconds'] for c in summary['components']}}


def run_tfx_taxi() -> dict:
    """TFX's own native-Keras Chicago taxi example, as shipped, in a fresh pipeline root."""
    from tfx import v1 as tfx
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as taxi
    from tfx_tabular.pipeline.results.summary import latest_run_components, open_store
    here = os.path.dirname(taxi.__file__)
    with tempfile.TemporaryDirectory() as tmp:
        metadata = os.path.join(tmp, 'metadata.db')
        pipeline = taxi._create_pipeline(  # pylint: disable=protected-access
            pipeline_name='chicago_taxi_native_keras', pipeline_root=os.path.join(tmp, 'root'),
            data_root=os.path.join(here, 'data', 'simple'),
            module_file=os.path.join(here, 'taxi_utils_native_keras.py'),
            serving_model_dir=os.path.join(tmp, 'serving'), metadata_path=metadata,
            beam_pipeline_args=taxi._beam_pipeline_args)  # pylint: disable=protected-access
        start = time.time()
        tfx.orchestration.LocalDagRunner().run(pipeline)
        wall = time.time() - start
        components = {c['component']: c['seconds'] for c in latest_run_components(open_store(metadata))}
    return {'wall': wall, 'components': components}


def taxi_csv_and_config(folder: str) -> str:
    """The taxi example's CSV with its label as a column (`big_tipper`: tips over 20% of the fare, 0 without a
    fare, as the example's preprocessing_fn derives it), `tips` left out; then `tfx-tabular init` on it. Returns
    the config path."""
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as taxi
    source = os.path.join(os.path.dirname(taxi.__file__), 'data', 'simple', 'data.csv')
    target = os.path.join(folder, 'taxi.csv')
    with open(source, newline='') as f, open(target, 'w', newline='') as out:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames if c != 'tips'] + ['big_tipper']
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        for row in reader:
            fare, tips = row['fare'], float(row['tips'] or 0)
            row['big_tipper'] = int(bool(fare) and tips > 0.2 * float(fare))
            del row['tips']
            writer.writerow(row)
    config = os.path.join(folder, 'taxi.yaml')
    subprocess.run([os.path.join(os.path.dirname(sys.executable), 'tfx-tabular'), 'init', target, '--label',
                    'big_tipper', '-o', config, '--force'], check=True)
    return config


def _in_subprocess(*args: str) -> dict:
    """One run of this script in its own process (a cold start, as a user gets); its figures from the last line."""
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *args], stdout=subprocess.PIPE, text=True)
    lines = done.stdout.splitlines()
    print('\n'.join(lines[:-1]), flush=True)
    if done.returncode or not lines or not lines[-1].startswith('{'):
        raise SystemExit(f'{" ".join(args)} failed (exit code {done.returncode})')
    return json.loads(lines[-1])


def compare_with_taxi(demo_config: str) -> None:
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs['demo (ours)'] = _in_subprocess('--config', demo_config, '--json')
        runs['taxi, TFX example'] = _in_subprocess('--tfx-taxi')
        runs['taxi (ours)'] = _in_subprocess('--config', taxi_csv_and_config(tmp), '--json')
    names = sorted({c for r in runs.values() for c in r['components']}, key=lambda c: (
        min(list(r['components']).index(c) for r in runs.values() if c in r['components']), c))
    print(f'\nSeconds per component ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end)')
    print('| component | ' + ' | '.join(runs) + ' |')
    print('|---|' + '---:|' * len(runs))
    for name in names:
        print(f'| {name} | ' + ' | '.join(f'{r["components"][name]:.1f}' if name in r['components'] else ''
                                          for r in runs.values()) + ' |')
    print('| **wall** | ' + ' | '.join(f'**{r["wall"]:.1f}**' for r in runs.values()) + ' |')
    ratio = runs['taxi (ours)']['wall'] / runs['taxi, TFX example']['wall']
    print(f'Ours on the taxi CSV: {ratio:.2f}x the wall time of TFX\'s own taxi example (target: at most 0.5x).')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='data/attrition/config.yaml')
    parser.add_argument('--taxi', action='store_true',
                        help="also run TFX's own Chicago taxi example and ours on its CSV")
    parser.add_argument('--tfx-taxi', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--json', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.taxi:
        compare_with_taxi(args.config)
    elif args.tfx_taxi:
        print(json.dumps(run_tfx_taxi()))
    else:
        figures = run_ours(args.config)
        if args.json:
            print(json.dumps(figures))


if __name__ == '__main__':
    main()
