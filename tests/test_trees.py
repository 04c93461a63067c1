"""Gradient-boosted trees (components/trainer/trees/): trained by YDF on a real tf.Transform output, compiled into core
TensorFlow ops, exported by the real `run_fn`. The exported model's scores equal YDF's own on the eval rows for
every label type; the compiled trees use both kinds of condition; feature importances name the config's columns.
(TFMA, Classify and the three signatures for this kind, beside the other kinds: tests/test_trainers.py.)
"""
import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from tfx_tabular.components.trainer import run_fn
from tfx_tabular.components.trainer.data import class_names
from tfx_tabular.components.trainer.trees.compile import CompiledTrees, forest_from_ydf
from tfx_tabular.components.trainer.trees.training import IMPORTANCES_FILE, read_split, train_models
from tfx_tabular.pipeline.core.config import Config, ConfigError, load_config
from tests.conftest import run_transform
from tfx_tabular.transforms.feature_columns import num_ids
from tfx_tabular.transforms.preprocessing import custom_config, transformed_name

FEATURES = {
    'income': {'kind': 'numeric'},
    'age': {'kind': 'bucketized', 'buckets': 8},
    'city': {'kind': 'categorical'},
    'job role': {'kind': 'hashed', 'hash_buckets': 16},    # not an identifier: feature_key maps it
    'city_x_job': {'kind': 'crossed', 'columns': ['city', 'job role'], 'hash_buckets': 20},
}
SPEC = {'income': tf.io.FixedLenFeature([], tf.float32), 'age': tf.io.FixedLenFeature([], tf.float32),
        'city': tf.io.FixedLenFeature([], tf.string), 'job role': tf.io.FixedLenFeature([], tf.string),
        'y': tf.io.FixedLenFeature([], tf.string)}
LABELS = {'binary': {'column': 'y', 'type': 'binary', 'classes': ['stay', 'leave']},
          'multiclass': {'column': 'y', 'type': 'multiclass'},
          'multilabel': {'column': 'y', 'type': 'multilabel'}}
NORTH = {'c1', 'c4', 'c7', 'c9'}  # cities whose ids say nothing in order: only a set-membership split finds them
TREES = {'num_trees': 40, 'max_depth': 4, 'min_examples': 3}


def _label(label_type: str, score: float, row) -> str:
    if label_type == 'binary':
        return 'leave' if score > 1.2 else 'stay'
    if label_type == 'multiclass':
        return 'low' if score < 0.7 else 'mid' if score < 1.6 else 'high'
    tags = ['north'] * (row['city'] in NORTH) + ['senior'] * (row['age'] > 50) + ['rich'] * (row['income'] > 1)
    return '|'.join(tags + ['any'])  # 'any' on every row: a constant class, answered by its bias


def _rows(label_type: str, n: int = 800):
    rng = random.Random(11)
    rows = []
    for i in range(n):
        # c11 is rare (YDF folds values seen under 5 times into its out-of-dictionary item)
        row = {'income': rng.gauss(0, 1), 'age': rng.uniform(20, 65),
               'city': 'c11' if i % 300 == 0 else f'c{rng.randrange(11)}', 'job role': rng.choice(['a b', 'c', 'd e'])}
        score = 1.2 * (row['city'] in NORTH) + 0.8 * (row['age'] > 45) + 0.5 * row['income'] + rng.gauss(0, 0.3)
        rows.append({**row, 'y': _label(label_type, score, row)})
    return rows


def _example(row) -> bytes:
    feature = {k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) if isinstance(v, float)
               else tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()])) for k, v in row.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write(path: str, records) -> str:
    with tf.io.TFRecordWriter(path) as writer:
        for r in records:
            writer.write(r)
    return path


def _data_accessor():
    def factory(files, options, schema):
        return tfxio.TFExampleRecord(file_pattern=files, schema=schema).TensorFlowDataset(options)
    return DataAccessor(tf_dataset_factory=factory, record_batch_factory=None, data_view_decode_fn=None)


