"""The real pipeline (TFX LocalDagRunner, multi-process Beam DirectRunner, MLMD in SQLite) on shipped data.

Runs through the installed `tfx-tabular` command as a user would, then checks what it left behind: artifacts
on disk and in MLMD, metrics against the majority-class rate, the pushed SavedModel classifying raw examples,
the TFX cache on a second run, and a frozen schema stopping drifted data before training.
"""
import csv
import html
import json
import os

import pytest
import tensorflow as tf
import yaml
from tensorflow.core.protobuf import saved_model_pb2

from tfx_tabular.pipeline.core.config import load_config
from tfx_tabular.pipeline.results.summary import open_store
from tfx_tabular.serving.examples import raw_feature_dtypes, serialize
from tests.conftest import run_cli, run_pipeline_cli as _run


def _rows(config):
    with open(config.csv_files[0], newline='') as f:
        return list(csv.DictReader(f))


@pytest.fixture
def penguins(penguins_run):
    return penguins_run


@pytest.fixture
def attrition(attrition_run):
    return attrition_run


EXPECTED_COMPONENTS = ['CsvExampleGen', 'StatisticsGen', 'SchemaGen', 'ExampleValidator', 'AnomalyGate',
                       'Transform', 'Trainer', 'EmbeddingMetadataGen', 'ServedModel', 'Evaluator', 'MajorityGate',
                       'Pusher']


@pytest.mark.parametrize('run', ['penguins', 'attrition'])
def test_every_component_ran_and_every_artifact_is_in_mlmd(run, request):
    config_path, result, summary = request.getfixturevalue(run)
    expected = list(EXPECTED_COMPONENTS)
    if load_config(config_path).fairness:
        expected.insert(expected.index('MajorityGate'), 'FairnessGate')
    assert [c['component'] for c in summary['components']] == expected
    assert all(c['state'] == 'ran' for c in summary['components'])
    for name in expected:  # progress: one start and one finish line per component
        assert f'{name:<20} started' in result.stdout and f'{name:<20} done in' in result.stdout
    store = open_store(summary['metadata'])
    outputs = [a for c in summary['components'] for a in c['outputs'].values()]
    assert {'Examples', 'ExampleStatistics', 'Schema', 'ExampleAnomalies', 'TransformGraph', 'Model',
            'ModelEvaluation', 'ModelBlessing', 'PushedModel', 'tfx_tabular.EmbeddingMetadata'} <= {
        a['type'] for a in outputs}
    recorded = {a.id: a for a in store.get_artifacts_by_id([a['mlmd_id'] for a in outputs])}
    for artifact in outputs:
        assert recorded[artifact['mlmd_id']].uri == artifact['uri']
        assert os.path.exists(artifact['uri']), artifact
    assert os.path.exists(os.path.join(summary['run_dir'], 'training_curves.png'))
    assert 'Summary:' in result.stdout and 'Eval metrics' in result.stdout


@pytest.mark.parametrize('run', ['penguins', 'attrition'])
def test_accuracy_beats_majority_class_and_slices_reported(run, request):
    config_path, _, summary = request.getfixturevalue(run)
    config = load_config(config_path)
    overall = summary['metrics']['overall']
    assert overall['accuracy'] > summary['label']['majority_class_rate'], overall
    assert overall['example_count'] > 0
    for column in config.slicing:
        assert any(s.startswith(f'{column}=') for s in summary['metrics']), summary['metrics'].keys()
    slice_counts = [m['example_count'] for s, m in summary['metrics'].items() if s.startswith(config.slicing[0])]
    assert sum(slice_counts) == overall['example_count']
    if config.label.type == 'binary':
        assert 0.5 < overall['auc'] <= 1
    else:
        assert {f'recall/{c}' for c in summary['label']['classes']} <= set(overall)


def _pushed_model(summary):
    assert summary['blessed'] and summary['pushed'], summary.get('validation_failures')
    base = summary['pushed_to']
    assert os.path.isfile(os.path.join(base, 'saved_model.pb'))
    assert os.path.basename(base).isdigit()  # <push_dir>/<model_name>/<integer version>
    return base


