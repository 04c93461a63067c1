"""A messy CSV end to end, as a new user runs it: `init`, `run`, `serve`, `predict`, nothing edited but the output
folders and the training length.

The file (tests/messy_csv.py `excel_weird_names`) has a byte-order mark, `;` between fields, decimal commas,
missing-value tokens in numeric columns, and column names TensorFlow and YAML trip over (`class` as the label,
spaces, `$ / ( ) - . : #`, non-ASCII, a leading digit, names differing only by case). The run goes through the
real Transform component with a second analysis phase (missing values filled with the mean, then scaled).
"""
import csv
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from tests import messy_csv
from tests.conftest import free_port, run_cli

LABEL = 'class'


@pytest.fixture(scope='module')
def messy_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp('messy')
    path = messy_csv.excel_weird_names(folder)
    config_path = str(folder / 'config.yaml')
    result = run_cli('init', path, '--label', LABEL, '--output', config_path)
    assert result.returncode == 0, result.stderr
    with open(config_path, encoding='utf-8') as f:
        raw = yaml.safe_load(f)
    raw['run_dir'], raw['serving']['push_dir'] = str(folder / 'run'), str(folder / 'serving')
    for model in raw.get('models') or [raw.setdefault('model', {})]:
        model['train_steps'] = 300
    with open(config_path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(raw, f, allow_unicode=True)
    result = run_cli('run', '--config', config_path)
    summary_path = folder / 'run' / 'summary.json'
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return raw, result, summary, folder


def test_init_then_run_pushes_a_model(messy_run):
    raw, result, summary, _ = messy_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary['blessed'] and summary['pushed'], summary.get('validation_failures')
    # init kept the awkward columns as features, under their own names.
    assert {'Total $ (USD)', 'x-y.z', 'données', '2nd value', 'Value', 'value', 'key: value'} <= set(raw['features'])
    assert raw['data']['delimiter'] == ';'
    assert summary['metrics']['overall']['accuracy'] > 0.8


def test_missing_numeric_values_were_filled_not_dropped(messy_run):
    """Rows with NA tokens in `Total $ (USD)` reached training: the normalised copy leaves them blank, the schema
    sees a float column with missing values, and Transform fills them with the mean."""
    _, result, summary, folder = messy_run
    assert result.returncode == 0, result.stderr[-3000:]
    from tensorflow_metadata.proto.v0 import schema_pb2
    from google.protobuf import text_format
    schema_file = next(os.path.join(d, f) for d, _, files in os.walk(folder / 'run' / 'pipeline_root' / 'SchemaGen')
                       for f in files if f == 'schema.pbtxt')
    schema = text_format.Parse(open(schema_file).read(), schema_pb2.Schema())
    features = {f.name: f for f in schema.feature}
    assert features['Total $ (USD)'].type == schema_pb2.FLOAT
    assert features['x-y.z'].type == schema_pb2.INT
    # Missing values make the column sometimes-absent (no fixed shape): Transform's mean fill is what serves it.
    assert not features['Total $ (USD)'].HasField('shape')


def test_served_model_answers_with_the_users_column_names(messy_run, tmp_path):
    raw, result, summary, folder = messy_run
    assert result.returncode == 0, result.stderr[-3000:]
    model = raw['serving']['model_name']
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    log = open(tmp_path / 'server.log', 'w')
    server = subprocess.Popen([exe, 'serve', '--model_base_path', os.path.join(folder, 'serving', model),
                               '--model_name', model, '--port', str(free_port()), '--rest_api_port', str(free_port())],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = server.stdout.readline()
        grpc_target = re.search(r'gRPC on (\S+:\d+)', line)
        rest = re.search(r'REST on (http://\S+:\d+)', line)
        assert grpc_target and rest, (line, (tmp_path / 'server.log').read_text()[-2000:])

        # GetModelMetadata over REST (once the version has loaded): serving_raw's inputs are the CSV's own names.
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f'{rest[1]}/v1/models/{model}/metadata', timeout=30) as response:
                    signatures = json.load(response)['metadata']['signature_def']['signature_def']
                break
            except urllib.error.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / 'server.log').read_text()[-2000:]
                time.sleep(0.5)
        features = [n for n, f in raw['features'].items() if f['kind'] != 'crossed']
        assert sorted(signatures['serving_raw']['inputs']) == sorted(features)

        # `predict` with a plain CSV of records named as the user knows them (one value left blank).
        rows = [[n for n in features]]
        for i in range(4):
            rows.append(['' if (n == 'Total $ (USD)' and i == 1) else
                         {'a/b': 'a', 'données': 'é', 'yes': 'y', '#tag': 'red'}.get(n, str(10 + 30 * i))
                         for n in features])
        records = tmp_path / 'records.csv'
        with open(records, 'w', newline='', encoding='utf-8') as f:
            csv.writer(f).writerows(rows)
        for api in ('classify', 'predict'):
            if api == 'predict':  # one tensor per column: no blanks there
                rows[2] = [v or '100' for v in rows[2]]
                with open(records, 'w', newline='', encoding='utf-8') as f:
                    csv.writer(f).writerows(rows)
            out = run_cli('predict', str(records), '--target', grpc_target[1], '--model', model, '--api', api,
                          '--output', 'json')
            assert out.returncode == 0, (api, out.stderr)
            answers = json.loads(out.stdout) if out.stdout.lstrip().startswith('[') else [
                json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            assert len(answers) == 4, out.stdout
            assert all(a['class'] in ('hi', 'lo') for a in answers), out.stdout
    finally:
        server.kill()
        server.wait(30)
        log.close()


def test_report_and_projector_speak_the_users_column_names(messy_run):
    _, result, summary, folder = messy_run
    assert result.returncode == 0, result.stderr[-3000:]
    report = open(summary['report'], encoding='utf-8').read()
    assert 'données=' in report  # a slice of the slicing column init chose, by its own name
    for importances in summary.get('feature_importances', {}).values():  # trees: by the user's column names
        assert {'Total $ (USD)', 'key: value', 'données'} <= {f['feature'] for f in importances}
    logdir = summary.get('embeddings_logdir')
    if logdir:  # DNN kinds: first-layer rows labelled by feature value
        labels = open(os.path.join(logdir, 'feature_values.metadata.tsv'), encoding='utf-8').read()
        assert 'données' in labels and 'key: value' in labels