@pytest.fixture(scope='module', params=list(LABELS))
def exported(request, tmp_path_factory):
    """(label type, config, fn_args, eval rows): trees exported by run_fn, trained on 600 rows, 200 for eval."""
    label_type = request.param
    out = tmp_path_factory.mktemp(f'trees_{label_type}')
    config = Config(name='t', data={'csv': 'x.csv'}, serving={'model_name': 't'}, features=FEATURES,
                    label=LABELS[label_type], model={'kind': 'gradient_boosted_trees', 'trees': TREES})
    rows = _rows(label_type)
    transform_dir = str(out / 'transform')
    transformed, metadata = run_transform(config, rows, SPEC, transform_dir)
    coder = tft.coders.ExampleProtoCoder(metadata.schema)
    train = _write(str(out / 'train.tfrecord'), [coder.encode(r) for r in transformed[:600]])
    evaluation = _write(str(out / 'eval.tfrecord'), [coder.encode(r) for r in transformed[600:]])
    fn_args = FnArgs(
        train_files=[train], eval_files=[evaluation], transform_output=transform_dir,
        serving_model_dir=str(out / 'serving'), model_run_dir=str(out / 'run'), train_steps=1, eval_steps=1,
        schema_file=None, custom_config={**custom_config(config), 'model': config.models[0].model_dump(mode='json')},
        data_accessor=_data_accessor())
    run_fn(fn_args)
    return label_type, config, fn_args, rows[600:]


def _ydf_probabilities(models, label_type, x, n_classes):
    """YDF's own scores of rows `x`, as [rows, classes] in our class-id order (binary: P(class 1), [rows, 1])."""
    def positive(model):
        p = model.predict(x)
        return p if model.label_classes()[1] == '1' else 1 - p
    if label_type == 'binary':
        return positive(models[0])[:, np.newaxis]
    if label_type == 'multiclass':
        (model,) = models
        probabilities = np.zeros((len(next(iter(x.values()))), n_classes))
        probabilities[:, [int(c) for c in model.label_classes()]] = model.predict(x)
        return probabilities
    rows = len(next(iter(x.values())))
    return np.stack([np.full(rows, 1 / (1 + np.exp(-m))) if isinstance(m, float) else positive(m) for m in models],
                    axis=1)


def test_exported_scores_equal_ydf_on_the_eval_rows(exported):
    """The same training (YDF is seeded) repeated here: YDF's predictions on the transformed eval rows equal what
    the exported SavedModel answers for the raw eval rows, through the Transform graph and the compiled trees."""
    label_type, config, fn_args, eval_rows = exported
    features, label = config.features, config.label
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    n = len(class_names(label, tft_output))
    x, y = read_split(fn_args, fn_args.train_files, tft_output, features, label, n)
    valid_x, valid_y = read_split(fn_args, fn_args.eval_files, tft_output, features, label, n)
    models = train_models(x, y, valid_x, valid_y, features, label.type, config.models[0].trees.model_dump(), 42)
    expected = _ydf_probabilities(models, label_type, valid_x, n)

    model = tf.saved_model.load(fn_args.serving_model_dir)
    raw = model.signatures['serving_default'](inputs=tf.constant([_example(
        {k: v for k, v in r.items() if k != 'y'}) for r in eval_rows]))
    served = raw['probabilities'].numpy()
    assert served.shape == expected.shape == (200, 1 if label_type == 'binary' else n)
    np.testing.assert_allclose(served, expected, atol=2e-6)
    if label_type != 'multilabel':  # trees that learnt something: the eval rows mostly right (CART and RANDOM
        # categorical splits score 0.80 to 0.92 on these rows, the majority class 0.67 (binary) and 0.49)
        truth = valid_y if label_type == 'multiclass' else valid_y[:, np.newaxis]
        predicted = served.argmax(axis=1) if label_type == 'multiclass' else served > 0.5
        assert (predicted.reshape(truth.shape) == truth).mean() >= 0.75
    else:
        constant = class_names(label, tft_output).index('any')
        assert isinstance(models[constant], float) and (served[:, constant] > 0.99).all()


