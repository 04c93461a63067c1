"""Benchmark of width: the full pipeline (`tfx-tabular run`) on CSVs of many numeric columns.

For each width it generates (seeded, into a temporary folder) a CSV of `--rows` rows with that many numeric columns
shaped like pixel data and sensor readings (integers 0-255 that are mostly 0, Gaussian floats, a few constant
columns, a few columns with blanks), a few categorical columns and a binary label that depends on some of them;
writes a config declaring every numeric column `z_score` and every categorical column `categorical`; runs
`tfx-tabular run` as a subprocess, sampling the resident memory of its whole process tree (Beam workers
included); and prints wall time, peak RSS and the seconds of Transform and Trainer from the run's summary.

    .venv/bin/python bench/width.py [--widths 10 100 1000] [--rows 5000] [--max-rss-gb 10] [--timeout 1800]

Targets (checked at the end, exit code 1 when missed): the widest run under 3 minutes and under 4 GB peak RSS,
and its wall time at most 3x the narrowest run's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GB = 1024 ** 3
CATEGORICAL = {'color': 5, 'region': 20, 'device': 3, 'plan': 60}  # column -> distinct values
TARGET_WALL_S, TARGET_RSS_GB, TARGET_WALL_RATIO = 180, 4.0, 3.0


def generate_csv(path: str, rows: int, width: int, seed: int = 7) -> None:
    """`width` numeric columns (a quarter pixel-like integers, the rest Gaussian floats; one in fifty constant;
    one in twenty with 3% blanks), the CATEGORICAL columns, and a label learnable from both."""
    rng = np.random.default_rng(seed)
    columns, cells = [], []
    for j in range(width):
        if j % 50 == 49:
            values = np.full(rows, 1.0)
        elif j % 4 == 0:
            values = np.where(rng.random(rows) < 0.7, 0, rng.integers(0, 256, rows)).astype(float)
        else:
            values = rng.normal(10 * (j % 7), 1 + j % 5, rows)
        columns.append(values)
        text = [f'{v:g}' for v in values] if j % 4 == 0 or j % 50 == 49 else [f'{v:.4f}' for v in values]
        if j % 20 == 10:
            text = ['' if blank else t for t, blank in zip(text, rng.random(rows) < 0.03)]
        cells.append(text)
    numeric = np.stack(columns, axis=1)
    informative = numeric[:, [j for j in range(min(width, 40)) if j % 50 != 49][:8]]
    score = ((informative - informative.mean(0)) / (informative.std(0) + 1e-9)).sum(1) / np.sqrt(8)
    for name, n in CATEGORICAL.items():
        ids = rng.integers(0, n, rows)
        score = score + (ids % 3 - 1) * 0.5
        cells.append([f'{name}_{i}' for i in ids])
    label = np.where(score + rng.normal(0, 0.5, rows) > 0, 'yes', 'no')
    header = [f'pixel_{j:04d}' for j in range(width)] + list(CATEGORICAL) + ['label']
    cells.append(list(label))
    with open(path, 'w', encoding='utf-8') as f:
        f.write(','.join(header) + '\n')
        for row in zip(*cells):
            f.write(','.join(row) + '\n')


def write_config(folder: str, width: int, csv_path: str, train_steps: int) -> str:
    features = {f'pixel_{j:04d}': {'kind': 'numeric', 'scaling': 'z_score'} for j in range(width)}
    features.update({name: {'kind': 'categorical'} for name in CATEGORICAL})
    config = {
        'name': f'width_{width}',
        'data': {'csv': csv_path, 'eval_fraction': 0.2},
        'label': {'column': 'label', 'type': 'binary', 'classes': ['no', 'yes']},
        'features': features,
        'model': {'kind': 'keras_dnn', 'hidden_units': [32, 16], 'train_steps': train_steps, 'epochs': 2,
                  'eval_steps': 10, 'batch_size': 64},
        'serving': {'model_name': f'width_{width}', 'push_dir': os.path.join(folder, 'serving')},
        'run_dir': os.path.join(folder, 'run'),
    }
    path = os.path.join(folder, 'config.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        family = [process] + process.children(recursive=True)
    except psutil.Error:
        return 0
    for p in family:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_width(width: int, rows: int, tmp: str, train_steps: int, max_rss: float, timeout: float) -> dict:
    folder = os.path.join(tmp, f'width-{width}')
    os.makedirs(folder)
    csv_path = os.path.join(folder, 'data.csv')
    generate_csv(csv_path, rows, width)
    config_path = write_config(folder, width, csv_path, train_steps)
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    log = open(os.path.join(folder, 'stdout.txt'), 'w')
    started = time.time()
    process = subprocess.Popen([exe, 'run', '--config', config_path], stdout=log, stderr=subprocess.STDOUT,
                               cwd=folder)
    watched, peak, stopped = psutil.Process(process.pid), 0, ''
    while process.poll() is None:
        peak = max(peak, tree_rss(watched))
        elapsed = time.time() - started
        if peak > max_rss or elapsed > timeout:
            stopped = f'stopped at {peak / GB:.1f} GB after {elapsed:.0f} s'
            for p in watched.children(recursive=True) + [watched]:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            process.wait()
            break
        time.sleep(0.2)
    wall = time.time() - started
    log.close()
    summary_path = os.path.join(folder, 'run', 'summary.json')
    seconds = {}
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            seconds = {c['component']: c['seconds'] for c in json.load(f)['components']}
    return {'width': width, 'rows': rows, 'csv_mb': os.path.getsize(csv_path) / 1024 ** 2, 'wall_s': wall,
            'peak_gb': peak / GB, 'exit': process.returncode, 'stopped': stopped, 'seconds': seconds,
            'stdout': os.path.join(folder, 'stdout.txt')}


def print_table(results) -> None:
    print('| numeric columns | rows | CSV MB | wall s | peak RSS, process tree (GB) | Transform s | Trainer s | exit |')
    print('|---:|---:|---:|---:|---:|---:|---:|---|')
    for r in results:
        exit_text = r['stopped'] or str(r['exit'])
        print(f'| {r["width"]:,} | {r["rows"]:,} | {r["csv_mb"]:.1f} | {r["wall_s"]:.0f} | {r["peak_gb"]:.2f} | '
              f'{r["seconds"].get("Transform", float("nan")):.1f} | {r["seconds"].get("Trainer", float("nan")):.1f} '
              f'| {exit_text} |')


def check_targets(results) -> bool:
    narrow, wide = results[0], results[-1]
    checks = [
        (wide['wall_s'] <= TARGET_WALL_S, f'{wide["width"]:,} columns: wall {wide["wall_s"]:.0f} s '
                                          f'(limit {TARGET_WALL_S} s)'),
        (wide['peak_gb'] <= TARGET_RSS_GB, f'{wide["width"]:,} columns: peak RSS {wide["peak_gb"]:.2f} GB '
                                           f'(limit {TARGET_RSS_GB} GB)'),
        (wide['wall_s'] <= TARGET_WALL_RATIO * narrow['wall_s'],
         f'wall {wide["wall_s"]:.0f} s at {wide["width"]:,} columns is {wide["wall_s"] / narrow["wall_s"]:.2f}x '
         f'the {narrow["width"]:,}-column run (limit {TARGET_WALL_RATIO:.0f}x)'),
        (all(r['exit'] in (0, 3) and not r['stopped'] for r in results), 'every run finished (exit 0 or 3)'),
    ]
    for ok, text in checks:
        print(f'{"PASS" if ok else "FAIL"}: {text}')
    return all(ok for ok, _ in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--widths', type=int, nargs='+', default=[10, 100, 1000], help='numeric columns per run')
    parser.add_argument('--rows', type=int, default=5000)
    parser.add_argument('--train-steps', type=int, default=200)
    parser.add_argument('--max-rss-gb', type=float, default=10.0, help='stop a run whose process tree passes this')
    parser.add_argument('--timeout', type=float, default=1800, help='stop a run after this many seconds')
    parser.add_argument('--keep', action='store_true', help='keep the generated CSVs and run folders')
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='tfx-tabular-width-')
    print(f'Width benchmark: {args.rows:,} rows, {os.cpu_count()} cores, load average '
          f'{os.getloadavg()[0]:.1f}; runs under {tmp}', flush=True)
    results = []
    try:
        for width in sorted(args.widths):
            result = run_width(width, args.rows, tmp, args.train_steps, args.max_rss_gb * GB, args.timeout)
            results.append(result)
            components = ', '.join(f'{k} {v:.1f}s' for k, v in result['seconds'].items())
            print(f'{width:,} columns: wall {result["wall_s"]:.0f} s, peak RSS {result["peak_gb"]:.2f} GB, exit '
                  f'{result["stopped"] or result["exit"]}, load average {os.getloadavg()[0]:.1f}; {components}',
                  flush=True)
            if result['exit'] not in (0, 3):
                with open(result['stdout'], errors='replace') as f:
                    print('  ' + '  '.join(f.readlines()[-15:]), flush=True)
    finally:
        if not args.keep:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print_table(results)
    print()
    return 0 if check_targets(results) else 1


if __name__ == '__main__':
    sys.exit(main())
