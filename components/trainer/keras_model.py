"""The Keras kinds (keras_dnn, keras_wide_deep): built on the shared feature columns, trained with `fit`."""
import math
import os
from typing import Callable, Dict, Tuple

import tensorflow as tf

from tfx_tabular.components.trainer.curves import CURVES_FILE, keras_curves, plot_curves
from tfx_tabular.components.trainer.data import dataset, head_type
from tfx_tabular.components.trainer.lr_range_test import run_for_trainer
from tfx_tabular.components.trainer.signatures import PREDICTION_KEY
from tfx_tabular.transforms.feature_columns import feature_columns, keras_inputs, wide_columns

OPTIMIZERS = {'adam': tf.keras.optimizers.Adam, 'sgd': tf.keras.optimizers.SGD,
              'rmsprop': tf.keras.optimizers.RMSprop, 'adagrad': tf.keras.optimizers.Adagrad}


def build_keras_model(features: Dict, tf_transform_output, n_classes: int, model_cfg: Dict,
                      label_type: str = 'multiclass') -> tf.keras.Model:
    """keras_dnn: feature columns -> hidden layers -> head. keras_wide_deep adds a linear part on one-hot ids.

    Head: one sigmoid for 2 classes, a softmax for more, one sigmoid per class for a multi-label label.
    """
    head = head_type(label_type, n_classes)
    inputs = keras_inputs(features)
    x = tf.keras.layers.DenseFeatures(feature_columns(features, tf_transform_output), name='feature_layer')(inputs)
    for i, units in enumerate(model_cfg['hidden_units']):
        x = tf.keras.layers.Dense(units, activation='relu', name=f'hidden_{i}')(x)
        if model_cfg['dropout']:
            x = tf.keras.layers.Dropout(model_cfg['dropout'], name=f'dropout_{i}')(x)
    outputs = 1 if head == 'binary' else n_classes
    logits = tf.keras.layers.Dense(outputs, name='deep_logits')(x)
    if model_cfg['kind'] == 'keras_wide_deep':
        wide = tf.keras.layers.DenseFeatures(wide_columns(features, tf_transform_output), name='wide_features')(inputs)
        logits = tf.keras.layers.Add(name='logits')([logits, tf.keras.layers.Dense(outputs, name='wide_logits')(wide)])
    probabilities = tf.keras.layers.Activation('softmax' if head == 'multiclass' else 'sigmoid',
                                               name=PREDICTION_KEY)(logits)
    model = tf.keras.Model(inputs, probabilities)
    optimizer = OPTIMIZERS[model_cfg['optimizer']](model_cfg['learning_rate'])
    if head == 'multiclass':
        model.compile(optimizer, tf.keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')])
    else:
        model.compile(optimizer, tf.keras.losses.BinaryCrossentropy(),
                      metrics=[tf.keras.metrics.BinaryAccuracy(name='accuracy'),
                               tf.keras.metrics.AUC(name='auc', multi_label=head == 'multilabel')])
    return model


def train_keras(fn_args, features, label, names, tf_transform_output, model_cfg) -> Tuple[tf.Module, Callable]:
    batch, seed, n = model_cfg['batch_size'], model_cfg['seed'], len(names)
    train = dataset(fn_args, fn_args.train_files, tf_transform_output, label, n, batch, seed)
    evaluation = dataset(fn_args, fn_args.eval_files, tf_transform_output, label, n, batch, seed)
    tuning = model_cfg.get('tuning') or {}
    if tuning.get('lr_range_test'):

        def build(learning_rate):
            return build_keras_model(features, tf_transform_output, n, {**model_cfg, 'learning_rate': learning_rate},
                                     label.type)
        result = run_for_trainer(build, train, tuning, fn_args.model_run_dir, seed)
        if tuning.get('use_suggested_lr'):
            model_cfg = {**model_cfg, 'learning_rate': result.suggested}
    model = build_keras_model(features, tf_transform_output, n, model_cfg, label.type)
    epochs = min(model_cfg['epochs'], fn_args.train_steps)
    callbacks = [tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq='epoch')]
    if model_cfg.get('early_stopping_patience'):
        callbacks.append(tf.keras.callbacks.EarlyStopping(
            monitor='val_loss', patience=model_cfg['early_stopping_patience'], restore_best_weights=True))
    history = model.fit(
        train, epochs=epochs, steps_per_epoch=math.ceil(fn_args.train_steps / epochs),
        validation_data=evaluation, validation_steps=fn_args.eval_steps, verbose=2, callbacks=callbacks)
    plot_curves(keras_curves(history.history), os.path.join(fn_args.model_run_dir, CURVES_FILE), 'epoch')
    return model, model


def save_keras(model: tf.keras.Model, export_dir: str, signatures) -> None:
    # With the layers' call functions traced in: the Evaluator's Beam worker processes (multi-processing mode, on
    # CSVs over 32 MB or object-storage CSVs) cannot load a model saved with save_traces=False (DenseFeatures).
    model.save(export_dir, save_format='tf', signatures=signatures)
