"""Benchmark at scale: CsvExampleGen -> StatisticsGen -> SchemaGen -> Transform on 10k, 100k and 1M generated rows.

The rows are shaped like the shipped binary dataset: drawn from data/attrition's rows with every integer column
jittered within its range, streamed to a temporary folder (never the repository). Each size runs in a fresh run
directory with the config's Beam args (the multi-process DirectRunner by default) and the very components
`create_pipeline` builds. Per size it prints seconds per component (from MLMD), rows/s, and the peak RSS of the
process tree (Beam workers included), sampled with bench/pipeline.py's MemorySampler.

    .venv/bin/python bench/scale.py [--rows 10000 100000 1000000] [--config data/attrition/config.yaml]

Targets (checked at the end, exit code 1 when missed): peak memory roughly flat as rows grow (the largest size
within 1.5x of the smallest: nothing may hold the whole CSV in memory), and rows/s not falling as rows grow.
"""
import argparse
import csv
import os
import random
import re
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from bench.pipeline import MemorySampler  # noqa: E402
from tfx_tabular.pipeline.core.config import load_config  # noqa: E402

COMPONENTS = ('CsvExampleGen', 'StatisticsGen', 'SchemaGen', 'ImportSchemaGen', 'Transform')
MEMORY_GROWTH_LIMIT = 1.5  # peak RSS at the largest size / at the smallest
SPEED_TOLERANCE = 0.9  # rows/s of a larger size may not drop below 90% of the smaller one's
MB = 1024 * 1024


