"""Shared fixtures: small CSVs and configs written into a temp folder."""
import os
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'data')


def write_csv(path, header, rows):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(','.join(header) + '\n')
        for row in rows:
            f.write(','.join(str(v) for v in row) + '\n')
    return path


@pytest.fixture
def small_config(tmp_path):
    """Writes a CSV and a valid config next to it; returns (config_path, dict) for tests to mutate."""
    write_csv(tmp_path / 'd.csv', ['age', 'city', 'income', 'y'],
              [(20 + i % 40, ['a', 'b', 'c'][i % 3], 1000 + 10 * i, ['no', 'yes'][i % 2]) for i in range(30)])
    raw = {
        'name': 'small',
        'data': {'csv': 'd.csv'},
        'label': {'column': 'y', 'type': 'binary'},
        'features': {'age': {'kind': 'bucketized', 'buckets': 4}, 'city': {'kind': 'categorical'},
                     'income': {'kind': 'numeric', 'scaling': 'log'}},
        'slicing': ['city'],
        'serving': {'model_name': 'small'},
    }

    def write(data=None):
        path = tmp_path / 'config.yaml'
        path.write_text(yaml.safe_dump(data if data is not None else raw))
        return str(path)
    return write, raw


def run_cli(*args, cwd=None):
    """Runs the installed console script, as a user would."""
    import subprocess
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, timeout=1800)
