"""Tuning: TFX's own Tuner executor running `components.tuner.tuner_fn` (keras-tuner, 2 real trials) on a real
tf.Transform output; `apply_hyperparameters` on what the Trainer receives; the learning-rate range test on a toy
problem where the right rate is known to matter, and on the package's own Keras model; config errors.
"""
import json
import math
import os
import random

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.tuner.executor import Executor as TunerExecutor
from tfx.dsl.components.base.base_executor import BaseExecutor
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.utils import json_utils, proto_utils

from tfx_tabular.components.trainer.lr_range_test import LR_RANGE_JSON, LR_RANGE_PLOT, lr_range_test, plot_lr_range, run_for_trainer
from tfx_tabular.components.trainer.hyperparameters import apply_hyperparameters, search_space
from tfx_tabular.pipeline.core.config import Config, ConfigError, ModelConfig, TuningConfig, load_config
from tests.conftest import run_transform
from tfx_tabular.transforms.preprocessing import custom_config

FEATURES = {
    'num': {'kind': 'numeric'},
    'city': {'kind': 'categorical', 'embedding_dim': 2},
    'town': {'kind': 'hashed', 'hash_buckets': 5},
}
SPEC = {'num': tf.io.FixedLenFeature([], tf.float32), 'city': tf.io.FixedLenFeature([], tf.string),
        'town': tf.io.FixedLenFeature([], tf.string), 'y': tf.io.FixedLenFeature([], tf.string)}
TUNING = {'trials': 2, 'steps_per_trial': 20, 'hidden_units': [[4], [16, 8]],
          'learning_rate': {'min': 0.001, 'max': 0.1}, 'dropout': [0.0, 0.2]}


def _rows(n=240):
    rng = random.Random(3)
    rows = []
    for _ in range(n):
        num, city = rng.random(), rng.choice('abcd')
        rows.append({'num': num, 'city': city, 'town': rng.choice('xyz'),
                     'y': 'yes' if num + (0.3 if city == 'a' else 0) > 0.6 else 'no'})
    return rows


def _config(**model) -> Config:
    model = {'kind': 'keras_dnn', 'hidden_units': [8], 'dropout': 0.0, 'learning_rate': 0.01, 'batch_size': 16,
             'train_steps': 30, 'eval_steps': 3, 'epochs': 2, **model}
    return Config(name='t', data={'csv': 'x.csv'}, serving={'model_name': 't'}, features=FEATURES,
                  label={'column': 'y', 'type': 'binary', 'classes': ['no', 'yes']}, model=model)


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
    """(examples dir in Transform's output layout, transform dir): a real tf.Transform run on 240 rows."""
    out = tmp_path_factory.mktemp('tuning')
    config = _config()
    rows = _rows()
    transform_dir = str(out / 'transform')
    data, data_metadata = run_transform(config, rows, SPEC, transform_dir)
    coder = tft.coders.ExampleProtoCoder(data_metadata.schema)
    examples_dir = str(out / 'transformed_examples')
    for split, part in (('train', data[:200]), ('eval', data[200:])):  # what Transform writes: gzipped TFRecords
        os.makedirs(os.path.join(examples_dir, f'Split-{split}'))
        path = os.path.join(examples_dir, f'Split-{split}', 'transformed_examples-00000-of-00001.gz')
        with tf.io.TFRecordWriter(path, 'GZIP') as writer:
            for r in part:
                writer.write(coder.encode(r))
    return examples_dir, transform_dir


def _run_tuner_component(examples_dir, transform_dir, out, model_cfg):
    """TFX's Tuner executor, as the component runs it: artifacts in, best_hyperparameters.txt out."""
    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = examples_dir, json.dumps(['train', 'eval'])
    graph = standard_artifacts.TransformGraph()
    graph.uri = transform_dir
    best, results = standard_artifacts.HyperParameters(), standard_artifacts.TunerResults()
    best.uri, results.uri = os.path.join(out, 'best'), os.path.join(out, 'results')
    for a in (best, results):
        os.makedirs(a.uri)
    config = _config()
    exec_properties = {
        'tuner_fn': 'tfx_tabular.components.tuner.tuner_fn',
        'train_args': proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=TUNING['steps_per_trial'])),
        'eval_args': proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=3)),
        'custom_config': json_utils.dumps({**custom_config(config), 'model': model_cfg}),
    }
    executor = TunerExecutor(BaseExecutor.Context(tmp_dir=os.path.join(out, 'tmp'), unique_id='1'))
    executor.Do({'examples': [examples], 'transform_graph': [graph]},
                {'best_hyperparameters': [best], 'tuner_results': [results]}, exec_properties)
    with open(os.path.join(best.uri, 'best_hyperparameters.txt')) as f:
        best_config = json.load(f)
    with open(os.path.join(results.uri, 'tuner_results.json')) as f:
        trials = json.load(f)
    return best_config, trials


