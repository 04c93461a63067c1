"""ConfusionCut and HierarchicalTrainer in a real LocalDagRunner pipeline on the shipped digits data (10 classes):
CsvExampleGen (train / eval / holdout) -> ImportSchemaGen -> Transform -> Trainer -> ConfusionCut ->
HierarchicalTrainer, nodes from `pipeline/hierarchical.py`, with the shipped config on 24 of its
pixels. Then the artifacts in MLMD, their files checked against independent computations, and the hierarchical
SavedModel serving raw tf.Examples."""
import csv
import json
import os

import numpy as np
import pytest
import yaml

from tests.conftest import DATA, run_cli

TRAIN_STEPS = 120  # a base model that still confuses some digits (about 92% accurate), trained in seconds
AUX_STEPS = COMBINER_STEPS = 150
# The 24 central pixels (rows 1-6, columns 2-5) of the shipped config's 61: Transform's time grows with the
# features, and this keeps the module within its time budget (about 1.5 minutes on 2 idle cores).
CENTRE = [f'pixel_{r}_{c}' for r in range(1, 7) for c in range(2, 6)]


def _pipeline(config, root, schema_path):
    from tfx import v1 as tfx
    from tfx.orchestration import metadata

    from tfx_tabular.components.csv_example_gen.component import StreamingCsvExampleGen
    from tfx_tabular.pipeline.hierarchical import example_splits, hierarchical_nodes
    from tfx_tabular.pipeline.pipeline import SPLIT_BUCKETS
    from tfx_tabular.transforms.preprocessing import custom_config

    eval_buckets = max(1, round(SPLIT_BUCKETS * config.data.eval_fraction))  # as pipeline/pipeline.py
    splits = example_splits(config, SPLIT_BUCKETS, eval_buckets)
    assert [(s.name, s.hash_buckets) for s in splits] == [('train', 65), ('holdout', 15), ('eval', 20)]
    example_gen = StreamingCsvExampleGen(
        input_base=os.path.dirname(config.csv_pattern),
        input_config=tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name='all', pattern=os.path.basename(config.csv_pattern))]),
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=splits)))
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)  # StatisticsGen is not under test
    transform = tfx.components.Transform(
        examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
        preprocessing_fn='tfx_tabular.transforms.preprocessing.preprocessing_fn', custom_config=custom_config(config),
        disable_statistics=True)  # TFDV statistics of every split: the slowest part, and not under test
    base = config.models[0]
    trainer = tfx.components.Trainer(
        run_fn='tfx_tabular.components.trainer.run_fn', examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'], schema=schema_gen.outputs['schema'],
        train_args=tfx.proto.TrainArgs(num_steps=base.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=base.eval_steps),
        custom_config={**custom_config(config), 'model': base.model_dump(mode='json')})
    nodes, model = hierarchical_nodes(config, trainer.outputs['model'], example_gen.outputs['examples'],
                                      transform.outputs['transformed_examples'], transform.outputs['transform_graph'])
    assert model is nodes[1].outputs['model']
    return tfx.dsl.Pipeline(
        pipeline_name='digits_hierarchical', pipeline_root=os.path.join(root, 'pipeline_root'),
        components=[example_gen, schema_gen, transform, trainer, *nodes], enable_cache=False,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(os.path.join(root, 'metadata.sqlite')),
        beam_pipeline_args=['--direct_running_mode=in_memory', '--direct_num_workers=1'])


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Runs the mini pipeline once; returns the config, the MLMD store and {type name: [artifact]}."""
    import tensorflow as tf
    from ml_metadata.metadata_store import metadata_store
    from tensorflow_transform.tf_metadata import schema_utils
    from tfx import v1 as tfx
    from tfx.orchestration import metadata
    from tfx.utils import io_utils

    from tfx_tabular.pipeline.core.config import load_config

    root = str(tmp_path_factory.mktemp('digits_hierarchical'))
    with open(os.path.join(DATA, 'digits', 'config.yaml')) as f:
        raw = yaml.safe_load(f)
    raw['data']['csv'] = os.path.join(DATA, 'digits', 'digits.csv')
    raw['model'].update(train_steps=TRAIN_STEPS)
    raw['features'] = {name: spec for name, spec in raw['features'].items() if name in CENTRE}
    raw['hierarchical'].update(aux_train_steps=AUX_STEPS, combiner_train_steps=COMBINER_STEPS)
    config_path = os.path.join(root, 'config.yaml')
    with open(config_path, 'w') as f:
        yaml.safe_dump(raw, f)
    config = load_config(config_path)
    assert len(config.features) == len(CENTRE)

    with open(config.csv_files[0]) as f:
        header = next(csv.reader(f))
    spec = {c: tf.io.FixedLenFeature([], tf.string if c == config.label.column else tf.int64) for c in header}
    schema_path = os.path.join(root, 'schema.pbtxt')
    io_utils.write_pbtxt_file(schema_path, schema_utils.schema_from_feature_spec(spec))

    tfx.orchestration.LocalDagRunner().run(_pipeline(config, root, schema_path))
    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(os.path.join(root, 'metadata.sqlite')))
    types = {t.id: t.name for t in store.get_artifact_types()}
    artifacts = {}
    for a in store.get_artifacts():
        artifacts.setdefault(types[a.type_id], []).append(a)
    producers = {}
    for event in store.get_events_by_artifact_ids([a.id for a in store.get_artifacts()]):
        if event.type == event.OUTPUT:
            producers[event.artifact_id] = event.execution_id
    executions = {e.id: e for e in store.get_executions()}
    exec_types = {t.id: t.name for t in store.get_execution_types()}
    produced_by = {a.id: exec_types[executions[producers[a.id]].type_id].split('.')[-1]
                   for a in store.get_artifacts() if a.id in producers}
    return config, artifacts, produced_by


def _one(artifacts, type_name, produced_by=None, producer=None):
    found = [a for a in artifacts.get(type_name, []) if producer is None or produced_by[a.id] == producer]
    assert len(found) == 1, (type_name, producer, [a.uri for a in found])
    return found[0]


def _props(artifact):
    out = {}
    for key, value in artifact.custom_properties.items():
        out[key] = value.string_value or value.int_value or value.double_value
    return out


def _split_examples(uri, split):
    import tensorflow as tf
    files = tf.io.gfile.glob(os.path.join(uri, f'Split-{split}', '*'))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type='GZIP')]


def test_confusion_cut_artifact_in_mlmd_matches_an_independent_count(run):
    """The matrix, recounted through another path (the base Keras model on the transformed holdout split rather
    than its serving signature on raw examples); the cut, checked by brute force over all 2^10 partitions."""
    import itertools

    import tensorflow as tf
    import tensorflow_transform as tft
    from tfx.utils import path_utils

    from tfx_tabular.components.confusion_cut import maxcut
    from tfx_tabular.components.confusion_cut.spec import ARTIFACT_TYPE, CONFUSION_FILE, CUT_FILE, GRAPH_FILE

    config, artifacts, produced_by = run
    artifact = _one(artifacts, ARTIFACT_TYPE)
    props = _props(artifact)
    assert props['split'] == 'holdout' and props['classes'] == 10 and props['exact'] == 1
    confusion = json.load(open(os.path.join(artifact.uri, CONFUSION_FILE)))
    cut = json.load(open(os.path.join(artifact.uri, CUT_FILE)))
    png = open(os.path.join(artifact.uri, GRAPH_FILE), 'rb').read()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000
    assert confusion['classes'] == cut['classes'] == list(config.label.classes)

    raw = _one(artifacts, 'Examples', produced_by, 'StreamingCsvExampleGen')
    holdout = _split_examples(raw.uri, 'holdout')
    matrix = np.array(confusion['matrix'])
    assert matrix.shape == (10, 10) and matrix.sum() == len(holdout) == props['examples'] > 100

    transformed = _one(artifacts, 'Examples', produced_by, 'Transform')
    tft_output = tft.TFTransformOutput(_one(artifacts, 'TransformGraph').uri)
    parsed = tf.io.parse_example(tf.constant(_split_examples(transformed.uri, 'holdout')),
                                 tft_output.transformed_feature_spec())
    truth = parsed.pop('digit_xf').numpy()
    base = tf.keras.models.load_model(
        path_utils.serving_model_path(_one(artifacts, 'Model', produced_by, 'Trainer').uri))
    predicted = np.argmax(base(parsed).numpy(), axis=1)
    recount = np.zeros((10, 10), dtype=int)
    np.add.at(recount, (truth, predicted), 1)
    assert (recount == matrix).all()
    assert 0 < np.trace(matrix) < matrix.sum()  # some confusions to cut, and a model better than nothing

    w = maxcut.confusion_graph(matrix)
    best = max(maxcut.cut_value(w, sides) for sides in itertools.product((0, 1), repeat=10))
    assert cut['value'] == props['cut_value'] == best == cut['upper_bound']
    assert cut['value'] == sum(e[2] for e in cut['cut_edges'])
    confusions = matrix.sum() - np.trace(matrix)
    assert cut['total_weight'] == sum(e[2] for e in cut['cut_edges'] + cut['kept_edges']) == confusions
    assert sorted(cut['sides'][0] + cut['sides'][1]) == sorted(config.label.classes)
    # Every class has at least half of its confusions across the cut (else moving it would raise the cut).
    for name in config.label.classes:
        across = sum(e[2] for e in cut['cut_edges'] if name in e[:2])
        within = sum(e[2] for e in cut['kept_edges'] if name in e[:2])
        assert across >= within, (name, across, within)


def test_hierarchical_model_in_mlmd_with_parameter_counts(run):
    """Counts recorded as properties, proven against the exported variables: base + auxiliary + combiner."""
    import tensorflow as tf
    from tfx.utils import path_utils

    from tfx_tabular.components.hierarchical.spec import REPORT_FILE

    config, artifacts, produced_by = run
    model = _one(artifacts, 'Model', produced_by, 'HierarchicalTrainer')
    props = _props(model)
    assert props['kind'] == 'hierarchical' and props['combiner_split'] == 'holdout'
    assert props['base_parameters'] >= 10 * props['auxiliary_parameters']
    assert props['parameter_ratio'] == pytest.approx(props['base_parameters'] / props['auxiliary_parameters'])
    assert props['combiner_parameters'] == (10 + 1) * 10 + 10   # a logistic regression on 10 + 1 inputs
    base_dir = path_utils.serving_model_path(_one(artifacts, 'Model', produced_by, 'Trainer').uri)
    assert tf.keras.models.load_model(base_dir).count_params() == props['base_parameters']
    n_inputs = len(config.features)
    assert props['auxiliary_parameters'] == (n_inputs * 8 + 8) + (8 + 1)  # aux_hidden_units [8], one output

    serving_dir = path_utils.serving_model_path(model.uri)
    assert serving_dir == os.path.join(model.uri, 'Format-Serving')
    assert sorted(os.listdir(model.uri)) == ['Format-Serving', REPORT_FILE]  # no staging folder left behind
    loaded = tf.saved_model.load(serving_dir)
    variables = {v.name: v for v in loaded.model.variables}
    assert sum(v.shape.num_elements() for v in variables.values()) == (
        props['base_parameters'] + props['auxiliary_parameters'] + props['combiner_parameters'])
    assert sum(v.shape.num_elements() for v in loaded.model.trainable_variables) == props['combiner_parameters']
    kernel = variables['combiner/kernel:0'].numpy()
    assert kernel.shape == (11, 10) and np.abs(kernel[10]).max() > 0.01  # the auxiliary probability is used
    report = json.load(open(os.path.join(model.uri, REPORT_FILE)))
    assert report['base_parameters'] == props['base_parameters']


def test_hierarchical_savedmodel_serves_raw_examples(run):
    """Raw CSV rows -> serialized tf.Example -> `serving_default`: class names, scores summing to 1, and the
    accuracy the component recorded on 'eval'; the signatures are those of every exported model."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tfx.utils import path_utils

    from tfx_tabular.serving.examples import raw_feature_dtypes, read_records, serialize

    config, artifacts, produced_by = run
    model = _one(artifacts, 'Model', produced_by, 'HierarchicalTrainer')
    serving_dir = path_utils.serving_model_path(model.uri)
    loaded = tf.saved_model.load(serving_dir)
    assert set(loaded.signatures) == {'serving_default', 'serving_raw', 'transform_features'}

    records = read_records(os.path.join(DATA, 'digits', 'digits.csv'))[:300]
    out = loaded.signatures['serving_default'](inputs=tf.constant(serialize(records, raw_feature_dtypes(serving_dir))))
    classes = out['classes'].numpy().astype(str)
    scores = out['scores'].numpy()
    assert scores.shape == (300, 10) and (classes == np.array(config.label.classes)).all()
    assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-5) and (scores >= 0).all()
    accuracy = np.mean(classes[0][np.argmax(scores, axis=1)] == np.array([r['digit'] for r in records]))
    assert accuracy > 0.85

    # The same numbers as the component's own record on 'eval' (raw examples through serving_default here).
    raw = _one(artifacts, 'Examples', produced_by, 'StreamingCsvExampleGen')
    evaluation = _split_examples(raw.uri, 'eval')
    truth = loaded.signatures['transform_features'](examples=tf.constant(evaluation))['digit_xf'].numpy()
    predicted = np.argmax(loaded.signatures['serving_default'](inputs=tf.constant(evaluation))['scores'], axis=1)
    assert np.mean(predicted == truth) == pytest.approx(_props(model)['eval_hierarchical_accuracy'])

    with open(os.path.join(serving_dir, 'saved_model.pb'), 'rb') as f:
        signature = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0].signature_def['serving_default']
    assert signature.method_name == 'tensorflow/serving/classify'  # TF Serving's Classify answers on it
    assert set(signature.outputs) == {'classes', 'scores'} and set(signature.inputs) == {'inputs'}


