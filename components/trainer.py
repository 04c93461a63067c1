"""Trainer `run_fn`: a Keras DNN on the tf.Transform output, exported with serving signatures that take raw data.

Signatures of the exported SavedModel:
  serving_default     serialized tf.Example (raw CSV values)  -> classes, scores, probabilities
  serving_raw         one tensor per raw CSV column            -> classes, scores, probabilities
  transform_features  serialized tf.Example (with label)       -> transformed features (TFMA uses it)
"""
import math
import os
from typing import Dict, List

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from transforms.feature_columns import feature_columns, keras_inputs
from transforms.preprocessing import LABEL_VOCABULARY, label_key, parse_custom_config

PREDICTION_KEY = 'probabilities'
CURVES_FILE = 'training_curves.png'


def class_names(label, tf_transform_output: tft.TFTransformOutput) -> List[str]:
    """Class names in label-id order: the config's `classes`, else the label vocabulary (most frequent first)."""
    if label.classes:
        return list(label.classes)
    return [v.decode() for v in tf_transform_output.vocabulary_by_name(LABEL_VOCABULARY)]


def build_keras_dnn(features: Dict, tf_transform_output, n_classes: int, model_cfg: Dict) -> tf.keras.Model:
    inputs = keras_inputs(features)
    x = tf.keras.layers.DenseFeatures(feature_columns(features, tf_transform_output), name='feature_layer')(inputs)
    for i, units in enumerate(model_cfg['hidden_units']):
        x = tf.keras.layers.Dense(units, activation='relu', name=f'hidden_{i}')(x)
        if model_cfg['dropout']:
            x = tf.keras.layers.Dropout(model_cfg['dropout'], name=f'dropout_{i}')(x)
    optimizer = tf.keras.optimizers.Adam(model_cfg['learning_rate'])
    if n_classes == 2:
        out = tf.keras.layers.Dense(1, activation='sigmoid', name=PREDICTION_KEY)(x)
        model = tf.keras.Model(inputs, out)
        model.compile(optimizer, tf.keras.losses.BinaryCrossentropy(),
                      metrics=[tf.keras.metrics.BinaryAccuracy(name='accuracy'), tf.keras.metrics.AUC(name='auc')])
    else:
        out = tf.keras.layers.Dense(n_classes, activation='softmax', name=PREDICTION_KEY)(x)
        model = tf.keras.Model(inputs, out)
        model.compile(optimizer, tf.keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')])
    return model


def _dataset(fn_args, files, tf_transform_output, label, batch_size):
    return fn_args.data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_key(label)),
        tf_transform_output.transformed_metadata.schema).repeat()


def _signatures(model, tf_transform_output, raw_columns: List[str], label, names: List[str]):
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {c: raw_spec[c] for c in raw_columns}
    class_table = tf.constant(names)

    def predict(raw_features):
        transformed = model.tft_layer(raw_features)
        transformed.pop(label_key(label), None)
        probabilities = model(transformed)
        scores = tf.concat([1.0 - probabilities, probabilities], axis=1) if len(names) == 2 else probabilities
        batch = tf.shape(scores)[0]
        return {'classes': tf.tile(class_table[tf.newaxis, :], [batch, 1]), 'scores': scores,
                PREDICTION_KEY: probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
    def serve_examples(serialized):
        return predict(tf.io.parse_example(serialized, serving_spec))

    def to_raw_form(name, x):
        spec = raw_spec[name]
        if isinstance(spec, tf.io.VarLenFeature):
            n = tf.shape(x, out_type=tf.int64)[0]
            indices = tf.stack([tf.range(n), tf.zeros([n], tf.int64)], axis=1)
            return tf.SparseTensor(indices, x, tf.stack([n, 1]))
        return tf.reshape(x, [-1] + list(spec.shape))

    @tf.function(input_signature=[{c: tf.TensorSpec([None], raw_spec[c].dtype, name=c) for c in raw_columns}])
    def serve_raw(raw):
        return predict({c: to_raw_form(c, raw[c]) for c in raw_columns})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    return {'serving_default': serve_examples, 'serving_raw': serve_raw,
            'transform_features': transform_features}


def plot_curves(history: Dict[str, List[float]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    metrics = [m for m in history if not m.startswith('val_')]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        ax.plot(range(1, len(history[m]) + 1), history[m], marker='o', label='train')
        if f'val_{m}' in history:
            ax.plot(range(1, len(history[m]) + 1), history[f'val_{m}'], marker='o', label='eval')
        ax.set_title(m)
        ax.set_xlabel('epoch')
        ax.legend()
    fig.tight_layout()
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    features, label = parse_custom_config(fn_args.custom_config)
    model_cfg = fn_args.custom_config['model']
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    names = class_names(label, tf_transform_output)
    batch = model_cfg['batch_size']
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, label, batch)
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, label, batch)

    model = build_keras_dnn(features, tf_transform_output, len(names), model_cfg)
    epochs = min(10, fn_args.train_steps)
    history = model.fit(
        train, epochs=epochs, steps_per_epoch=math.ceil(fn_args.train_steps / epochs),
        validation_data=evaluation, validation_steps=fn_args.eval_steps, verbose=2,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq='epoch')])
    plot_curves(history.history, os.path.join(fn_args.model_run_dir, CURVES_FILE))

    raw_columns = [n for n, f in features.items() if f.kind != 'crossed']
    signatures = _signatures(model, tf_transform_output, raw_columns, label, names)
    model.save(fn_args.serving_model_dir, save_format='tf', signatures=signatures)
