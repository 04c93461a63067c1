"""The tf.estimator kinds (estimator_dnn, estimator_linear, estimator_wide_deep): canned estimators on the shared
feature columns, trained with `train_and_evaluate`, exported over transformed features and loaded back."""
import math
import os
import shutil
from typing import Dict

import tensorflow as tf

from tfx_tabular.components.trainer.curves import CURVES_FILE, event_curves, plot_curves
from tfx_tabular.components.trainer.data import dataset, head_type
from tfx_tabular.transforms.feature_columns import feature_columns, keras_inputs, linear_columns

# Canned estimators need the legacy Keras optimizers.
LEGACY_OPTIMIZERS = {'adam': tf.keras.optimizers.legacy.Adam, 'sgd': tf.keras.optimizers.legacy.SGD,
                     'rmsprop': tf.keras.optimizers.legacy.RMSprop, 'adagrad': tf.keras.optimizers.legacy.Adagrad}
ESTIMATOR_EXPORT = 'estimator_export'  # the TF1 export inside model_run, before it is wrapped


def build_estimator(features: Dict, tf_transform_output, n_classes: int, model_cfg: Dict, label_type: str,
                    run_config: tf.estimator.RunConfig) -> tf.estimator.Estimator:
    """The canned estimator of `model_cfg['kind']` over the shared feature columns.

    DNN parts read `feature_columns` (one-hot or embeddings), linear parts one weight per id; a multi-label
    label gets the *Estimator variant with a MultiLabelHead (one sigmoid per class).
    """
    kind = model_cfg['kind']
    head = head_type(label_type, n_classes)
    dnn = dict(hidden_units=model_cfg['hidden_units'], dropout=model_cfg['dropout'] or None)

    def optimizer():
        return LEGACY_OPTIMIZERS[model_cfg['optimizer']](model_cfg['learning_rate'])

    deep, linear = feature_columns(features, tf_transform_output), linear_columns(features, tf_transform_output)
    if head == 'multilabel':
        multi_head = tf.estimator.MultiLabelHead(n_classes)
        if kind == 'estimator_dnn':
            return tf.estimator.DNNEstimator(multi_head, feature_columns=deep, optimizer=optimizer,
                                             config=run_config, **dnn)
        if kind == 'estimator_linear':
            return tf.estimator.LinearEstimator(multi_head, feature_columns=linear, optimizer=optimizer,
                                                config=run_config)
        return tf.estimator.DNNLinearCombinedEstimator(
            multi_head, linear_feature_columns=linear_columns(features, tf_transform_output, numeric=False),
            dnn_feature_columns=deep, dnn_optimizer=optimizer, dnn_hidden_units=dnn['hidden_units'],
            dnn_dropout=dnn['dropout'], config=run_config)
    if kind == 'estimator_dnn':
        return tf.estimator.DNNClassifier(feature_columns=deep, n_classes=n_classes, optimizer=optimizer,
                                          config=run_config, **dnn)
    if kind == 'estimator_linear':
        return tf.estimator.LinearClassifier(feature_columns=linear, n_classes=n_classes, optimizer=optimizer,
                                             config=run_config)
    return tf.estimator.DNNLinearCombinedClassifier(
        linear_feature_columns=linear_columns(features, tf_transform_output, numeric=False),
        dnn_feature_columns=deep, dnn_optimizer=optimizer, dnn_hidden_units=dnn['hidden_units'],
        dnn_dropout=dnn['dropout'], n_classes=n_classes, config=run_config)


def train_estimator(fn_args, features, label, names, tf_transform_output, model_cfg):
    """train_and_evaluate with one evaluation per `epochs` round, then the TF1 export over transformed features,
    loaded back as the function the serving signatures wrap."""
    n, seed = len(names), model_cfg['seed']
    every = max(1, math.ceil(fn_args.train_steps / model_cfg['epochs']))
    run_config = tf.estimator.RunConfig(
        model_dir=fn_args.model_run_dir, tf_random_seed=seed, save_checkpoints_steps=every,
        save_summary_steps=every, keep_checkpoint_max=1, log_step_count_steps=every)
    estimator = build_estimator(features, tf_transform_output, n, model_cfg, label.type, run_config)
    label_dtype = tf.int64

    def input_fn(files):
        return lambda: dataset(fn_args, files, tf_transform_output, label, n, model_cfg['batch_size'], seed,
                                label_dtype)

    hooks = []
    if model_cfg.get('early_stopping_patience'):
        hooks.append(tf.estimator.experimental.stop_if_no_decrease_hook(
            estimator, 'loss', max_steps_without_decrease=model_cfg['early_stopping_patience'] * every,
            run_every_secs=None, run_every_steps=every))
    tf.estimator.train_and_evaluate(
        estimator,
        tf.estimator.TrainSpec(input_fn(fn_args.train_files), max_steps=fn_args.train_steps, hooks=hooks),
        tf.estimator.EvalSpec(input_fn(fn_args.eval_files), steps=fn_args.eval_steps, throttle_secs=0,
                              start_delay_secs=0))
    plot_curves(event_curves({'train': fn_args.model_run_dir, 'eval': os.path.join(fn_args.model_run_dir, 'eval')}),
                os.path.join(fn_args.model_run_dir, CURVES_FILE), 'step')

    inputs = keras_inputs(features)

    def receiver():
        placeholders = {k: tf.compat.v1.placeholder(i.dtype, i.shape, name=k) for k, i in inputs.items()}
        return tf.estimator.export.ServingInputReceiver(placeholders, placeholders)

    export_base = os.path.join(fn_args.model_run_dir, ESTIMATOR_EXPORT)
    shutil.rmtree(export_base, ignore_errors=True)
    export_dir = estimator.export_saved_model(export_base, receiver).decode()
    holder = tf.Module()
    holder.estimator = tf.saved_model.load(export_dir)
    predict = holder.estimator.signatures['predict']
    output = 'logistic' if head_type(label.type, n) == 'binary' else 'probabilities'

    def probabilities(transformed):
        return predict(**{k: transformed[k] for k in inputs})[output]

    return holder, probabilities