def test_too_large_auxiliary_classifier_fails_in_one_line(run, tmp_path):
    from tfx.utils import path_utils

    from tfx_tabular.components.hierarchical.executor import train_hierarchical
    from tfx_tabular.components.confusion_cut.spec import ARTIFACT_TYPE
    from tfx_tabular.transforms.preprocessing import custom_config

    config, artifacts, produced_by = run
    settings = {**config.hierarchical.model_dump(mode='json'), 'aux_hidden_units': [64]}
    with pytest.raises(ValueError, match=r'aux_hidden_units \[64\].*at least 10x fewer') as error:
        train_hierarchical(
            path_utils.serving_model_path(_one(artifacts, 'Model', produced_by, 'Trainer').uri),
            _one(artifacts, 'TransformGraph').uri, _one(artifacts, 'Examples', produced_by, 'Transform'),
            _one(artifacts, ARTIFACT_TYPE).uri, str(tmp_path), {**custom_config(config), 'hierarchical': settings})
    assert '\n' not in str(error.value)


def test_missing_holdout_split_fails_in_one_line(run, tmp_path):
    from tfx.types import artifact_utils, standard_artifacts

    from tfx_tabular.components.confusion_cut.executor import require_split

    config, artifacts, produced_by = run
    examples = standard_artifacts.Examples()
    examples.uri = _one(artifacts, 'Examples', produced_by, 'StreamingCsvExampleGen').uri
    examples.split_names = artifact_utils.encode_split_names(['train', 'eval'])
    with pytest.raises(ValueError, match="no 'holdout' split .*example_splits"):
        require_split(examples, 'holdout')