@pytest.fixture(scope='module')
def tuned(transformed, tmp_path_factory):
    """(model config, best_hyperparameters as TFX writes it, tuner results): one real 2-trial search."""
    examples_dir, transform_dir = transformed
    model_cfg = _config(tuning=TUNING).models[0].model_dump(mode='json')
    best_config, trials = _run_tuner_component(examples_dir, transform_dir, str(tmp_path_factory.mktemp('tuner')),
                                               model_cfg)
    return model_cfg, best_config, trials


def test_tuner_component_finds_the_best_of_real_trials(transformed, tuned):
    _, transform_dir = transformed
    model_cfg, best_config, trials = tuned

    assert len(trials) == 2, trials
    scores = [t['score'] for t in trials]
    assert all(math.isfinite(s) and s > 0 for s in scores), scores
    points = {(t['hidden_units'], round(t['learning_rate'], 8), t['dropout']) for t in trials}
    assert len(points) == 2, 'the two trials tried the same point'
    best_trial = min(trials, key=lambda t: t['score'])  # the objective is val_loss: lower is better
    values = best_config['values']
    assert values == {k: best_trial[k] for k in ('hidden_units', 'learning_rate', 'dropout')}
    assert values['hidden_units'] in ('4', '16,8')
    assert 0.001 <= values['learning_rate'] <= 0.1
    assert values['dropout'] in (0.0, 0.2)

    # What the Trainer does with fn_args.hyperparameters: the tuned model config is valid and builds that model.
    tuned = apply_hyperparameters(model_cfg, best_config)
    ModelConfig(**tuned)
    assert tuned['hidden_units'] == [int(u) for u in values['hidden_units'].split(',')]
    assert tuned['learning_rate'] == pytest.approx(values['learning_rate'])
    assert model_cfg['hidden_units'] == [8], 'apply_hyperparameters changed its input'
    from tfx_tabular.components.trainer.keras_model import build_keras_model
    from tfx_tabular.transforms.preprocessing import parse_custom_config
    features, label = parse_custom_config(custom_config(_config()))
    model = build_keras_model(features, tft.TFTransformOutput(transform_dir), 2, tuned, label.type)
    hidden = [layer.units for layer in model.layers if layer.name.startswith('hidden_')]
    assert hidden == tuned['hidden_units']
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(tuned['learning_rate'], rel=1e-6)


def test_run_fn_trains_with_the_tuned_values_and_the_range_test(transformed, tuned, tmp_path):
    """The Trainer's run_fn given the Tuner's output (fn_args.hyperparameters) and lr_range_test: the exported
    model has the tuned layers, the range test's plot and numbers are in model_run."""
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx_bsl.public import tfxio
    from tfx_tabular.components.trainer import run_fn

    examples_dir, transform_dir = transformed
    model_cfg, best_config, _ = tuned
    model_cfg = {**model_cfg, 'tuning': {**model_cfg['tuning'], 'lr_range_test': True, 'lr_range_steps': 20}}
    fn_args = FnArgs(
        train_files=[os.path.join(examples_dir, 'Split-train', '*')],
        eval_files=[os.path.join(examples_dir, 'Split-eval', '*')], transform_output=transform_dir,
        serving_model_dir=str(tmp_path / 'serving'), model_run_dir=str(tmp_path / 'run'), train_steps=10,
        eval_steps=2, hyperparameters=best_config, custom_config={**custom_config(_config()), 'model': model_cfg},
        data_accessor=DataAccessor(tf_dataset_factory=lambda files, options, schema: tfxio.TFExampleRecord(
            file_pattern=files, schema=schema).TensorFlowDataset(options),
            record_batch_factory=None, data_view_decode_fn=None))
    run_fn(fn_args)
    loaded = tf.keras.models.load_model(fn_args.serving_model_dir)   # saved without traces: Keras' loader
    kernels = {v.name: v.shape for v in loaded.variables if v.name.startswith('hidden_') and 'kernel' in v.name}
    units = [int(kernels[f'hidden_{i}/kernel:0'][1]) for i in range(len(kernels))]
    assert units == [int(u) for u in best_config['values']['hidden_units'].split(',')], kernels
    assert os.path.getsize(os.path.join(fn_args.model_run_dir, LR_RANGE_PLOT)) > 1000
    with open(os.path.join(fn_args.model_run_dir, LR_RANGE_JSON)) as f:
        assert len(json.load(f)['lrs']) == 20


