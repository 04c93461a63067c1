"""Executor of HierarchicalTrainer: the auxiliary side classifier, then the combiner, exported as one SavedModel.

1. Auxiliary: a small Keras classifier of side B against side A of the ConfusionCut (class -> side from
   cut.json), on the same feature columns as the base model. It must have at least MIN_PARAMETER_RATIO times
   fewer parameters than the base model: the point is a cheap helper for the confusions, not a second model.
2. Combiner: a multinomial logistic regression (one softmax Dense layer) on [base class probabilities,
   auxiliary probability] -> class. Base and auxiliary are frozen (inference mode). Its kernel starts as
   10 x identity on the base probabilities, so before training it ranks classes as the base model does.
The auxiliary trains on 'train'. The combiner must learn how to weigh the base model's mistakes against the
auxiliary, so it is fit on `combiner_split`: 'holdout' (the split the ConfusionCut counted on, that no model
trained on) when the config has `hierarchical.holdout_fraction`. Without a holdout it falls back to 'train',
where the base model is rarely wrong: the combiner then learns to trust the base and gains little. Neither is
fit on 'eval', where the Evaluator compares base and hierarchical.

The export is one SavedModel at `<uri>/Format-Serving` with the signatures of components/trainer/signatures.py
(`serving_signatures`, `finish_signature_defs`): raw tf.Example in, class names and scores out, so Evaluator,
Pusher, TF Serving and `tfx-tabular predict` use it like any other model. The base model, of any kind this
pipeline trains, is frozen inside the new model: a Keras base as its layers, an estimator base through its
exported `predict` signature (see FrozenEstimator).
"""
import json
import math
import os
from typing import Any, Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_tabular.components.confusion_cut.executor import require_split
from tfx_tabular.components.confusion_cut.graph import read_cut
from tfx_tabular.components.hierarchical import spec as keys
from tfx_tabular.pipeline.core import storage
from tfx_tabular.transforms.feature_columns import feature_columns, keras_inputs
from tfx_tabular.transforms.preprocessing import label_key, parse_custom_config

SHUFFLE_BUFFER = 10_000
EPOCHS = 10
BASE_GAIN = 10.0  # the combiner's initial weight on each base probability


def _dataset(files: List[str], tft_output, label_name: str, n_classes: int, batch: int, seed: int,
             side_of: np.ndarray = None, train: bool = True) -> tf.data.Dataset:
    """(features, target, weight) batches; target is the class id, or its side with `side_of`. Examples whose
    label is not a known class (id -1) get weight 0."""
    spec = tft_output.transformed_feature_spec()
    sides = None if side_of is None else tf.constant(side_of, tf.float32)
    dataset = tf.data.TFRecordDataset(files, compression_type='GZIP')
    if train:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed).repeat()

    def parse(serialized):
        x = tf.io.parse_example(serialized, spec)
        y = tf.reshape(x.pop(label_name), [-1])
        known = (y >= 0) & (y < n_classes)
        y = tf.where(known, y, tf.zeros_like(y))
        return x, (y if sides is None else tf.gather(sides, y)), tf.cast(known, tf.float32)
    return dataset.batch(batch).map(parse)


def build_auxiliary(features: Dict, tft_output, hidden_units: List[int]) -> tf.keras.Model:
    """Feature columns -> hidden layers -> P(side B)."""
    inputs = keras_inputs(features)
    x = tf.keras.layers.DenseFeatures(feature_columns(features, tft_output), name='aux_feature_layer')(inputs)
    for i, units in enumerate(hidden_units):
        x = tf.keras.layers.Dense(units, activation='relu', name=f'aux_hidden_{i}')(x)
    side_b = tf.keras.layers.Dense(1, activation='sigmoid', name='side_b_probability')(x)
    return tf.keras.Model(inputs, side_b, name='auxiliary')


def build_hierarchical(features: Dict, base: tf.keras.layers.Layer, auxiliary: tf.keras.Model,
                       n_classes: int) -> tf.keras.Model:
    """[base probabilities, auxiliary probability] -> softmax Dense: a logistic regression; only it trains."""
    base.trainable = False
    auxiliary.trainable = False
    inputs = keras_inputs(features)
    stacked = tf.keras.layers.Concatenate(name='base_and_auxiliary')(
        [base(inputs, training=False), auxiliary(inputs, training=False)])
    kernel = np.vstack([BASE_GAIN * np.eye(n_classes), np.zeros((1, n_classes))]).astype(np.float32)
    probabilities = tf.keras.layers.Dense(
        n_classes, activation='softmax', name='combiner',
        kernel_initializer=tf.keras.initializers.Constant(kernel))(stacked)
    return tf.keras.Model(inputs, probabilities, name='hierarchical')