CONFIG_ERRORS = [
    (lambda raw: raw['label'].update(type='binary', classes=None),
     'hierarchical: needs a multiclass label with at least 3 classes'),
    (lambda raw: raw['hierarchical'].update(base='missing'), "hierarchical.base: 'missing' is not a model name"),
    (lambda raw: raw['hierarchical'].update(holdout_fraction=0.4), 'leaves less than half the rows'),
    (lambda raw: raw['hierarchical'].update(aux_hidden_units=[]), 'hierarchical.aux_hidden_units'),
]


def _digits_config(tmp_path, change=None):
    with open(os.path.join(DATA, 'digits', 'config.yaml')) as f:
        raw = yaml.safe_load(f)
    raw['data']['csv'] = os.path.join(DATA, 'digits', 'digits.csv')
    if change:
        change(raw)
    path = tmp_path / 'config.yaml'
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize('change, message', CONFIG_ERRORS)
def test_config_errors_are_one_line(tmp_path, change, message):
    from tfx_tabular.pipeline.core.config import ConfigError, load_config
    with pytest.raises(ConfigError) as error:
        load_config(_digits_config(tmp_path, change))
    assert len(error.value.problems) == 1 and message in error.value.problems[0], error.value.problems
    assert '\n' not in error.value.problems[0]


def test_config_error_through_the_cli(tmp_path):
    change, message = CONFIG_ERRORS[0]
    result = run_cli('validate', '--config', _digits_config(tmp_path, change))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines


def test_shipped_digits_config_validates():
    from tfx_tabular.pipeline.core.config import load_config
    config = load_config(os.path.join(DATA, 'digits', 'config.yaml'))
    assert len(config.features) == 61 and config.hierarchical.enabled
    assert config.hierarchical.base == config.models[0].name == 'keras_dnn'
