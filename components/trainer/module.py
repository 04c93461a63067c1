"""Trainer `run_fn`: a Keras model or a canned tf.estimator on the tf.Transform output, exported with the same
serving signatures whatever the kind, so TF Serving, TFMA and every component downstream treat them alike.

Kinds (pipeline.config.MODEL_KINDS): keras_dnn, keras_wide_deep (Keras `fit`); estimator_dnn, estimator_linear,
estimator_wide_deep (`tf.estimator.train_and_evaluate`; DNNClassifier, LinearClassifier,
DNNLinearCombinedClassifier, or the *Estimator variants with a MultiLabelHead); gradient_boosted_trees (YDF,
compiled into TensorFlow ops: components/trainer/trees/). An estimator is first exported as a TF1 SavedModel over
transformed features, then loaded and wrapped with the Transform graph, as a Keras model and the trees are.

Signatures of the exported SavedModel:
  serving_default     serialized tf.Example (raw CSV values)  -> classes, scores, probabilities
                      (method tensorflow/serving/classify, input `inputs`: TF Serving's Classify and Predict)
  serving_raw         one tensor per raw CSV column            -> classes, scores, probabilities
  transform_features  serialized tf.Example (with label)       -> transformed features, the label as TFMA needs
                      it (class id; multi-label: a multi-hot vector)
`probabilities`: binary P(positive) [batch, 1]; multi-class softmax [batch, K]; multi-label sigmoids [batch, K].
"""
import glob
import math
import os
import shutil
from typing import Callable, Dict, List, Tuple

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.protobuf import saved_model_pb2
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from tfx_tabular.pipeline.core.config import MODEL_KINDS
from tfx_tabular.transforms.feature_columns import feature_columns, keras_inputs, linear_columns, wide_columns
from tfx_tabular.transforms.preprocessing import LABEL_VOCABULARY, argument_keys, label_key, parse_custom_config

PREDICTION_KEY = 'probabilities'
SERVING_INPUT = 'inputs'  # the input key TF Serving's Classify API requires
CLASSIFY_METHOD = 'tensorflow/serving/classify'
RAW_SIGNATURE = 'serving_raw'
CURVES_FILE = 'training_curves.png'
ESTIMATOR_EXPORT = 'estimator_export'  # the TF1 export inside model_run, before it is wrapped


def class_names(label, tf_transform_output: tft.TFTransformOutput) -> List[str]:
    """Class names in label-id order: the config's `classes`, else the label vocabulary (most frequent first)."""
    if label.classes:
        return list(label.classes)
    return [v.decode() for v in tf_transform_output.vocabulary_by_name(LABEL_VOCABULARY)]


def head_type(label_type: str, n_classes: int) -> str:
    return 'multilabel' if label_type == 'multilabel' else 'binary' if n_classes == 2 else 'multiclass'


OPTIMIZERS = {'adam': tf.keras.optimizers.Adam, 'sgd': tf.keras.optimizers.SGD,
              'rmsprop': tf.keras.optimizers.RMSprop, 'adagrad': tf.keras.optimizers.Adagrad}
# Canned estimators need the legacy Keras optimizers.
LEGACY_OPTIMIZERS = {'adam': tf.keras.optimizers.legacy.Adam, 'sgd': tf.keras.optimizers.legacy.SGD,
                     'rmsprop': tf.keras.optimizers.legacy.RMSprop, 'adagrad': tf.keras.optimizers.legacy.Adagrad}


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


def multi_hot(label_ids: tf.SparseTensor, n_classes: int, dtype=tf.float32) -> tf.Tensor:
    """A multi-label label's class ids (tf.Transform emits a variable-length list) as a [batch, K] vector."""
    return tf.cast(tf.sparse.to_indicator(label_ids, n_classes), dtype)


