"""Feature columns built from the config and the tf.Transform output: the one input definition every model uses.

The numeric features, one [batch, n] tf.Transform output, become one dense column (`NumericBlock`); every id
feature (vocabulary, quantile bucket, hash, cross) becomes an identity column of the size tf.Transform produced,
which a DNN sees one-hot (indicator column) or, with `embedding_dim`, through a learnt embedding; the wide
(linear) part of a wide-and-deep model sees it one-hot. Keras layers and canned estimators read the same columns: an estimator's
`dnn/input_from_feature_columns` layer is the Keras `DenseFeatures` over them.
"""
import collections
from typing import Dict, List

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.python.feature_column import serialization

from tfx_tabular.pipeline.core.config import CategoricalFeature
from tfx_tabular.transforms.preprocessing import NUMERIC_KEY, feature_key, transformed_name


@serialization.register_feature_column  # so that Keras can load a model using it from its config
class NumericBlock(tf.__internal__.feature_column.DenseColumn, collections.namedtuple('NumericBlock', ('names',))):
    """The numeric features `names` as tf.Transform emits them: side by side in one [batch, len(names)] float
    output (`NUMERIC_KEY`), read as one dense input.

    One `numeric_column` per feature costs a model's input layer about ten ops per feature in every trace (training,
    evaluation, each exported signature), and the SavedModel stores them all: with a thousand numeric columns, most
    of the Trainer's time and of the time the Evaluator and the projector spend loading the model. The block is one
    op. `names` (the CSV columns, in config order) say what each input dimension is.
    """

    @property
    def _is_v2_column(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return 'numeric'  # no other column's name: theirs are transformed keys (ending in _xf) and derive from them

    @property
    def parse_example_spec(self):
        return {NUMERIC_KEY: tf.io.FixedLenFeature([len(self.names)], tf.float32)}

    def transform_feature(self, transformation_cache, state_manager):
        return tf.cast(transformation_cache.get(NUMERIC_KEY, state_manager), tf.float32)

    @property
    def variable_shape(self):
        return tf.TensorShape([len(self.names)])

    def get_dense_tensor(self, transformation_cache, state_manager):
        return transformation_cache.get(self, state_manager)

    @property
    def parents(self) -> List[str]:
        return [NUMERIC_KEY]

    def get_config(self):
        return {'names': list(self.names)}

    @classmethod
    def from_config(cls, config, custom_objects=None, columns_by_name=None):
        return cls(tuple(config['names']))


def numeric_names(features: Dict) -> List[str]:
    """The numeric features, in the order of the columns of the `NUMERIC_KEY` block."""
    return [n for n, spec in features.items() if spec.kind == 'numeric']


def numeric_block(features: Dict) -> List[NumericBlock]:
    """[the block of every numeric feature], or [] without numeric features."""
    names = numeric_names(features)
    return [NumericBlock(tuple(names))] if names else []


def per_feature(transformed: Dict, features: Dict) -> Dict:
    """Transformed features keyed one per feature (`<key>_xf`), the numeric block split into its columns: for
    readers that take each feature on its own (the trees). Works on NumPy arrays and tensors alike."""
    out = {k: v for k, v in transformed.items() if k != NUMERIC_KEY}
    if NUMERIC_KEY in transformed:
        block = transformed[NUMERIC_KEY]
        out.update({transformed_name(n): block[:, j] for j, n in enumerate(numeric_names(features))})
    return out


def num_ids(name: str, spec, tf_transform_output: tft.TFTransformOutput) -> int:
    """How many distinct ids an id feature can take after tf.Transform."""
    if isinstance(spec, CategoricalFeature):
        return tf_transform_output.vocabulary_size_by_name(feature_key(name)) + spec.oov_buckets
    return spec.buckets if spec.kind == 'bucketized' else spec.hash_buckets


def id_column(name: str, spec, tf_transform_output: tft.TFTransformOutput):
    return tf.feature_column.categorical_column_with_identity(
        transformed_name(name), num_buckets=num_ids(name, spec, tf_transform_output), default_value=0)


def feature_columns(features: Dict, tf_transform_output: tft.TFTransformOutput) -> List:
    """The deep (DNN) input: the numeric block, embeddings where `embedding_dim` is set, else one-hot."""
    columns = numeric_block(features)
    for name, spec in features.items():
        if spec.kind == 'numeric':
            continue
        if spec.embedding_dim:
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
    """A linear model's input: the numeric block (unless `numeric` is False, as for the wide part of a
    wide-and-deep estimator) and every id feature as a sparse categorical column (one weight per id)."""
    return (numeric_block(features) if numeric else []) + [
        id_column(name, spec, tf_transform_output) for name, spec in features.items() if spec.kind != 'numeric']


def keras_inputs(features: Dict) -> Dict[str, tf.keras.Input]:
    """The Keras inputs, typed as preprocessing_fn emits them: the numeric block, then one rank-1 id input per
    other transformed feature."""
    names = numeric_names(features)
    inputs = {NUMERIC_KEY: tf.keras.Input(shape=(len(names),), name=NUMERIC_KEY, dtype=tf.float32)} if names else {}
    inputs.update({transformed_name(name): tf.keras.Input(shape=(), name=transformed_name(name), dtype=tf.int64)
                   for name, spec in features.items() if spec.kind != 'numeric'})
    return inputs
