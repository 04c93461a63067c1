"""Benchmark: the full pipeline on the shipped binary dataset, timed per component, with peak memory.

Runs in a fresh temporary run directory (so nothing comes from TFX's cache) and samples the resident memory
of this process and all its children (Beam workers) every 0.1 s.

    .venv/bin/python bench/pipeline.py [--config data/attrition/config.yaml]
"""
import argparse
import os
import re
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='data/attrition/config.yaml')
    args = parser.parse_args()
    config = load_config(args.config)
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


if __name__ == '__main__':
    main()