def _fit(model: tf.keras.Model, dataset: tf.data.Dataset, steps: int, learning_rate: float, loss, metric) -> Dict:
    model.compile(tf.keras.optimizers.Adam(learning_rate), loss, weighted_metrics=[metric])
    epochs = min(EPOCHS, steps)
    history = model.fit(dataset, epochs=epochs, steps_per_epoch=math.ceil(steps / epochs), verbose=2)
    return {k: float(v[-1]) for k, v in history.history.items()}


def _accuracy(model: tf.keras.Model, dataset: tf.data.Dataset, binary: bool) -> float:
    correct = total = 0.0
    for x, y, weight in dataset:
        p = model(x, training=False).numpy()
        predicted = (p[:, 0] > 0.5).astype(np.float32) if binary else np.argmax(p, axis=1)
        correct += float(np.sum((predicted == y.numpy()) * weight.numpy()))
        total += float(np.sum(weight.numpy()))
    return correct / total if total else 0.0


class FrozenEstimator(tf.keras.layers.Layer):
    """An estimator base model as a frozen Keras layer: transformed features -> class probabilities.

    components/trainer/estimator.py exports an estimator as a tf.Module whose `estimator` attribute is the estimator's TF1
    SavedModel over transformed features; its `predict` signature answers with `probabilities`.
    """

    def __init__(self, loaded, input_keys: List[str], **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.loaded = loaded
        self.input_keys = list(input_keys)

    def call(self, inputs, training=None):
        predict = self.loaded.signatures['predict']
        return predict(**{k: inputs[k] for k in self.input_keys})['probabilities']


def load_base(serving_dir: str, features: Dict) -> Tuple[tf.keras.layers.Layer, int]:
    """The base model as a frozen layer on transformed features, and its parameter count.

    Keras kinds load as the Keras model itself; estimator kinds through their TF1 `predict` signature, whose
    parameters are the exported variables but the global step.
    """
    loaded = tf.saved_model.load(serving_dir)
    estimator = getattr(loaded, 'estimator', None)
    if estimator is not None and 'predict' in estimator.signatures:
        parameters = sum(v.shape.num_elements() for v in estimator.variables if 'global_step' not in v.name)
        return FrozenEstimator(estimator, list(keras_inputs(features)), name='base'), int(parameters)
    base = tf.keras.models.load_model(serving_dir)
    if not isinstance(base, tf.keras.Model):
        raise ValueError(f'the base model at {serving_dir} is neither a Keras model nor an estimator export of '
                         'the Trainer (run_fn); hierarchical.base must name a model this pipeline trains')
    return base, int(base.count_params())


def train_hierarchical(base_serving_dir: str, transform_graph_uri: str, examples, cut_uri: str, output_uri: str,
                       custom_config: Dict, combiner_split: str = keys.DEFAULT_COMBINER_SPLIT) -> Dict:
    """Trains both parts, exports `<output_uri>/Format-Serving` and writes hierarchical.json; returns its content."""
    from tfx_tabular.components.trainer.data import class_names
    from tfx_tabular.components.trainer.signatures import finish_signature_defs, serving_signatures
    features, label = parse_custom_config(custom_config)
    settings = custom_config['hierarchical']
    tft_output = tft.TFTransformOutput(transform_graph_uri)
    names = class_names(label, tft_output)
    cut = read_cut(cut_uri)
    if cut['classes'] != names:
        raise ValueError(f'the confusion cut is over classes {cut["classes"]}, the transform graph has {names}: '
                         'they come from different runs')
    side_of = np.array(cut['side_of'], dtype=np.float32)
    n, label_name, seed, batch = len(names), label_key(label), settings['seed'], settings['batch_size']
    tf.keras.utils.set_random_seed(seed)

    base, base_parameters = load_base(base_serving_dir, features)
    auxiliary = build_auxiliary(features, tft_output, settings['aux_hidden_units'])
    aux_parameters = int(auxiliary.count_params())
    if base_parameters < keys.MIN_PARAMETER_RATIO * aux_parameters:
        raise ValueError(
            f'hierarchical.aux_hidden_units {settings["aux_hidden_units"]}: the auxiliary classifier has '
            f'{aux_parameters} parameters and the base model {base_parameters}; it must have at least '
            f'{keys.MIN_PARAMETER_RATIO}x fewer (at most {base_parameters // keys.MIN_PARAMETER_RATIO}): '
            'use fewer or smaller hidden layers')

    train_files, eval_files = require_split(examples, 'train'), require_split(examples, 'eval')
    combiner_files = require_split(examples, combiner_split)
    aux_train = _fit(auxiliary, _dataset(train_files, tft_output, label_name, n, batch, seed, side_of),
                     settings['aux_train_steps'], settings['learning_rate'], tf.keras.losses.BinaryCrossentropy(),
                     tf.keras.metrics.BinaryAccuracy(name='accuracy'))
    model = build_hierarchical(features, base, auxiliary, n)
    combiner_train = _fit(model, _dataset(combiner_files, tft_output, label_name, n, batch, seed + 1),
                          settings['combiner_train_steps'], settings['learning_rate'],
                          tf.keras.losses.SparseCategoricalCrossentropy(),
                          tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy'))
    combiner_parameters = int(model.get_layer('combiner').count_params())

    def evaluation(sides=None):
        return _dataset(eval_files, tft_output, label_name, n, 256, seed, sides, train=False)

    report = {
        'classes': names, 'sides': cut['sides'], 'side_of': cut['side_of'],
        'base_parameters': base_parameters, 'auxiliary_parameters': aux_parameters,
        'combiner_parameters': combiner_parameters, 'parameter_ratio': base_parameters / aux_parameters,
        'auxiliary_hidden_units': list(settings['aux_hidden_units']),
        'combiner_split': combiner_split, 'auxiliary_train': aux_train, 'combiner_train': combiner_train,
        # For the record only (nothing is chosen with these): the Evaluator does the comparison.
        'eval_auxiliary_side_accuracy': _accuracy(auxiliary, evaluation(side_of), binary=True),
        'eval_base_accuracy': _accuracy(base, evaluation(), binary=False),
        'eval_hierarchical_accuracy': _accuracy(model, evaluation(), binary=False),
    }

    holder = tf.Module()
    holder.model = model
    raw_columns = [c for c, f in features.items() if f.kind != 'crossed']
    signatures = serving_signatures(holder, model, tft_output, raw_columns, label, names)
    serving_dir = path_utils.serving_model_dir(output_uri)
    with storage.staged_dir(serving_dir) as staging:  # saved_model.pb last on an object store
        tf.saved_model.save(holder, staging, signatures=signatures)
        finish_signature_defs(staging, raw_columns)
    storage.write_text(os.path.join(output_uri, keys.REPORT_FILE), json.dumps(report, indent=1))
    return report


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        base = artifact_utils.get_single_instance(input_dict[keys.BASE_MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY])
        transform_graph = artifact_utils.get_single_instance(input_dict[keys.TRANSFORM_GRAPH_KEY])
        cut = artifact_utils.get_single_instance(input_dict[keys.CONFUSION_CUT_KEY])
        output = artifact_utils.get_single_instance(output_dict[keys.OUTPUT_KEY])
        report = train_hierarchical(
            path_utils.serving_model_path(base.uri), transform_graph.uri, examples, cut.uri, output.uri,
            json.loads(exec_properties[keys.CUSTOM_CONFIG_KEY]),
            exec_properties.get(keys.COMBINER_SPLIT_KEY) or keys.DEFAULT_COMBINER_SPLIT)
        for key in ('base_parameters', 'auxiliary_parameters', 'combiner_parameters'):
            output.set_int_custom_property(key, report[key])
        output.set_float_custom_property('parameter_ratio', report['parameter_ratio'])
        for key in ('eval_auxiliary_side_accuracy', 'eval_base_accuracy', 'eval_hierarchical_accuracy'):
            output.set_float_custom_property(key, report[key])
        output.set_string_custom_property('kind', 'hierarchical')
        output.set_string_custom_property('combiner_split', report['combiner_split'])
        output.set_string_custom_property('base_model', base.uri)