def test_compiled_trees_use_sets_for_ids_and_thresholds_for_numbers(exported):
    """Vocabulary, hash and cross ids are split by set membership; numbers and bucket ids by thresholds. The
    north cities (ids in no order) are found by one membership test, which no single threshold could do."""
    label_type, config, fn_args, _ = exported
    if label_type != 'binary':
        pytest.skip('one label type is enough to look inside')
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    x, y = read_split(fn_args, fn_args.train_files, tft_output, config.features, config.label, 2)
    valid_x, valid_y = read_split(fn_args, fn_args.eval_files, tft_output, config.features, config.label, 2)
    # CART searches a categorical split's best subset exactly (RANDOM, the default, samples subsets), so the
    # first root is known: the north cities.
    trees = {**config.models[0].trees.model_dump(), 'categorical_algorithm': 'CART'}
    models = train_models(x, y, valid_x, valid_y, config.features, 'binary', trees, 42)
    keys = [transformed_name(f) for f in config.features]
    sizes = {transformed_name(f): num_ids(f, s, tft_output) for f, s in config.features.items()
             if s.kind in ('categorical', 'hashed', 'crossed')}
    forest = forest_from_ydf(models, 'binary', 2, keys, sizes)
    kinds = {}
    for feature, categorical, pos, j in zip(forest.feature, forest.categorical, forest.pos,
                                            range(len(forest.feature))):
        if pos != j:  # not a leaf
            kinds.setdefault(keys[feature], set()).add('set' if categorical else 'threshold')
    assert kinds['city_xf'] == {'set'} and kinds['income_xf'] == {'threshold'} and kinds['age_xf'] == {'threshold'}
    city_ids = tft_output.vocabulary_by_name('city')
    root = forest.feature[0]  # the first tree's root: the strongest single split
    assert keys[root] == 'city_xf' and forest.categorical[0]
    lookup = forest.id_index[forest.index_offset[0]:forest.index_offset[0] + forest.id_limit[0] + 1]
    mask = forest.members[forest.mask_offset[0]:]
    north = {city_ids[i].decode() for i in range(len(city_ids)) if mask[lookup[i]]} - {'c11'}
    assert north in (NORTH, {c.decode() for c in city_ids} - NORTH - {'c11'})
    # the rare city shares YDF's out-of-dictionary item with ids never seen (the OOV bucket)
    rare, oov = [i for i, c in enumerate(city_ids) if c == b'c11'], len(city_ids)
    assert lookup[rare[0]] == lookup[oov] == 0

    compiled = CompiledTrees(forest)
    probabilities = compiled({k: tf.constant(v) for k, v in valid_x.items()}).numpy()
    np.testing.assert_allclose(probabilities, _ydf_probabilities(models, 'binary', valid_x, 2), atol=2e-6)


def test_feature_importances_name_the_configs_columns(exported):
    label_type, config, fn_args, _ = exported
    with open(os.path.join(fn_args.model_run_dir, IMPORTANCES_FILE)) as f:
        importances = json.load(f)
    assert [i['feature'] for i in importances] != [] and {i['feature'] for i in importances} == set(FEATURES)
    assert sum(i['importance'] for i in importances) == pytest.approx(1.0, abs=1e-4)
    assert [i['importance'] for i in importances] == sorted((i['importance'] for i in importances), reverse=True)
    if label_type != 'multilabel':  # city and income drive every label; job role drives none
        top = [i['feature'] for i in importances[:3]]
        assert 'city' in top and 'income' in top
        assert next(i['importance'] for i in importances if i['feature'] == 'job role') < importances[0]['importance'] / 5
    curves = os.path.join(fn_args.model_run_dir, 'training_curves.png')
    assert os.path.getsize(curves) > 0
    assert tf.io.gfile.glob(os.path.join(fn_args.model_run_dir, 'eval', 'events.out.tfevents.*'))


def test_tree_options_are_config_errors_on_other_kinds(small_config):
    write, raw = small_config
    raw['model'] = {'kind': 'gradient_boosted_trees', 'hidden_units': [8], 'trees': {'num_trees': 50}}
    with pytest.raises(ConfigError) as err:
        load_config(write(raw))
    assert err.value.problems == ['model: hidden_units: not used by kind gradient_boosted_trees (set its options '
                                  'under trees: num_trees, max_depth, shrinkage, ...); remove them']
    raw['model'] = {'kind': 'keras_dnn', 'trees': {'num_trees': 50}}
    with pytest.raises(ConfigError, match='trees: applies to kind gradient_boosted_trees only, not keras_dnn'):
        load_config(write(raw))
    raw['model'] = {'kind': 'gradient_boosted_trees', 'trees': {'max_depth': 40}}
    with pytest.raises(ConfigError, match='model.trees.max_depth'):
        load_config(write(raw))
    raw['model'] = {'kind': 'gradient_boosted_trees'}
    assert load_config(write(raw)).models[0].trees.num_trees == 300