def test_apply_hyperparameters_accepts_what_tfx_hands_over():
    cfg = _config().models[0].model_dump(mode='json')
    hp = search_space(TUNING)
    hp.values.update({'hidden_units': '16,8', 'learning_rate': 0.02, 'dropout': 0.2})
    expected = {**cfg, 'hidden_units': [16, 8], 'learning_rate': 0.02, 'dropout': 0.2}
    assert apply_hyperparameters(cfg, hp.get_config()) == expected    # the best_hyperparameters file
    assert apply_hyperparameters(cfg, hp) == expected
    assert apply_hyperparameters(cfg, {'learning_rate': 0.02}) == {**cfg, 'learning_rate': 0.02}
    assert apply_hyperparameters(cfg, None) == cfg
    with pytest.raises(ValueError, match='batch_size cannot be applied'):
        apply_hyperparameters(cfg, {'values': {'batch_size': 32}})
    only_lr = search_space({'learning_rate': {'min': 0.001, 'max': 0.1}})
    assert [p.name for p in only_lr.space] == ['learning_rate']


def _toy():
    """Linear targets through a small ReLU net with plain SGD: too small a rate barely moves, too large diverges."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, 10)).astype('float32')
    y = (x @ rng.normal(size=(10, 1)) + 0.1 * rng.normal(size=(2048, 1))).astype('float32')
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(2048, seed=1).batch(32).repeat()

    def build(lr):
        tf.keras.utils.set_random_seed(3)
        model = tf.keras.Sequential([tf.keras.Input((10,)), tf.keras.layers.Dense(16, activation='relu'),
                                     tf.keras.layers.Dense(1)])
        model.compile(tf.keras.optimizers.SGD(lr), 'mse')
        return model
    return build, dataset


def test_lr_range_test_suggests_a_rate_that_trains(tmp_path):
    build, dataset = _toy()
    result = lr_range_test(build, dataset, steps=100, min_lr=1e-5, max_lr=10.0)
    assert 1e-5 <= result.suggested <= 10.0
    assert result.stopped_early and len(result.lrs) < 100, 'SGD at a rate of 10 should have diverged'
    assert result.lrs == sorted(result.lrs) and result.lrs[0] == pytest.approx(1e-5)
    assert result.suggested == pytest.approx(result.lr_at_min / 10)

    def loss_after_training(lr):
        model = build(lr)
        model.fit(dataset, steps_per_epoch=100, epochs=1, verbose=0)
        return model.evaluate(dataset.take(20), verbose=0)
    start = build(1e-5).evaluate(dataset.take(20), verbose=0)
    at_suggested, at_min, at_max = (loss_after_training(lr) for lr in (result.suggested, 1e-5, 10.0))
    assert at_suggested < 0.1 * start, (start, at_suggested)
    assert at_suggested < 0.1 * at_min, (at_min, at_suggested)  # the low end learns almost nothing
    assert not (at_max < at_suggested), (at_max, at_suggested)   # the high end diverges (NaN or huge)

    path = str(tmp_path / 'lr.png')
    plot_lr_range(result, path)
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert os.listdir(tmp_path) == ['lr.png'], 'the temp file was left behind'


def test_lr_range_test_on_the_trainers_keras_model(transformed, tmp_path):
    """What the Trainer runs: the package's model on tf.Transform output; plot and numbers in model_run."""
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx_bsl.public import tfxio
    from tfx_tabular.components.trainer.data import dataset
    from tfx_tabular.components.trainer.keras_model import build_keras_model
    from tfx_tabular.transforms.preprocessing import parse_custom_config

    examples_dir, transform_dir = transformed
    features, label = parse_custom_config(custom_config(_config()))
    tft_output = tft.TFTransformOutput(transform_dir)
    cfg = _config().models[0].model_dump(mode='json')
    fn_args = FnArgs(data_accessor=DataAccessor(
        tf_dataset_factory=lambda files, options, schema: tfxio.TFExampleRecord(
            file_pattern=files, schema=schema).TensorFlowDataset(options),
        record_batch_factory=None, data_view_decode_fn=None))
    train = dataset(fn_args, [os.path.join(examples_dir, 'Split-train', '*')], tft_output, label, 2, 16, 42)
    tuning = TuningConfig(search=False, lr_range_test=True, lr_range_steps=40).model_dump(mode='json')
    out = str(tmp_path / 'model_run')
    result = run_for_trainer(lambda lr: build_keras_model(features, tft_output, 2, {**cfg, 'learning_rate': lr},
                                                          label.type), train, tuning, out, seed=42)
    assert 1e-5 <= result.suggested <= 1.0
    assert len(result.lrs) >= 10 and all(math.isfinite(v) for v in result.smoothed)
    assert min(result.smoothed) < result.smoothed[0], 'the loss never went down'
    assert os.path.getsize(os.path.join(out, LR_RANGE_PLOT)) > 1000
    with open(os.path.join(out, LR_RANGE_JSON)) as f:
        assert json.load(f)['suggested'] == pytest.approx(result.suggested)


