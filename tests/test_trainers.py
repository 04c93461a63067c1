"""Every model kind x every label type: trained a few steps by the real `run_fn` on a real tf.Transform output,
exported, evaluated by TFMA with the Evaluator's own config, and asked a TF Serving Classify request.

One tf.Transform run and one TFMA run (all six models side by side) per label type keep this under a few minutes.
"""
import os
import random

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
from tensorflow_serving.apis import classification_pb2
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from tfx_tabular.components.evaluator.eval_config import eval_config
from tfx_tabular.components.trainer import run_fn
from tfx_tabular.pipeline.core.config import MODEL_KINDS, Config
from tfx_tabular.serving.inference import classify
from tfx_tabular.serving.servable import Servable
from tests.conftest import run_transform
from tfx_tabular.transforms.preprocessing import custom_config

FEATURES = {
    'num': {'kind': 'numeric'},
    'bkt': {'kind': 'bucketized', 'buckets': 3},
    'city': {'kind': 'categorical', 'embedding_dim': 2},
    'town': {'kind': 'hashed', 'hash_buckets': 5},
    'city_x_town': {'kind': 'crossed', 'columns': ['city', 'town'], 'hash_buckets': 7},
}
LABELS = {
    'binary': {'column': 'y', 'type': 'binary', 'classes': ['no', 'yes']},
    'multiclass': {'column': 'y', 'type': 'multiclass'},
    'multilabel': {'column': 'y', 'type': 'multilabel'},
}
SPEC = {'num': tf.io.FixedLenFeature([], tf.float32), 'bkt': tf.io.FixedLenFeature([], tf.float32),
        'city': tf.io.FixedLenFeature([], tf.string), 'town': tf.io.FixedLenFeature([], tf.string),
        'y': tf.io.FixedLenFeature([], tf.string)}
STEPS = 30


def _label(label_type: str, num: float, city: str) -> str:
    if label_type == 'binary':
        return 'yes' if num > 0.5 else 'no'
    if label_type == 'multiclass':
        return 'low' if num < 0.33 else 'mid' if num < 0.66 else 'high'
    return '|'.join(t for t, on in (('big', num > 0.5), ('north', city in 'ab'), ('old', num < 0.2)) if on) or 'none'


def _rows(label_type: str, n: int = 240):
    rng = random.Random(7)
    rows = []
    for _ in range(n):
        num, city = rng.random(), rng.choice('abcd')
        rows.append({'num': num, 'bkt': rng.random() * 10, 'city': city, 'town': rng.choice(['x', 'y', 'z']),
                     'y': _label(label_type, num, city)})
    return rows


def _example(row) -> bytes:
    feature = {k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) if isinstance(v, float)
               else tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()])) for k, v in row.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


NEURAL = {'hidden_units': [8], 'dropout': 0, 'learning_rate': 0.05, 'batch_size': 16, 'epochs': 3}
TREES = {'trees': {'num_trees': 20, 'max_depth': 3}}


def _config(label_type: str) -> Config:
    models = [{'kind': k, 'train_steps': STEPS, 'eval_steps': 2,
               **(TREES if MODEL_KINDS[k].trainer == 'trees' else NEURAL)} for k in MODEL_KINDS]
    return Config(name='t', data={'csv': 'x.csv'}, serving={'model_name': 't'}, features=FEATURES,
                  label=LABELS[label_type], models=models, slicing=['city'])


def _write(path: str, records, gzip: bool = False) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path, 'GZIP' if gzip else None) as writer:
        for r in records:
            writer.write(r)
    return path