def test_pushed_model_classifies_raw_examples(penguins):
    config_path, _, summary = penguins
    config = load_config(config_path)
    path = _pushed_model(summary)
    model = tf.saved_model.load(path)
    rows = _rows(config)[::15]
    examples = serialize(rows, raw_feature_dtypes(path))
    out = model.signatures['serving_default'](inputs=tf.constant(examples))
    classes = [c.decode() for c in out['classes'].numpy()[0]]
    assert sorted(classes) == sorted(summary['label']['classes'])
    scores = out['scores'].numpy()
    assert scores.shape == (len(rows), 3)
    assert abs(scores.sum(axis=1) - 1).max() < 1e-4
    predicted = [classes[i] for i in scores.argmax(axis=1)]
    correct = sum(p == r['species'] for p, r in zip(predicted, rows))
    assert correct / len(rows) >= 0.9, list(zip(predicted, [r['species'] for r in rows]))

    # TF Serving's Classify API accepts only a classification signature with one `inputs` tensor.
    with open(os.path.join(summary['pushed_to'], 'saved_model.pb'), 'rb') as f:
        signature = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0].signature_def['serving_default']
    assert signature.method_name == 'tensorflow/serving/classify'
    assert list(signature.inputs) == ['inputs'] and {'classes', 'scores'} <= set(signature.outputs)

    # The raw-tensor signature gives the same answer as the tf.Example one.
    dtypes = raw_feature_dtypes(path)
    raw = {c: tf.constant([dtypes[c].as_numpy_dtype(r[c]) if dtypes[c] != tf.string else r[c] for r in rows],
                          dtype=dtypes[c]) for c in dtypes}
    raw_out = model.signatures['serving_raw'](**raw)
    assert abs(raw_out['scores'].numpy() - scores).max() < 1e-5


def test_pushed_binary_model_scores_positive_class(attrition):
    config_path, _, summary = attrition
    if not summary['blessed']:
        pytest.fail(f'attrition model not blessed: {summary["validation_failures"]}')
    path = _pushed_model(summary)
    model = tf.saved_model.load(path)
    rows = _rows(load_config(config_path))[:50]
    out = model.signatures['serving_default'](inputs=tf.constant(serialize(rows, raw_feature_dtypes(path))))
    assert [c.decode() for c in out['classes'].numpy()[0]] == ['No', 'Yes']
    scores = out['scores'].numpy()
    positive = out['probabilities'].numpy()[:, 0]
    assert abs(scores[:, 1] - positive).max() < 1e-6
    # People who left get a higher mean score than people who stayed.
    left = [p for p, r in zip(positive, rows) if r['Attrition'] == 'Yes']
    stayed = [p for p, r in zip(positive, rows) if r['Attrition'] == 'No']
    assert sum(left) / len(left) > sum(stayed) / len(stayed)