def test_tuning_config_errors(small_config):
    write, raw = small_config
    raw['model'] = {'kind': 'estimator_dnn', 'tuning': {'trials': 3}}
    with pytest.raises(ConfigError) as err:
        load_config(write(raw))
    assert err.value.problems == ['model: tuning applies to Keras kinds only (keras_dnn, keras_wide_deep), not '
                                  'estimator_dnn: remove tuning or use a Keras kind']
    raw.pop('model')
    raw['models'] = [{'kind': 'keras_dnn', 'tuning': {'lr_range_test': True}},
                     {'kind': 'estimator_linear', 'tuning': {'lr_range_test': True}}]
    with pytest.raises(ConfigError) as err:
        load_config(write(raw))
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith('models.1: tuning applies to Keras')
    raw['models'] = [{'kind': 'keras_dnn', 'tuning': {'use_suggested_lr': True}}]
    with pytest.raises(ConfigError, match='use_suggested_lr needs lr_range_test: true'):
        load_config(write(raw))
    raw['models'] = [{'kind': 'keras_wide_deep', 'tuning': {'hidden_units': [[32], [64, 32]], 'dropout': [0, 0.2],
                                                            'lr_range_test': True}}]
    model = load_config(write(raw)).models[0]
    dumped = model.model_dump(mode='json')['tuning']  # what the pipeline puts in custom_config
    assert TuningConfig(**json.loads(json.dumps(dumped))) == model.tuning
    assert dumped['learning_rate'] == {'min': 0.0001, 'max': 0.03}  # searched by default


def test_tuner_search_is_seeded(transformed, tmp_path):
    """Same seed, same first points; another seed, other points (no training needed to see it)."""
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx_bsl.public import tfxio
    from tfx_tabular.components.tuner import tuner_fn

    examples_dir, transform_dir = transformed

    def first_points(seed, where):
        cfg = _config(tuning={**TUNING, 'trials': 5}, seed=seed).models[0].model_dump(mode='json')
        fn_args = FnArgs(
            working_dir=str(tmp_path / where), transform_graph_path=transform_dir, eval_steps=3,
            train_files=[os.path.join(examples_dir, 'Split-train', '*')],
            eval_files=[os.path.join(examples_dir, 'Split-eval', '*')],
            custom_config={**custom_config(_config()), 'model': cfg},
            data_accessor=DataAccessor(tf_dataset_factory=lambda files, options, schema: tfxio.TFExampleRecord(
                file_pattern=files, schema=schema).TensorFlowDataset(options),
                record_batch_factory=None, data_view_decode_fn=None))
        oracle = tuner_fn(fn_args).tuner.oracle
        return [oracle.populate_space(str(i))['values'] for i in range(3)]

    assert first_points(7, 'a') == first_points(7, 'b')
    assert first_points(7, 'c') != first_points(8, 'd')
