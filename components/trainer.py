"""Trainer `run_fn`: a Keras DNN or wide-and-deep model on the tf.Transform output, exported with serving
signatures that take raw data.

Signatures of the exported SavedModel:
  serving_default     serialized tf.Example (raw CSV values)  -> classes, scores, probabilities
                      (method tensorflow/serving/classify, input `inputs`: TF Serving's Classify and Predict)
  serving_raw         one tensor per raw CSV column            -> classes, scores, probabilities
  transform_features  serialized tf.Example (with label)       -> transformed features (TFMA uses it)
"""
import math
import os
from typing import Dict, List

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.protobuf import saved_model_pb2
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from transforms.feature_columns import feature_columns, keras_inputs, wide_columns
from transforms.preprocessing import LABEL_VOCABULARY, label_key, parse_custom_config

PREDICTION_KEY = 'probabilities'
SERVING_INPUT = 'inputs'  # the input key TF Serving's Classify API requires
CLASSIFY_METHOD = 'tensorflow/serving/classify'
CURVES_FILE = 'training_curves.png'


def class_names(label, tf_transform_output: tft.TFTransformOutput) -> List[str]:
    """Class names in label-id order: the config's `classes`, else the label vocabulary (most frequent first)."""
    if label.classes:
        return list(label.classes)
    return [v.decode() for v in tf_transform_output.vocabulary_by_name(LABEL_VOCABULARY)]


OPTIMIZERS = {'adam': tf.keras.optimizers.Adam, 'sgd': tf.keras.optimizers.SGD,
              'rmsprop': tf.keras.optimizers.RMSprop, 'adagrad': tf.keras.optimizers.Adagrad}


def build_keras_model(features: Dict, tf_transform_output, n_classes: int, model_cfg: Dict) -> tf.keras.Model:
    """keras_dnn: feature columns -> hidden layers -> head. keras_wide_deep adds a linear part on one-hot ids."""
    inputs = keras_inputs(features)
    x = tf.keras.layers.DenseFeatures(feature_columns(features, tf_transform_output), name='feature_layer')(inputs)
    for i, units in enumerate(model_cfg['hidden_units']):
        x = tf.keras.layers.Dense(units, activation='relu', name=f'hidden_{i}')(x)
        if model_cfg['dropout']:
            x = tf.keras.layers.Dropout(model_cfg['dropout'], name=f'dropout_{i}')(x)
    outputs = 1 if n_classes == 2 else n_classes
    logits = tf.keras.layers.Dense(outputs, name='deep_logits')(x)
    if model_cfg['kind'] == 'keras_wide_deep':
        wide = tf.keras.layers.DenseFeatures(wide_columns(features, tf_transform_output), name='wide_features')(inputs)
        logits = tf.keras.layers.Add(name='logits')([logits, tf.keras.layers.Dense(outputs, name='wide_logits')(wide)])
    probabilities = tf.keras.layers.Activation('sigmoid' if n_classes == 2 else 'softmax', name=PREDICTION_KEY)(logits)
    model = tf.keras.Model(inputs, probabilities)
    optimizer = OPTIMIZERS[model_cfg['optimizer']](model_cfg['learning_rate'])
    if n_classes == 2:
        model.compile(optimizer, tf.keras.losses.BinaryCrossentropy(),
                      metrics=[tf.keras.metrics.BinaryAccuracy(name='accuracy'), tf.keras.metrics.AUC(name='auc')])
    else:
        model.compile(optimizer, tf.keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')])
    return model


def _dataset(fn_args, files, tf_transform_output, label, batch_size, seed):
    return fn_args.data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_key(label), shuffle_seed=seed),
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

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SERVING_INPUT)])
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


def mark_classify_signature(export_dir: str, signature: str = 'serving_default') -> None:
    """Declares `signature` a classification signature, as TF Serving's Classify API requires.

    Keras exports every tf.function signature with the Predict method name; Classify refuses those. TF Serving
    still answers Predict on a classification signature, so both APIs work on `serving_default`.
    """
    path = os.path.join(export_dir, 'saved_model.pb')
    with tf.io.gfile.GFile(path, 'rb') as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        meta_graph.signature_def[signature].method_name = CLASSIFY_METHOD
        # Classify also refuses a signature with more than two outputs ("Expected one or two output Tensors"):
        # keep classes and scores in the SignatureDef. TF2 loaders (TFMA) still get every output of the function.
        outputs = meta_graph.signature_def[signature].outputs
        for key in set(outputs) - {'classes', 'scores'}:
            del outputs[key]
    with tf.io.gfile.GFile(path + '.tmp', 'wb') as f:
        f.write(saved_model.SerializeToString())
    tf.io.gfile.rename(path + '.tmp', path, overwrite=True)


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
    tf.keras.utils.set_random_seed(model_cfg['seed'])
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, label, batch, model_cfg['seed'])
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, label, batch, model_cfg['seed'])

    model = build_keras_model(features, tf_transform_output, len(names), model_cfg)
    epochs = min(10, fn_args.train_steps)
    callbacks = [tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq='epoch')]
    if model_cfg.get('early_stopping_patience'):
        callbacks.append(tf.keras.callbacks.EarlyStopping(
            monitor='val_loss', patience=model_cfg['early_stopping_patience'], restore_best_weights=True))
    history = model.fit(
        train, epochs=epochs, steps_per_epoch=math.ceil(fn_args.train_steps / epochs),
        validation_data=evaluation, validation_steps=fn_args.eval_steps, verbose=2, callbacks=callbacks)
    plot_curves(history.history, os.path.join(fn_args.model_run_dir, CURVES_FILE))

    raw_columns = [n for n, f in features.items() if f.kind != 'crossed']
    signatures = _signatures(model, tf_transform_output, raw_columns, label, names)
    model.save(fn_args.serving_model_dir, save_format='tf', signatures=signatures)
    mark_classify_signature(fn_args.serving_model_dir)