def generate_csv(source: str, target: str, rows: int, seed: int = 7) -> None:
    """Writes `rows` rows drawn from `source`, integer columns jittered by up to 5% of their range."""
    with open(source, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        header = next(reader)
        base = [row for row in reader if row]
    numeric = [i for i in range(len(header)) if all(re.fullmatch(r'-?\d+', r[i]) for r in base)]
    bounds = {i: (min(int(r[i]) for r in base), max(int(r[i]) for r in base)) for i in numeric}
    rng = random.Random(seed)
    with open(target + '.tmp', 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for _ in range(rows):
            row = list(rng.choice(base))
            for i in numeric:
                low, high = bounds[i]
                step = max(1, (high - low) // 20)
                row[i] = str(min(high, max(low, int(row[i]) + rng.randint(-step, step))))
            writer.writerow(row)
    os.replace(target + '.tmp', target)


def data_pipeline(config, n_classes: int):
    """The pipeline `create_pipeline` builds, cut down to the data-heavy components (plus SchemaGen for Transform)."""
    from tfx_tabular.pipeline.pipeline import create_pipeline
    pipeline = create_pipeline(config, n_classes)
    keep = [c for c in pipeline.components if c.id in COMPONENTS]
    for node in keep:
        for other in list(node.upstream_nodes):
            if other not in keep:
                node.remove_upstream_node(other)
        for other in list(node.downstream_nodes):
            if other not in keep:
                node.remove_downstream_node(other)
    beam_args = {c.id: list(c.executor_spec.beam_pipeline_args) for c in keep
                 if hasattr(c.executor_spec, 'beam_pipeline_args')}
    pipeline.components = keep  # the setter adds the pipeline's Beam args to each component again
    for c in keep:
        if c.id in beam_args:
            c.executor_spec.beam_pipeline_args = beam_args[c.id]
    return pipeline


def run_size(config_path: str, rows: int, tmp: str) -> dict:
    from tfx import v1 as tfx
    from tfx_tabular.pipeline.core.csv_checks import check_csv_files
    from tfx_tabular.pipeline.core.names import metadata_path
    from tfx_tabular.pipeline.runner import _Progress, _route_logs
    from tfx_tabular.pipeline.results.summary import latest_run_components, open_store

    config = load_config(config_path)
    folder = os.path.join(tmp, f'rows-{rows}')
    os.makedirs(folder)
    csv_path = os.path.join(folder, 'data.csv')
    started = time.time()
    generate_csv(config.csv_files[0], csv_path, rows)
    generated = time.time() - started
    config.data.csv = csv_path
    config.run_dir = os.path.join(folder, 'run')
    config.serving.push_dir = os.path.join(folder, 'serving')
    n_classes = len(config.label.classes or check_csv_files([csv_path], config.label.column, config.label.type))
    os.makedirs(config.run_path)

    sampler = MemorySampler()

    def echo(line):
        match = re.match(r'\[\d+\] (\S+)\s+started', line)
        if match:
            sampler.component = match.group(1)
            print(f'  {line}', flush=True)

    progress = _Progress(echo)
    restore = _route_logs(os.path.join(config.run_path, 'run.log'), progress)
    sampler.start()
    started = time.time()
    try:
        tfx.orchestration.LocalDagRunner().run(data_pipeline(config, n_classes))
    finally:
        wall = time.time() - started
        sampler.stop.set()
        sampler.join()
        restore()
    seconds = {c['component']: c['seconds'] for c in latest_run_components(open_store(metadata_path(config)))}
    return {'rows': rows, 'csv_mb': os.path.getsize(csv_path) / MB, 'generate_s': generated, 'wall_s': wall,
            'seconds': seconds, 'peak_tree_mb': max(sampler.peak.values()) / MB,
            'peak_main_mb': sampler.peak_main / MB,
            'peak_by_component_mb': {k: v / MB for k, v in sampler.peak.items()}}


def print_table(results) -> None:
    names = [c for c in COMPONENTS if any(c in r['seconds'] for r in results)]
    head = ['rows', 'CSV MB'] + [f'{n} s' for n in names] + ['total s', 'rows/s', 'peak RSS tree MB',
                                                              'peak RSS main MB']
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '|'.join('-' * (len(h) + 1) + ':' for h in head) + '|')
    for r in results:
        total = sum(r['seconds'].get(n, 0) for n in names)
        cells = [f'{r["rows"]:,}', f'{r["csv_mb"]:.0f}'] + [f'{r["seconds"].get(n, 0):.1f}' for n in names] + [
            f'{total:.1f}', f'{r["rows"] / total:,.0f}', f'{r["peak_tree_mb"]:,.0f}', f'{r["peak_main_mb"]:,.0f}']
        print('| ' + ' | '.join(cells) + ' |')


def check_targets(results) -> bool:
    ok = True
    first, last = results[0], results[-1]
    growth = last['peak_tree_mb'] / first['peak_tree_mb']
    flat = growth <= MEMORY_GROWTH_LIMIT
    ok &= flat
    print(f'{"PASS" if flat else "FAIL"}: peak RSS of the process tree {first["peak_tree_mb"]:,.0f} MB at '
          f'{first["rows"]:,} rows -> {last["peak_tree_mb"]:,.0f} MB at {last["rows"]:,} rows '
          f'(x{growth:.2f}, limit x{MEMORY_GROWTH_LIMIT})')
    speeds = [r['rows'] / sum(r['seconds'].values()) for r in results]
    for (a, sa), (b, sb) in zip(zip(results, speeds), zip(results[1:], speeds[1:])):
        holds = sb >= SPEED_TOLERANCE * sa
        ok &= holds
        print(f'{"PASS" if holds else "FAIL"}: rows/s {sa:,.0f} at {a["rows"]:,} rows -> {sb:,.0f} at '
              f'{b["rows"]:,} rows (may not fall below {SPEED_TOLERANCE:.0%})')
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=os.path.join(ROOT, 'data', 'attrition', 'config.yaml'),
                        help='config whose CSV shapes the generated rows and whose Beam args run the components')
    parser.add_argument('--rows', type=int, nargs='+', default=[10_000, 100_000, 1_000_000],
                        help='sizes to run, smallest first')
    args = parser.parse_args()
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')  # inherited by Beam's worker processes
    import warnings
    warnings.filterwarnings('ignore')
    config = load_config(args.config)
    print(f'Scale benchmark: {config.name}-shaped CSVs, {os.cpu_count()} cores, beam args '
          f'{" ".join(config.beam.args)}', flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix='tfx-tabular-scale-') as tmp:
        for rows in sorted(args.rows):
            print(f'{rows:,} rows:', flush=True)
            result = run_size(args.config, rows, tmp)
            results.append(result)
            print(f'  generated the CSV ({result["csv_mb"]:.0f} MB) in {result["generate_s"]:.1f}s; components '
                  f'{", ".join(f"{k} {v:.1f}s" for k, v in result["seconds"].items())}; peak RSS by component '
                  f'{", ".join(f"{k} {v:,.0f} MB" for k, v in result["peak_by_component_mb"].items())}',
                  flush=True)
            shutil.rmtree(os.path.join(tmp, f'rows-{rows}'))  # a 1M-row run leaves about 1 GB behind
    print()
    print_table(results)
    print()
    return 0 if check_targets(results) else 1


if __name__ == '__main__':
    sys.exit(main())
