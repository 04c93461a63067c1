"""Feature columns built from the config and the tf.Transform output: the one input definition every model uses.

Numeric features become numeric columns; every id feature (vocabulary, quantile bucket, hash, cross) becomes an
identity column of the size tf.Transform produced, which a DNN sees one-hot (indicator column) or, with
`embedding_dim`, through a learnt embedding; the wide (linear) part of a wide-and-deep model sees it one-hot. Keras layers and canned estimators read the
same columns: an estimator's `dnn/input_from_feature_columns` layer is the Keras `DenseFeatures` over them.
"""
from typing import Dict, List

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.config import CategoricalFeature
from transforms.preprocessing import feature_key, transformed_name


def num_ids(name: str, spec, tf_transform_output: tft.TFTransformOutput) -> int:
    """How many distinct ids an id feature can take after tf.Transform."""
    if isinstance(spec, CategoricalFeature):
        return tf_transform_output.vocabulary_size_by_name(feature_key(name)) + spec.oov_buckets
    return spec.buckets if spec.kind == 'bucketized' else spec.hash_buckets


def id_column(name: str, spec, tf_transform_output: tft.TFTransformOutput):
    return tf.feature_column.categorical_column_with_identity(
        transformed_name(name), num_buckets=num_ids(name, spec, tf_transform_output), default_value=0)


def feature_columns(features: Dict, tf_transform_output: tft.TFTransformOutput) -> List:
    """The deep (DNN) input: numeric columns, embeddings where `embedding_dim` is set, else one-hot."""
    columns = []
    for name, spec in features.items():
        if spec.kind == 'numeric':
            columns.append(tf.feature_column.numeric_column(transformed_name(name)))
        elif spec.embedding_dim:
            columns.append(tf.feature_column.embedding_column(
                id_column(name, spec, tf_transform_output), dimension=spec.embedding_dim))
        else:
            columns.append(tf.feature_column.indicator_column(id_column(name, spec, tf_transform_output)))
    return columns


def wide_columns(features: Dict, tf_transform_output: tft.TFTransformOutput) -> List:
    """The wide (linear) input: every id feature one-hot, crosses included."""
    return [tf.feature_column.indicator_column(id_column(name, spec, tf_transform_output))
            for name, spec in features.items() if spec.kind != 'numeric']


def linear_columns(features: Dict, tf_transform_output: tft.TFTransformOutput, numeric: bool = True) -> List:
    """A linear model's input: numeric columns (unless `numeric` is False, as for the wide part of a
    wide-and-deep estimator) and every id feature as a sparse categorical column (one weight per id)."""
    return [tf.feature_column.numeric_column(transformed_name(name)) if spec.kind == 'numeric'
            else id_column(name, spec, tf_transform_output)
            for name, spec in features.items() if numeric or spec.kind != 'numeric']


def keras_inputs(features: Dict) -> Dict[str, tf.keras.Input]:
    """One rank-1 Keras input per transformed feature, typed as preprocessing_fn emits it."""
    return {
        transformed_name(name): tf.keras.Input(
            shape=(), name=transformed_name(name), dtype=tf.float32 if spec.kind == 'numeric' else tf.int64)
        for name, spec in features.items()
    }