def _dataset(fn_args, files, tf_transform_output, label, n_classes, batch_size, seed, label_dtype=tf.float32):
    dataset = fn_args.data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_key(label), shuffle_seed=seed),
        tf_transform_output.transformed_metadata.schema)
    if label.type == 'multilabel':
        dataset = dataset.map(lambda x, y: (x, multi_hot(y, n_classes, label_dtype)))
    return dataset.repeat()


def _signatures(holder: tf.Module, probabilities_fn: Callable, tf_transform_output, raw_columns: List[str], label,
                names: List[str]):
    """The three signatures, around `probabilities_fn` (transformed features -> probabilities).

    `holder` (the Keras model, or a tf.Module holding the loaded estimator) is what gets saved: the Transform
    layer is attached to it so its tables and variables are saved too.
    """
    holder.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {c: raw_spec[c] for c in raw_columns}
    class_table = tf.constant(names)
    binary = len(names) == 2 and label.type != 'multilabel'

    def predict(raw_features):
        transformed = holder.tft_layer(raw_features)
        transformed.pop(label_key(label), None)
        probabilities = probabilities_fn(transformed)
        scores = tf.concat([1.0 - probabilities, probabilities], axis=1) if binary else probabilities
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

    # Arguments must be Python identifiers: argument_keys here, the column names again in the SignatureDef
    # (name_signature_inputs), which is what TF Serving and `serve` read.
    keys = argument_keys(raw_columns)

    @tf.function(input_signature=[{keys[c]: tf.TensorSpec([None], raw_spec[c].dtype, name=keys[c])
                                   for c in raw_columns}])
    def serve_raw(raw):
        return predict({c: to_raw_form(c, raw[keys[c]]) for c in raw_columns})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
    def transform_features(serialized):
        transformed = holder.tft_layer(tf.io.parse_example(serialized, raw_spec))
        if label.type == 'multilabel':
            transformed[label_key(label)] = multi_hot(transformed[label_key(label)], len(names))
        return transformed

    return {'serving_default': serve_examples, RAW_SIGNATURE: serve_raw,
            'transform_features': transform_features}


def finish_signature_defs(export_dir: str, raw_columns: List[str], signature: str = 'serving_default') -> None:
    """Edits the exported SignatureDefs for TF Serving: `signature` becomes a classification signature, and the
    `serving_raw` inputs are named by the CSV columns themselves.

    Keras exports every tf.function signature with the Predict method name; Classify refuses those. TF Serving
    still answers Predict on a classification signature, so both APIs work on `serving_default`. A tf.function
    takes identifiers only (`class` or `age (years)` are not), so `serving_raw`'s arguments are feature keys;
    TF Serving feeds inputs by their tensor names, so renaming the SignatureDef's input keys back to the column
    names lets clients send the names they know.
    """
    path = os.path.join(export_dir, 'saved_model.pb')
    with tf.io.gfile.GFile(path, 'rb') as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        raw_inputs = meta_graph.signature_def[RAW_SIGNATURE].inputs
        for column, key in argument_keys(raw_columns).items():
            if key != column and key in raw_inputs:
                raw_inputs[column].CopyFrom(raw_inputs[key])
                del raw_inputs[key]
        meta_graph.signature_def[signature].method_name = CLASSIFY_METHOD
        # Classify also refuses a signature with more than two outputs ("Expected one or two output Tensors"):
        # keep classes and scores in the SignatureDef. TF2 loaders (TFMA) still get every output of the function.
        outputs = meta_graph.signature_def[signature].outputs
        for key in set(outputs) - {'classes', 'scores'}:
            del outputs[key]
    with tf.io.gfile.GFile(path + '.tmp', 'wb') as f:
        f.write(saved_model.SerializeToString())
    tf.io.gfile.rename(path + '.tmp', path, overwrite=True)


Curves = Dict[str, Dict[str, List[Tuple[float, float]]]]  # metric -> {'train'|'eval': [(x, value)]}


