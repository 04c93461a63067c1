"""Shared fixtures: small CSVs and configs written into a temp folder."""
import os
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'data')


# Modules whose tests run pipelines, train models or serve trained ones: marked `pipeline`, so that
# `make test-fast` (pytest -m "not pipeline") runs the rest in a couple of minutes. `make test` runs everything.
PIPELINE_MODULES = {
    'test_baseline', 'test_compare', 'test_digits', 'test_embedding_metadata', 'test_fairness', 'test_hierarchical',
    'test_kubeflow_run_local', 'test_kubeflow_run_local_hierarchical', 'test_majority_gate', 'test_messy_csv_e2e',
    'test_models', 'test_pipeline_e2e', 'test_serving', 'test_statistics_gen', 'test_tfserving_conformance',
    'test_trainers', 'test_trees', 'test_tuning', 'test_wide_data'}
# Modules without a pipeline run that still take half a minute or more (real tf.Transform runs, compiles): sent out
# before the quick ones, so that the quick ones fill the end of both workers.
SLOW_FAST_MODULES = {'test_preprocessing', 'test_kubeflow'}


def pytest_collection_modifyitems(items):
    """Marks the pipeline modules, and puts the slowest modules first: `make test` hands whole modules to its two
    workers in this order (`--dist loadfile --no-loadscope-reorder`), so the short ones fill the end."""
    for item in items:
        if item.module.__name__.rsplit('.', 1)[-1] in PIPELINE_MODULES:
            item.add_marker(pytest.mark.pipeline)
    items.sort(key=lambda item: 0 if item.get_closest_marker('kubeflow_e2e') else
               1 if item.get_closest_marker('pipeline') else
               2 if item.module.__name__.rsplit('.', 1)[-1] in SLOW_FAST_MODULES else 3)


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


def run_transform(config, rows, spec, transform_dir):
    """The config's real preprocessing_fn analyzed and applied by tf.Transform on in-memory `rows` (raw feature
    `spec`), its graph and raw metadata written to `transform_dir` as Transform writes them.
    Returns (transformed rows, their metadata)."""
    import functools
    import tempfile
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
    from tfx_tabular.transforms.preprocessing import custom_config, preprocessing_fn
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    fn = functools.partial(preprocessing_fn, custom_config=custom_config(config))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp, force_tf_compat_v1=False):
        (transformed, transformed_metadata), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    return transformed, transformed_metadata


def shipped_config(tmp_path, name, config_file='config.yaml', edit=None):
    """A copy of the shipped config `data/<name>/<config_file>` and its CSV whose outputs go to tmp_path;
    `edit(raw)` may change the parsed YAML first. Returns the new config's path."""
    import shutil
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    shutil.copy(os.path.join(DATA, name, f'{name}.csv'), data_dir / f'{name}.csv')
    with open(os.path.join(DATA, name, config_file)) as f:
        raw = yaml.safe_load(f)
    raw['run_dir'] = str(tmp_path / 'run')
    raw['serving']['push_dir'] = str(tmp_path / 'serving')
    if edit:
        edit(raw)
    path = data_dir / config_file
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def prepare_config(tmp_path, name, **model):
    """A copy of the shipped config `name` whose outputs go to tmp_path, with model settings overridden."""
    return shipped_config(tmp_path, name, edit=lambda raw: raw['model'].update(model))


def run_pipeline_cli(config_path):
    """`tfx-tabular run --config`; returns the process result and the run's summary.json (None if absent)."""
    import json
    from tfx_tabular.pipeline.core.config import load_config
    result = run_cli('run', '--config', config_path)
    summary_path = os.path.join(load_config(config_path).run_path, 'summary.json')
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else None
    return result, summary


@pytest.fixture(scope='session')
def penguins_run(tmp_path_factory):
    """One real pipeline run on the shipped penguins data (multi-class), shared by every test module.

    Tests must not change its config file. They may run copies of it against the same run directory (to reuse
    the TFX cache), so run outputs on disk can change: take the first run's facts from the returned summary.
    """
    config_path = prepare_config(tmp_path_factory.mktemp('penguins'), 'penguins', train_steps=200)
    result, summary = run_pipeline_cli(config_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return config_path, result, summary


@pytest.fixture(scope='session')
def attrition_run(tmp_path_factory):
    """One real pipeline run on the shipped attrition data (binary), shared by every test module."""
    config_path = prepare_config(tmp_path_factory.mktemp('attrition'), 'attrition', train_steps=300)
    result, summary = run_pipeline_cli(config_path)
    assert result.returncode in (0, 3), result.stdout[-3000:] + result.stderr[-3000:]
    return config_path, result, summary


def free_port():
    """A free local port, for servers started on TF Serving's flags (port 0 there means no port)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def read_line(stream, timeout):
    """The next line of a server's stdout, or '' after `timeout` seconds (a server that never starts)."""
    import threading
    box = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else ''


def run_cli(*args, cwd=None):
    """Runs the installed console script, as a user would."""
    import subprocess
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, timeout=1800)
