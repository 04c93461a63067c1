"""The served model as the baseline: ServedModel, the Evaluator executor without one, change thresholds
(evaluation.max_drop) failing a worse model, and the report's calibration, fairness and baseline sections."""
import html
import json
import os

import pytest
import tensorflow as tf
import yaml
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from tfx_tabular.components.evaluator.eval_config import eval_config
from tfx_tabular.components.evaluator.component import BaselineEvaluator
from tfx_tabular.components.evaluator.executor import sliced_schema, without_baseline
from tfx_tabular.components.served_model.component import ServedModel
from tfx_tabular.components.served_model.executor import Executor as ServedModelExecutor
from tfx_tabular.components.served_model.executor import FOUND, baseline_found, served_version
from tfx_tabular.pipeline.core.config import load_config
from tfx_tabular.pipeline.results.summary import fairness_by_class
from tfx_tabular.serving import model_config as mc
from tests.conftest import DATA, run_pipeline_cli


def _save_model(path, value: float):
    """A real (tiny) SavedModel whose `f()` returns `value`, so a copy can be told apart from another version."""
    module = tf.Module()
    module.f = tf.function(lambda: tf.constant(value), input_signature=[])
    tf.saved_model.save(module, str(path))


def _run_served_model(base, out):
    model = standard_artifacts.Model()
    model.uri = str(out)
    os.makedirs(model.uri, exist_ok=True)
    ServedModelExecutor().Do({}, {'model': [model]}, {'model_base_path': str(base)})
    return model


def test_served_model_copies_the_newest_version(tmp_path):
    base = tmp_path / 'serving' / 'm'
    _save_model(base / '100', 1.0)
    _save_model(base / '200', 2.0)
    (base / '300').mkdir()                      # no saved_model.pb: TF Serving ignores it, so must we
    _save_model(base / '.incoming-abc', 3.0)    # a push in progress (serving/push.py stages under this name)
    assert served_version(str(base)) == 200
    model = _run_served_model(base, tmp_path / 'out')
    assert model.get_int_custom_property(FOUND) == 1
    assert model.get_int_custom_property('version') == 200
    assert model.get_string_custom_property('source') == str(base / '200')
    # Where TFX's Evaluator looks for the model inside a Model artifact:
    served = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    assert served == os.path.join(model.uri, 'Format-Serving')
    assert float(tf.saved_model.load(served).f()) == 2.0
    assert sorted(os.listdir(model.uri)) == ['Format-Serving']  # no staging folder left behind
    assert baseline_found({'baseline_model': [model]})


def test_served_model_follows_a_rollback_pin(tmp_path):
    push_dir = tmp_path / 'serving'
    _save_model(push_dir / 'm' / '100', 1.0)
    _save_model(push_dir / 'm' / '200', 2.0)
    config = mc.update_models_config(str(push_dir))
    mc.pin(mc.find_model(config, 'm'), 100)
    mc.write_models_config(mc.models_config_path(str(push_dir)), config)
    assert served_version(str(push_dir / 'm')) == 100
    model = _run_served_model(push_dir / 'm', tmp_path / 'out')
    assert model.get_int_custom_property('version') == 100
    assert float(tf.saved_model.load(os.path.join(model.uri, 'Format-Serving')).f()) == 1.0


@pytest.mark.parametrize('layout', ['missing', 'empty', 'no saved model'])
def test_served_model_with_nothing_served_writes_nothing(tmp_path, layout):
    base = tmp_path / 'serving' / 'm'
    if layout != 'missing':
        base.mkdir(parents=True)
    if layout == 'no saved model':
        (base / '100').mkdir()
    assert served_version(str(base)) is None
    model = _run_served_model(base, tmp_path / 'out')
    assert model.get_int_custom_property(FOUND) == 0
    assert model.get_string_custom_property('base_path') == str(base)
    assert os.listdir(model.uri) == []
    assert not baseline_found({'baseline_model': [model]})