def plot_curves(curves: Curves, path: str, x_label: str) -> None:
    """One panel per metric, train and eval lines; written to a temp file, then renamed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.5), squeeze=False)
    for ax, (metric, series) in zip(axes[0], curves.items()):
        for name, points in series.items():
            ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', label=name)
        ax.set_title(metric)
        ax.set_xlabel(x_label)
        ax.legend()
    fig.tight_layout()
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def keras_curves(history: Dict[str, List[float]]) -> Curves:
    curves: Curves = {}
    for metric, values in history.items():
        name, series = (metric[4:], 'eval') if metric.startswith('val_') else (metric, 'train')
        curves.setdefault(name, {})[series] = list(enumerate(values, start=1))
    return curves


def event_curves(logdirs: Dict[str, str], tags=('loss', 'accuracy', 'auc')) -> Curves:
    """Scalars by step from the TensorBoard event files an estimator writes ({'train': dir, 'eval': dir})."""
    curves: Curves = {}
    for series, logdir in logdirs.items():
        for path in sorted(glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.tag in tags:
                        number = value.simple_value if value.HasField('simple_value') else float(
                            tf.make_ndarray(value.tensor))
                        curves.setdefault(value.tag, {}).setdefault(series, []).append((event.step, number))
    return {m: {s: sorted(points) for s, points in series.items()} for m, series in curves.items()}


def _train_keras(fn_args, features, label, names, tf_transform_output, model_cfg) -> Tuple[tf.Module, Callable]:
    batch, seed, n = model_cfg['batch_size'], model_cfg['seed'], len(names)
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, label, n, batch, seed)
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, label, n, batch, seed)
    tuning = model_cfg.get('tuning') or {}
    if tuning.get('lr_range_test'):
        from tfx_tabular.components.trainer.lr_range_test import run_for_trainer

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


def _train_estimator(fn_args, features, label, names, tf_transform_output, model_cfg):
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
        return lambda: _dataset(fn_args, files, tf_transform_output, label, n, model_cfg['batch_size'], seed,
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
        placeholders = {k: tf.compat.v1.placeholder(i.dtype, [None], name=k) for k, i in inputs.items()}
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


def _train_trees(fn_args, features, label, names, tf_transform_output, model_cfg):
    """YDF gradient-boosted trees on the transformed examples, compiled into TensorFlow ops (components/trainer/trees/)."""
    from tfx_tabular.components.trainer.trees.training import train_trees
    return train_trees(fn_args, features, label, names, tf_transform_output, model_cfg)


TRAINERS = {'keras': _train_keras, 'estimator': _train_estimator, 'trees': _train_trees}  # ModelKind.trainer


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    features, label = parse_custom_config(fn_args.custom_config)
    model_cfg = fn_args.custom_config['model']
    if fn_args.hyperparameters:  # the Tuner's best values (model.tuning.search)
        from tfx_tabular.components.tuner.module import apply_hyperparameters, best_values
        model_cfg = apply_hyperparameters(model_cfg, fn_args.hyperparameters)
        print(f'training with the tuned values {best_values(fn_args.hyperparameters)}', flush=True)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    names = class_names(label, tf_transform_output)
    tf.keras.utils.set_random_seed(model_cfg['seed'])
    train = TRAINERS[MODEL_KINDS[model_cfg['kind']].trainer]
    holder, probabilities = train(fn_args, features, label, names, tf_transform_output, model_cfg)

    raw_columns = [n for n, f in features.items() if f.kind != 'crossed']
    signatures = _signatures(holder, probabilities, tf_transform_output, raw_columns, label, names)
    if isinstance(holder, tf.keras.Model):
        # Keras rebuilds the model from its config when loading (every layer here has one), so tracing each layer's
        # call functions into the SavedModel would only make saving and every load slower: twice, on wide data.
        holder.save(fn_args.serving_model_dir, save_format='tf', signatures=signatures, save_traces=False)
    else:
        tf.saved_model.save(holder, fn_args.serving_model_dir, signatures=signatures)
    finish_signature_defs(fn_args.serving_model_dir, raw_columns)
