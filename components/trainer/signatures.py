"""The serving signatures every model kind exports, so TF Serving, TFMA and every component downstream
treat the kinds alike.

Signatures of the exported SavedModel:
  serving_default     serialized tf.Example (raw CSV values)  -> classes, scores, probabilities
                      (method tensorflow/serving/classify, input `inputs`: TF Serving's Classify and Predict)
  serving_raw         one tensor per raw CSV column            -> classes, scores, probabilities
  transform_features  serialized tf.Example (with label)       -> transformed features, the label as TFMA needs
                      it (class id; multi-label: a multi-hot vector)
`probabilities`: binary P(positive) [batch, 1]; multi-class softmax [batch, K]; multi-label sigmoids [batch, K].
"""
import os
from typing import Callable, List

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfx_tabular.components.trainer.data import multi_hot
from tfx_tabular.pipeline.core import storage
from tfx_tabular.transforms.preprocessing import argument_keys, label_key

PREDICTION_KEY = 'probabilities'
SERVING_INPUT = 'inputs'  # the input key TF Serving's Classify API requires
CLASSIFY_METHOD = 'tensorflow/serving/classify'
RAW_SIGNATURE = 'serving_raw'


def serving_signatures(holder: tf.Module, probabilities_fn: Callable, tf_transform_output, raw_columns: List[str],
                       label, names: List[str]):
    """The three signatures, around `probabilities_fn` (transformed features -> probabilities).

    `holder` (the Keras model, or a tf.Module holding the loaded estimator) is what gets saved: the Transform
    layer is attached to it so its tables and variables are saved too.
    """
    holder.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {c: raw_spec[c] for c in raw_columns}
    class_table = tf.constant(names)
    binary = len(names) == 2 and label.type != 'multilabel'

    # One trace of the Transform layer and the model, called by both serving signatures (each traced its own: at
    # 1,000 columns about 1.3 s of the Trainer's save per trace).
    @tf.function(input_signature=[{c: tf.SparseTensorSpec([None, None], raw_spec[c].dtype)
                                   if isinstance(raw_spec[c], tf.io.VarLenFeature)
                                   else tf.TensorSpec([None] + list(raw_spec[c].shape), raw_spec[c].dtype)
                                   for c in raw_columns}])
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
    storage.write_bytes(path, saved_model.SerializeToString())
