"""Feature columns built from the config and the tf.Transform output: the one input definition every model uses.

Numeric features become numeric columns; every id feature (vocabulary, quantile bucket, hash, cross) becomes an
identity column of the size tf.Transform produced, shown to the model as a one-hot indicator.
"""
from typing import Dict, List

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.config import CategoricalFeature
from transforms.preprocessing import transformed_name


def num_ids(name: str, spec, tf_transform_output: tft.TFTransformOutput) -> int:
    """How many distinct ids an id feature can take after tf.Transform."""
    if isinstance(spec, CategoricalFeature):
        return tf_transform_output.vocabulary_size_by_name(name) + spec.oov_buckets
    return spec.buckets if spec.kind == 'bucketized' else spec.hash_buckets


def feature_columns(features: Dict, tf_transform_output: tft.TFTransformOutput) -> List:
    columns = []
    for name, spec in features.items():
        key = transformed_name(name)
        if spec.kind == 'numeric':
            columns.append(tf.feature_column.numeric_column(key))
        else:
            ids = tf.feature_column.categorical_column_with_identity(
                key, num_buckets=num_ids(name, spec, tf_transform_output), default_value=0)
            columns.append(tf.feature_column.indicator_column(ids))
    return columns


def keras_inputs(features: Dict) -> Dict[str, tf.keras.Input]:
    """One rank-1 Keras input per transformed feature, typed as preprocessing_fn emits it."""
    return {
        transformed_name(name): tf.keras.Input(
            shape=(), name=transformed_name(name), dtype=tf.float32 if spec.kind == 'numeric' else tf.int64)
        for name, spec in features.items()
    }