def test_second_run_is_served_from_cache(penguins):
    config_path, _, first = penguins
    result, summary = _run(config_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert summary['all_cached'] and all(c['state'] == 'cached' for c in summary['components'])
    assert 'every component was reused from TFX\'s cache' in result.stdout
    assert 'reused from cache' in result.stdout
    assert summary['metrics'] == first['metrics']


def test_frozen_schema_stops_drifted_data_before_training(penguins, tmp_path):
    config_path, _, _ = penguins
    config = load_config(config_path)
    # A copy of the config that shares the run's MLMD but keeps its frozen schema to itself.
    raw = yaml.safe_load(open(config_path))
    raw['data']['csv'] = config.csv_files[0]
    (tmp_path / 'frozen').mkdir()
    frozen_config = tmp_path / 'frozen' / 'config.yaml'
    frozen_config.write_text(yaml.safe_dump(raw))
    frozen = run_cli('schema', 'freeze', '--config', str(frozen_config))
    assert frozen.returncode == 0, frozen.stderr
    schema_path = load_config(str(frozen_config)).frozen_schema_path
    assert os.path.isfile(schema_path) and 'feature {' in open(schema_path).read()

    rows = _rows(config)
    for i, row in enumerate(rows):
        if i % 10 == 0:
            row['island'] = 'Atlantis'          # a category the schema never saw
        if i % 7 == 0:
            row['bill_length_mm'] = ''          # blanks in a column the schema saw always filled
    drifted_dir = tmp_path / 'drifted'
    drifted_dir.mkdir()
    with open(drifted_dir / 'penguins.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    raw['data']['csv'] = str(drifted_dir / 'penguins.csv')
    raw['frozen_schema'] = schema_path
    drifted_config = drifted_dir / 'config.yaml'
    drifted_config.write_text(yaml.safe_dump(raw))

    result, _ = _run(str(drifted_config))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'the run stopped before training' in result.stderr
    assert "column 'island'" in result.stderr and 'Atlantis' in result.stderr
    assert "column 'bill_length_mm'" in result.stderr
    assert 'Traceback' not in result.stderr
    assert 'ImportSchemaGen' in result.stdout and 'Transform' not in result.stdout

    # Text in a numeric column does not even reach the schema check: one line naming the row, before Beam.
    rows[3]['bill_length_mm'] = 'unknown'
    with open(drifted_dir / 'penguins.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result, _ = _run(str(drifted_config))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert "row 5, column 'bill_length_mm' holds 'unknown'" in result.stderr


def test_model_below_threshold_is_not_blessed_nor_pushed(attrition):
    config_path, _, first = attrition
    raw = yaml.safe_load(open(config_path))
    raw['evaluation'] = {'thresholds': {'accuracy': 0.5, 'auc': 0.995}}
    strict = os.path.join(os.path.dirname(config_path), 'strict.yaml')
    with open(strict, 'w') as f:
        yaml.safe_dump(raw, f)
    pushed_before = sorted(os.listdir(os.path.dirname(first['pushed_to'])))
    result, summary = _run(strict)
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    states = {c['component']: c['state'] for c in summary['components']}
    assert states['Trainer'] == 'cached' and states['Evaluator'] == 'ran'  # only evaluation changed
    assert summary['blessed'] is False and summary['pushed'] is False
    assert len(summary['validation_failures']) == 1
    failure = summary['validation_failures'][0]
    assert failure.startswith('auc = ') and 'on overall fails lower bound 0.995' in failure
    assert 'Blessed: NO' in result.stdout and failure in result.stdout
    assert sorted(os.listdir(os.path.dirname(first['pushed_to']))) == pushed_before


def test_model_change_retrains_and_reuses_transform(penguins, tmp_path):
    config_path, _, _ = penguins
    raw = yaml.safe_load(open(config_path))
    raw['data']['csv'] = load_config(config_path).csv_files[0]
    raw['model'].update(kind='keras_wide_deep', hidden_units=[8])
    raw['serving']['push_dir'] = str(tmp_path / 'serving')  # keep the shared run's push directory as it is
    wide = tmp_path / 'wide.yaml'
    wide.write_text(yaml.safe_dump(raw))
    result, summary = _run(str(wide))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    states = {c['component']: c['state'] for c in summary['components']}
    assert all(states[c] == 'cached' for c in ('CsvExampleGen', 'StatisticsGen', 'Transform')), states
    assert states['Trainer'] == 'ran' and states['Evaluator'] == 'ran'
    assert summary['metrics']['overall']['accuracy'] >= 0.9
    assert summary['pushed_to'].startswith(str(tmp_path / 'serving' / 'penguins'))


@pytest.mark.parametrize('run', ['penguins', 'attrition'])
def test_report_is_self_contained_with_pictures(run, request):
    config_path, result, first = request.getfixturevalue(run)
    report = first['report']
    assert report.endswith('report.html') and f'Report (open in a browser): {report}' in result.stdout
    # Later tests re-run copies of the config in the same run directory: read the report with its own summary.
    summary = json.load(open(os.path.join(os.path.dirname(report), 'summary.json')))
    page = open(report, encoding='utf-8').read()
    assert page.count('src="data:image/png;base64,') >= 4  # metrics, confusion matrix, slices, curves
    assert 'src="http' not in page and 'href="http' not in page
    for name in summary['metrics']:
        assert f'<td>{name}</td>' in page
    for class_name in summary['label']['classes']:
        assert class_name in page
    assert ('Not blessed' in page) != summary['blessed']
    for failure in summary['validation_failures']:
        assert html.escape(failure) in page