def test_eval_config_has_a_baseline_and_max_drop_becomes_change_thresholds(attrition_run):
    config = load_config(attrition_run[0])
    config.evaluation.max_drop = {'accuracy': 0.02, 'auc': 0.05}
    config_proto = eval_config(config, 2)
    assert [(s.name, s.is_baseline) for s in config_proto.model_specs] == [('candidate', False), ('baseline', True)]
    changes = {m.class_name: t.threshold.change_threshold for spec in config_proto.metrics_specs
               for m in spec.metrics for t in m.per_slice_thresholds if t.threshold.HasField('change_threshold')}
    assert set(changes) == {'BinaryAccuracy', 'AUC'}
    assert changes['AUC'].absolute.value == pytest.approx(-0.05)
    # The accuracy lower bound and its change threshold share the overall slice's threshold.
    [accuracy] = [m for m in config_proto.metrics_specs[0].metrics if m.class_name == 'BinaryAccuracy']
    overall = [t for t in accuracy.per_slice_thresholds if not t.slicing_specs[0].feature_keys]
    assert len(overall) == 1 and overall[0].threshold.value_threshold.lower_bound.value == 0.8

    # Nothing served: the Evaluator executor removes the baseline spec and every change threshold.
    from tfx.utils import proto_utils
    import tensorflow_model_analysis as tfma
    alone = tfma.EvalConfig()
    proto_utils.json_to_proto(without_baseline(proto_utils.proto_to_json(config_proto)), alone)
    assert [s.is_baseline for s in alone.model_specs] == [False]
    assert 'change_threshold' not in proto_utils.proto_to_json(alone)
    assert 'lower_bound' in proto_utils.proto_to_json(alone)  # value thresholds stay


def test_evaluator_decodes_only_the_columns_it_slices_on(tmp_path):
    """TFMA turns every column of its schema into Python values for each eval example: the executor hands it the
    sliced columns only, shapeless (read as lists, as without a schema), or none when nothing is sliced."""
    import tensorflow_model_analysis as tfma
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils, proto_utils
    config = load_config(os.path.join(DATA, 'attrition', 'config.yaml'))
    schema = schema_pb2.Schema()
    for name in ['Age', *config.slice_columns, 'MonthlyIncome']:
        schema.feature.add(name=name, type=schema_pb2.BYTES).shape.dim.add(size=1)
    schema.sparse_feature.add(name='income_by_age').value_feature.name = 'MonthlyIncome'  # names a dropped column
    (tmp_path / 'schema').mkdir()
    io_utils.write_pbtxt_file(str(tmp_path / 'schema' / 'schema.pbtxt'), schema)
    artifact = standard_artifacts.Schema()
    artifact.uri = str(tmp_path / 'schema')

    def kept(eval_config_proto, folder):
        sliced = sliced_schema(artifact, proto_utils.proto_to_json(eval_config_proto), str(tmp_path / folder))
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(sliced.uri))
        assert not schema.sparse_feature
        return schema.feature

    features = kept(eval_config(config, 2), 'sliced')
    assert config.slice_columns and [f.name for f in features] == list(config.slice_columns)
    assert not any(f.HasField('shape') for f in features)
    assert not kept(tfma.EvalConfig(slicing_specs=[tfma.SlicingSpec()]), 'overall')


def test_evaluator_node_runs_the_baseline_executor(tmp_path):
    """The pieces wire as pipeline/pipeline.py uses them; node ids stay TFX's."""
    from tfx import v1 as tfx
    from tfx.types import channel_utils
    trained = channel_utils.as_channel([standard_artifacts.Model()])
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    served = ServedModel(model_base_path=str(tmp_path / 'serving' / 'm'), candidate=trained)
    evaluator = BaselineEvaluator(examples=examples, model=trained, baseline_model=served.outputs['model'])
    assert served.id == 'ServedModel' and evaluator.id == 'Evaluator'
    assert evaluator.with_id('Evaluator_wide').id == 'Evaluator_wide'
    executor = evaluator.executor_spec.executor_class
    assert f'{executor.__module__}.{executor.__name__}' == 'tfx_tabular.components.evaluator.executor.Executor'
    assert isinstance(evaluator, tfx.components.Evaluator)
    assert served.exec_properties['model_base_path'] == str(tmp_path / 'serving' / 'm')


def test_fairness_by_class_reads_tfma_per_class_names():
    metrics = {'sex=male': {'fairness_indicators_metrics/false_positive_rate@0.5/Adelie': 0.1,
                            'fairness_indicators_metrics/false_negative_rate@0.5/Adelie': 0.2,
                            'fairness_indicators_metrics/false_positive_rate@0.5/Gentoo': 0.0,
                            'fairness_indicators_metrics/true_positive_rate@0.5/Gentoo': 1.0,
                            'accuracy': 0.9},
               'overall': {'accuracy': 0.9}}
    assert fairness_by_class(metrics, ['Adelie', 'Chinstrap', 'Gentoo']) == {
        'sex=male': {'Adelie': {'fpr@0.5': 0.1, 'fnr@0.5': 0.2}, 'Gentoo': {'fpr@0.5': 0.0}}}


