"""Keras model kinds built from the shared feature columns over a real tf.Transform output, trained a few steps."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from tfx_tabular.components.trainer.keras_model import OPTIMIZERS, build_keras_model
from tfx_tabular.components.trainer.signatures import PREDICTION_KEY
from tfx_tabular.pipeline.core.config import Config
from tests.test_preprocessing import ROWS, _transform
from tfx_tabular.transforms.feature_columns import feature_columns, num_ids, wide_columns

FEATURES = {
    'num': {'kind': 'numeric'},
    'bkt': {'kind': 'bucketized', 'buckets': 2},
    'city': {'kind': 'categorical', 'embedding_dim': 3},
    'town': {'kind': 'hashed', 'hash_buckets': 7},
    'city_x_town': {'kind': 'crossed', 'columns': ['city', 'town'], 'hash_buckets': 11},
}


def _config(kind, label):
    return Config(name='t', data={'csv': 'x.csv'}, serving={'model_name': 't'}, features=FEATURES,
                  label=label, model={'kind': kind, 'hidden_units': [4], 'optimizer': 'sgd', 'dropout': 0})


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('transform'))
    config = _config('keras_dnn', {'column': 'y', 'type': 'binary', 'classes': ['no', 'yes']})
    outputs, _ = _transform(config, out_dir)
    return config, outputs, tft.TFTransformOutput(out_dir)


def _fit(config, outputs, tf_transform_output, n_classes, labels):
    model = build_keras_model(config.features, tf_transform_output, n_classes, config.models[0].model_dump())
    x = {k: np.array(outputs[k]) for k in model.input_names}
    history = model.fit(x, np.array(labels), epochs=3, batch_size=4, verbose=0)
    return model, x, history


def test_feature_columns_sizes_and_embeddings(transformed):
    config, _, tf_transform_output = transformed
    deep = {c.name: c for c in feature_columns(config.features, tf_transform_output)}
    assert deep['numeric'].names == ('num',) and deep['numeric'].variable_shape == [1]
    assert deep['city_xf_embedding'].dimension == 3
    assert deep['city_xf_embedding'].categorical_column.num_buckets == (
        tf_transform_output.vocabulary_size_by_name('city') + 1)
    assert deep['town_xf_indicator'].categorical_column.num_buckets == 7
    assert deep['bkt_xf_indicator'].categorical_column.num_buckets == 2
    assert deep['city_x_town_xf_indicator'].categorical_column.num_buckets == 11
    wide = [c.name for c in wide_columns(config.features, tf_transform_output)]
    assert sorted(wide) == ['bkt_xf_indicator', 'city_x_town_xf_indicator', 'city_xf_indicator',
                            'town_xf_indicator']
    cities = {row[4] for row in ROWS}
    assert num_ids('city', config.features['city'], tf_transform_output) == len(cities) + 1  # + 1 OOV bucket
    assert set(OPTIMIZERS) == {'adam', 'sgd', 'rmsprop', 'adagrad'}


@pytest.mark.parametrize('kind', ['keras_dnn', 'keras_wide_deep'])
def test_binary_models_train_and_predict(transformed, kind):
    config, outputs, tf_transform_output = transformed
    config = _config(kind, {'column': 'y', 'type': 'binary', 'classes': ['no', 'yes']})
    model, x, history = _fit(config, outputs, tf_transform_output, 2, outputs['y_xf'])
    assert history.history['loss'][-1] < history.history['loss'][0]
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (len(ROWS), 1) and ((0 <= probabilities) & (probabilities <= 1)).all()
    layers = {layer.name for layer in model.layers}
    assert {'feature_layer', 'hidden_0', PREDICTION_KEY} <= layers
    assert ('wide_logits' in layers) == (kind == 'keras_wide_deep')
    embedding = [v for v in model.weights if 'city_xf_embedding' in v.name]
    assert len(embedding) == 1 and embedding[0].shape == (len({row[4] for row in ROWS}) + 1, 3)


def test_multiclass_head_sums_to_one(transformed):
    config, outputs, tf_transform_output = transformed
    config = _config('keras_wide_deep', {'column': 'y', 'type': 'binary'})
    labels = [i % 3 for i in range(len(ROWS))]
    model, x, _ = _fit(config, outputs, tf_transform_output, 3, labels)
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (len(ROWS), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_wide_deep_needs_an_id_feature():
    with pytest.raises(ValueError, match='keras_wide_deep needs at least one categorical'):
        Config(name='t', data={'csv': 'x.csv'}, serving={'model_name': 't'},
               features={'num': {'kind': 'numeric'}}, label={'column': 'y', 'type': 'binary'},
               model={'kind': 'keras_wide_deep'})