def test_a_tree_model_runs_through_the_pipeline_and_is_pushed(tmp_path):
    """`tfx-tabular run` on the shipped penguins data with the trees: TFMA evaluates them, the floor and the
    thresholds bless them, the Pusher pushes them, `serve`'s Classify answers; importances in summary and report."""
    from tfx_tabular.serving.examples import raw_feature_dtypes, serialize
    from tfx_tabular.serving.inference import classify
    from tfx_tabular.serving.servable import Servable
    from tensorflow_serving.apis import classification_pb2
    from tests.conftest import run_pipeline_cli, shipped_config

    def trees(raw):
        raw['model'] = {'kind': 'gradient_boosted_trees', 'trees': {'num_trees': 100}}
    result, summary = run_pipeline_cli(shipped_config(tmp_path, 'penguins', edit=trees))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names = [c['component'] for c in summary['components']]
    assert 'EmbeddingMetadataGen' not in names and names.index('MajorityGate') < names.index('Pusher')
    assert summary['blessed'] and summary['pushed'] and summary['metrics']['overall']['accuracy'] >= 0.9
    importances = summary['feature_importances']['gradient_boosted_trees']
    config_features = {'island', 'sex', 'bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g', 'year'}
    assert {i['feature'] for i in importances} == config_features
    assert importances[0]['feature'] in {'bill_length_mm', 'flipper_length_mm', 'bill_depth_mm', 'island'}
    assert f'Feature importances of gradient_boosted_trees (share of its trees\' loss reduction): ' \
           f'{importances[0]["feature"]}' in result.stdout
    report = open(summary['report'], encoding='utf-8').read()
    assert 'Feature importances: gradient_boosted_trees' in report and 'No Embedding Projector output' in report

    rows = [{'island': 'Biscoe', 'sex': 'male', 'bill_length_mm': '50.0', 'bill_depth_mm': '15.0',
             'flipper_length_mm': '220.0', 'body_mass_g': '5500.0', 'year': '2008'},
            {'island': 'Torgersen', 'sex': 'female', 'bill_length_mm': '37.0', 'bill_depth_mm': '18.5',
             'flipper_length_mm': '185.0', 'body_mass_g': '3400.0', 'year': '2007'}]
    request = classification_pb2.ClassificationRequest()
    for serialized in serialize(rows, raw_feature_dtypes(summary['pushed_to'])):
        request.input.example_list.examples.add().ParseFromString(serialized)
    servable = Servable('penguins', 1, summary['pushed_to'])
    try:
        response = classify(servable, request)
    finally:
        servable.close()
    top = [max(c.classes, key=lambda x: x.score).label for c in response.result.classifications]
    assert top == ['Gentoo', 'Adelie']


def test_init_writes_trees_a_dnn_and_a_linear_model_that_run_accepts(tmp_path):
    """`init` on a shipped CSV: a `models:` list (trees, a DNN, a linear model) and bounds relative to the
    majority-class floor; `run` trains the three, ModelSelector pushes one blessed model."""
    from tfx_tabular.pipeline.init_config import SIDE_BY_SIDE_ROWS, _model_lines
    from tests.conftest import DATA, run_cli
    import shutil
    shutil.copy(os.path.join(DATA, 'penguins', 'penguins.csv'), tmp_path / 'penguins.csv')
    written = run_cli('init', str(tmp_path / 'penguins.csv'), '-o', str(tmp_path / 'penguins.yaml'))
    assert written.returncode == 0, written.stderr
    config = load_config(str(tmp_path / 'penguins.yaml'))
    assert [(m.name, m.kind) for m in config.models] == [('trees', 'gradient_boosted_trees'), ('dnn', 'keras_dnn'),
                                                         ('linear', 'estimator_linear')]
    assert config.evaluation.select.prefer_simpler
    assert config.evaluation.thresholds == {} and config.evaluation.floor.accuracy_margin == 0.01
    assert "majority-class rate (here about 0.44: always 'Adelie')" in (tmp_path / 'penguins.yaml').read_text()
    assert [line.lstrip().startswith('- {name: trees') for line in _model_lines(SIDE_BY_SIDE_ROWS + 1)] == [
        False, False, False, True]  # a large file: the trees alone, the DNN and linear lines commented out

    result = run_cli('run', '--config', str(tmp_path / 'penguins.yaml'), cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.load(open(tmp_path / 'runs' / 'penguins' / 'summary.json'))
    assert {m['model'] for m in summary['models']} == {'trees', 'dnn', 'linear'}
    assert summary['selected_model'] in ('trees', 'dnn', 'linear') and 'one standard error' in summary['selection']
    assert summary['pushed'] and summary['floor']['accuracy'] == pytest.approx(summary['floor']['rate'] + 0.01)
    assert 'trees' in summary['feature_importances']


def test_trees_train_on_one_thread_on_two_cores_unless_configured(monkeypatch):
    """YDF's thread pool made training 2-12x slower on 2 cores (docs/models.md): one thread there, the config's
    `trees.num_threads` when set, YDF's own choice on bigger machines."""
    from tfx_tabular.components.trainer.trees import training
    from tfx_tabular.pipeline.core.config import TreesConfig
    monkeypatch.setattr(training.os, 'cpu_count', lambda: 2)
    assert training.training_threads(None) == 1 and training.training_threads(4) == 4
    monkeypatch.setattr(training.os, 'cpu_count', lambda: 16)
    assert training.training_threads(None) is None and training.training_threads(3) == 3
    assert TreesConfig().num_threads is None
    with pytest.raises(ValueError):
        TreesConfig(num_threads=0)