# ---- end to end: first run (the shared attrition run), then a worse model against the served one ----------------

def test_first_run_has_no_baseline_and_says_so(attrition_run):
    config_path, result, summary = attrition_run
    if 'ServedModel' not in [c['component'] for c in summary['components']]:
        pytest.fail('pipeline/pipeline.py does not wire ServedModel yet')
    base = os.path.join(load_config(config_path).push_path, 'attrition')
    assert summary['served'] == {'found': False, 'version': None, 'source': None, 'base_path': base,
                                 'state': 'ran'}
    assert summary['baseline'] is None
    assert summary['blessed'] and summary['pushed'], summary['validation_failures']
    line = f'First run: no model served yet at {base}, so there is nothing to compare with.'
    assert line in result.stdout
    import tensorflow_model_analysis as tfma
    keys = [kv.key for s in tfma.load_metrics(summary['evaluation_uri']) for kv in s.metric_keys_and_values]
    assert keys and all(k.model_name == '' and not k.is_diff for k in keys)  # the candidate alone


@pytest.fixture(scope='module')
def first_report(attrition_run):
    """The first run's report, read before this module's second run overwrites it."""
    _, _, summary = attrition_run
    return open(summary['report'], encoding='utf-8').read()


def test_report_shows_calibration_fairness_bars_and_no_baseline(attrition_run, first_report):
    config_path, _, summary = attrition_run
    page = first_report
    assert '<h2>Calibration</h2>' in page and '<h2>Fairness per group</h2>' in page
    assert '<h3>Gender</h3>' in page and '<h3>MaritalStatus</h3>' in page
    # One gate figure and one Fairness Indicators figure per sensitive column, plus the earlier pictures.
    assert page.count('src="data:image/png;base64,') >= 4 + 1 + 2 * 2
    assert 'Gate: accuracy min 0.7' in page
    assert 'Gate: false_positive_rate max_gap 0.15 above the best group (' in page
    assert 'No baseline. First run: no model served yet at' in page
    assert 'src="http' not in page


@pytest.fixture(scope='module')
def worse_run(attrition_run, first_report):
    """A second run into the same run and push directories, with a 1-step model and evaluation.max_drop."""
    config_path, _, first = attrition_run
    raw = yaml.safe_load(open(config_path))
    raw['model']['train_steps'] = 1
    raw['evaluation'] = {'thresholds': {'accuracy': 0.5}, 'max_drop': {'accuracy': 0.01, 'auc': 0.02}}
    worse = os.path.join(os.path.dirname(config_path), 'worse.yaml')
    with open(worse, 'w') as f:
        yaml.safe_dump(raw, f)
    base = os.path.dirname(first['pushed_to'])
    before = sorted(os.listdir(base))
    result, summary = run_pipeline_cli(worse)
    return first, result, summary, before, base


def test_worse_model_fails_max_drop_against_the_served_model(worse_run):
    first, result, summary, before, base = worse_run
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    states = {c['component']: c['state'] for c in summary['components']}
    assert states['Transform'] == 'cached' and states['Trainer'] == 'ran'
    assert states['ServedModel'] == 'ran' and states['Evaluator'] == 'ran'
    version = int(os.path.basename(first['pushed_to']))
    assert summary['served']['found'] and summary['served']['version'] == version
    assert summary['baseline']['version'] == version
    # The baseline is the first run's model on the same eval split: the same metrics.
    for m in ('accuracy', 'auc', 'example_count'):
        assert summary['baseline']['metrics']['overall'][m] == pytest.approx(first['metrics']['overall'][m],
                                                                            abs=1e-3)
    assert summary['metrics']['overall']['auc'] < first['metrics']['overall']['auc'] - 0.02
    assert summary['blessed'] is False and summary['pushed'] is False
    changes = [f for f in summary['validation_failures'] if 'below the served model' in f]
    [auc] = [f for f in changes if f.startswith('auc = ')]
    assert 'on overall is ' in auc and f'below the served model (version {version}) ' in auc
    assert auc.endswith('; max_drop 0.02')
    assert all(f'  - {f}' in result.stdout for f in changes)
    assert 'Compared with the served model (version' in result.stdout
    assert sorted(os.listdir(base)) == before  # nothing new pushed
    # The FairnessGate reads the candidate's per-group values, not the served model's written beside them.
    from tfx_tabular.components.evaluator.results import group_values
    fpr = group_values(summary['evaluation_uri'], 'fpr', 'Gender')
    assert {g: round(v, 4) for g, v in fpr.items()} == {
        g: summary['metrics'][f'Gender={g}']['false_positive_rate'] for g in ('Female', 'Male')}
    assert {g: round(v, 4) for g, v in fpr.items()} != {
        g: summary['baseline']['metrics'][f'Gender={g}']['false_positive_rate'] for g in fpr}