@pytest.fixture(scope='module', params=list(LABELS))
def trained(request, tmp_path_factory):
    """(label type, config, {kind: serving dir}, raw example file, rows): every kind on one Transform output."""
    label_type = request.param
    out = tmp_path_factory.mktemp(label_type)
    config = _config(label_type)
    rows = _rows(label_type)
    raw_file = _write(str(out / 'raw.tfrecord'), [_example(r) for r in rows])
    for split in ('train', 'eval'):  # ExampleGen's layout, for EmbeddingMetadataGen
        _write(str(out / 'examples' / f'Split-{split}' / 'data.gz'), [_example(r) for r in rows], gzip=True)
    transform_dir = str(out / 'transform')
    transformed, transformed_metadata = run_transform(config, rows, SPEC, transform_dir)
    coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
    transformed_file = _write(str(out / 'transformed.tfrecord'), [coder.encode(r) for r in transformed])
    tft_output = tft.TFTransformOutput(transform_dir)
    schema = tft_output.transformed_metadata.schema

    def dataset_factory(files, options, schema_arg):
        return tfxio.TFExampleRecord(file_pattern=files, schema=schema_arg).TensorFlowDataset(options)

    models = {}
    for m in config.models:
        fn_args = FnArgs(
            train_files=[transformed_file], eval_files=[transformed_file], transform_output=transform_dir,
            serving_model_dir=str(out / m.name / 'serving'), model_run_dir=str(out / m.name / 'run'),
            train_steps=STEPS, eval_steps=2, schema_file=None,
            custom_config={**custom_config(config), 'model': m.model_dump(mode='json')},
            data_accessor=DataAccessor(tf_dataset_factory=dataset_factory, record_batch_factory=None,
                                       data_view_decode_fn=None))
        run_fn(fn_args)
        models[m.kind] = fn_args.serving_model_dir
    assert schema.feature  # the transformed schema was used
    return label_type, config, models, raw_file, rows, str(out)


def test_every_kind_exports_the_same_signatures_and_curves(trained):
    label_type, config, models, _, _, out = trained
    for kind, path in models.items():
        loaded = tf.saved_model.load(path)
        assert set(loaded.signatures) >= {'serving_default', 'serving_raw', 'transform_features'}, kind
        assert os.path.exists(os.path.join(os.path.dirname(path), 'run', 'training_curves.png')), kind
        event_files = tf.io.gfile.glob(os.path.join(os.path.dirname(path), 'run', '**', 'events.out.tfevents.*'))
        assert event_files, f'{kind}: no TensorBoard event files'


def test_every_kind_answers_classify_with_class_names(trained):
    label_type, config, models, _, rows, _ = trained
    expected = {'binary': ['no', 'yes'], 'multiclass': None, 'multilabel': None}[label_type]
    for kind, path in models.items():
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = 't'
        for row in rows[:5]:
            example = request.input.example_list.examples.add()
            example.ParseFromString(_example({k: v for k, v in row.items() if k != 'y'}))
        servable = Servable('t', 1, path)
        try:
            response = classify(servable, request)
        finally:
            servable.close()
        classifications = response.result.classifications
        assert len(classifications) == 5, kind
        for c in classifications:
            names = [cl.label for cl in c.classes]
            scores = np.array([cl.score for cl in c.classes])
            assert ((scores >= 0) & (scores <= 1)).all(), kind
            if label_type == 'multilabel':
                assert set(names) == {'big', 'north', 'old', 'none'}, kind
            else:
                assert scores.sum() == pytest.approx(1.0, abs=1e-4), kind
                assert names == expected if expected else set(names) == {'low', 'mid', 'high'}, kind


def test_every_kind_is_evaluated_by_tfma_side_by_side(trained):
    """One TFMA run over all the models with the Evaluator's metrics; each learnt something."""
    label_type, config, models, raw_file, rows, out = trained
    n_classes = {'binary': 2, 'multiclass': 3, 'multilabel': 4}[label_type]
    base = eval_config(config, n_classes)
    spec = base.model_specs[0]
    model_specs = []
    for kind in models:
        s = type(spec)()
        s.CopyFrom(spec)
        s.name = kind
        model_specs.append(s)
    del base.model_specs[:]
    base.model_specs.extend(model_specs)
    shared = [tfma.default_eval_shared_model(path, model_name=kind, eval_config=base) for kind, path in models.items()]
    output = os.path.join(out, 'tfma')
    tfma.run_model_analysis(eval_shared_model=shared, eval_config=base, data_location=raw_file,
                            file_format='tfrecords', output_path=output)
    accuracy = {}
    for per_slice in tfma.load_metrics(output):
        if per_slice.slice_key.single_slice_keys:
            continue
        for kv in per_slice.metric_keys_and_values:
            if kv.key.name.endswith('accuracy') and not kv.key.HasField('sub_key'):
                accuracy[kv.key.model_name] = kv.value.double_value.value
    assert set(accuracy) == set(models)
    majority = max(sum(1 for r in rows if r['y'] == v) for v in {r['y'] for r in rows}) / len(rows)
    for kind, value in accuracy.items():
        # Multi-label accuracy counts every (example, class) decision; any kind should beat chance there.
        floor = 0.6 if label_type == 'multilabel' else majority
        assert value >= floor - 0.02, f'{label_type} {kind}: accuracy {value:.3f} vs floor {floor:.3f}'