def test_report_compares_candidate_and_served_model(worse_run):
    _, _, summary, _, _ = worse_run
    page = open(summary['report'], encoding='utf-8').read()
    assert '<h2>Candidate vs the served model (baseline)</h2>' in page
    assert f'Served model: version {summary["baseline"]["version"]}' in page
    assert '<th>candidate</th><th>served</th><th>change</th>' in page
    assert 'accuracy 0.01, auc 0.02' in page
    for name in summary['baseline']['metrics']:
        assert f'<td>{html.escape(name)}</td>' in page
    for failure in summary['validation_failures']:
        assert html.escape(failure) in page
    saved = json.load(open(os.path.join(os.path.dirname(summary['report']), 'summary.json')))
    assert saved['baseline']['version'] == summary['baseline']['version']


def test_stale_served_model_is_read_again_and_multiclass_fairness_is_per_class(penguins_run):
    """The penguins model again (Trainer and ServedModel cached from the first run, when nothing was served), with
    Fairness Indicators and max_drop: the Evaluator reruns and must compare with the version pushed since."""
    config_path, _, first = penguins_run
    raw = yaml.safe_load(open(config_path))
    raw['fairness'] = {'sensitive': ['sex', 'island'], 'thresholds': [0.5]}
    # accuracy 0.999: not blessed, so this run pushes nothing into the shared push directory.
    raw['evaluation'] = {'thresholds': {'accuracy': 0.999}, 'max_drop': {'accuracy': 0.01}}
    fair = os.path.join(os.path.dirname(config_path), 'fair.yaml')
    with open(fair, 'w') as f:
        yaml.safe_dump(raw, f)
    base = os.path.dirname(first['pushed_to'])
    before = sorted(os.listdir(base))
    result, summary = run_pipeline_cli(fair)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    by_name = {c['component']: c for c in summary['components']}
    assert by_name['Trainer']['state'] == 'cached' and by_name['ServedModel']['state'] == 'cached'
    assert by_name['ServedModel']['outputs']['model']['properties']['found'] == 0  # stale: from the first run
    assert by_name['Evaluator']['state'] == 'ran'
    version = int(os.path.basename(first['pushed_to']))
    assert summary['served']['found'] and summary['served']['version'] == version
    assert summary['baseline']['version'] == version
    # The served version is a copy of this very model: same metrics, no change failure.
    assert summary['baseline']['metrics']['overall'] == pytest.approx(
        {k: v for k, v in summary['metrics']['overall'].items() if k in summary['baseline']['metrics']['overall']},
        nan_ok=True)
    [failure] = summary['validation_failures']
    assert failure.startswith('accuracy = ') and failure.endswith('on overall fails lower bound 0.999')
    assert sorted(os.listdir(base)) == before

    classes = summary['label']['classes']
    table = summary['fairness_by_class']
    groups = {s for s in summary['metrics'] if s.startswith(('sex=', 'island='))}
    assert groups and groups <= set(table)
    for group in groups:
        assert set(table[group]) == set(classes), table[group]
        assert all({'fpr@0.5', 'fnr@0.5'} <= set(rates) for rates in table[group].values())
    assert 'Fairness per group and class, one-vs-rest, at threshold 0.5' in result.stdout

    page = open(summary['report'], encoding='utf-8').read()
    assert '<h3>Per class, one-vs-rest, at threshold 0.5</h3>' in page
    assert '<h2>Calibration</h2>' in page and 'one-vs-rest per class.' in page
    assert '<h3>sex</h3>' in page and '<h3>island</h3>' in page
    assert f'Served model: version {version}' in page