def test_embedding_metadata_for_every_dnn_kind(trained):
    """EmbeddingMetadataGen's writer on Keras and estimator DNNs, every label type: one labelled metadata row per
    kernel row; for the estimators, the DNN rebuilt from the labelled kernels gives the estimator's own output."""
    import json
    from tfx.types import standard_artifacts
    from tfx_tabular.components.embedding_metadata.executor import generate
    from tfx_tabular.components.embedding_metadata.network import estimator_network, load_network
    from tfx_tabular.transforms.feature_columns import feature_columns

    label_type, config, models, _, rows, out = trained
    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = os.path.join(out, 'examples'), json.dumps(['train', 'eval'])
    transform_dir = os.path.join(out, 'transform')
    tft_output = tft.TFTransformOutput(transform_dir)
    for kind in ('keras_dnn', 'keras_wide_deep', 'estimator_dnn', 'estimator_wide_deep'):
        logdir = os.path.join(out, 'projector', kind)
        tensors = generate(models[kind], transform_dir, examples, logdir, custom_config(config), ['city'], 20)
        values = tensors['feature_values']
        # num, 3 buckets, 4 cities embedded in 2 dims, 5 town hashes, 7 cross hashes: 1 + 3 + 2 + 5 + 7 rows
        assert values.values.shape == (18, 8), (kind, values.values.shape)
        with open(os.path.join(logdir, 'feature_values.metadata.tsv')) as f:
            lines = f.read().splitlines()
        assert len(lines) == 1 + values.values.shape[0] and lines[0].startswith('label\t')
        assert tensors['examples'].values.shape[0] == 20
        city = tensors['embedding_city']  # the embedding table, one row per vocabulary id, labelled by value
        assert city.values.shape == (5, 2) and {'city=a', 'city=d', 'city=<OOV>'} <= {r[0] for r in city.rows}, kind
    features = parse_features(config)
    for kind in ('estimator_dnn', 'estimator_wide_deep'):
        network = load_network(models[kind], lambda: feature_columns(features, tft_output),
                               label_type == 'multilabel')
        sample = {k: v[:50] for k, v in network_inputs(transform_dir, rows[:50]).items()}
        _, estimator_probs = network.run(sample)
        if kind == 'estimator_dnn':  # no linear part: the numpy DNN over the labelled kernels is the whole model
            loaded = tf.saved_model.load(models[kind])
            variables = {v.name.split(':')[0]: v.numpy() for v in loaded.estimator.variables}
            rebuilt = estimator_network(variables, feature_columns(features, tft_output),
                                        multi_label=label_type == 'multilabel')
            np.testing.assert_allclose(rebuilt.run(sample)[1], estimator_probs, rtol=1e-4, atol=1e-5)


def parse_features(config):
    from tfx_tabular.transforms.preprocessing import parse_custom_config
    return parse_custom_config(custom_config(config))[0]


def network_inputs(transform_dir, rows):
    from tfx_tabular.components.embedding_metadata.data import parse_and_transform
    _, transformed = parse_and_transform(tft.TFTransformOutput(transform_dir))(tf.constant([_example(r) for r in rows]))
    return {k: v.numpy() for k, v in transformed.items() if not isinstance(v, tf.SparseTensor)}
