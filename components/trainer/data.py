"""What every trainer reads: the class names, the head they imply, the transformed examples as a dataset."""
from typing import List

import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from tfx_tabular.transforms.preprocessing import LABEL_VOCABULARY, label_key

def class_names(label, tf_transform_output: tft.TFTransformOutput) -> List[str]:
    """Class names in label-id order: the config's `classes`, else the label vocabulary (most frequent first)."""
    if label.classes:
        return list(label.classes)
    return [v.decode() for v in tf_transform_output.vocabulary_by_name(LABEL_VOCABULARY)]


def head_type(label_type: str, n_classes: int) -> str:
    return 'multilabel' if label_type == 'multilabel' else 'binary' if n_classes == 2 else 'multiclass'


def multi_hot(label_ids: tf.SparseTensor, n_classes: int, dtype=tf.float32) -> tf.Tensor:
    """A multi-label label's class ids (tf.Transform emits a variable-length list) as a [batch, K] vector."""
    return tf.cast(tf.sparse.to_indicator(label_ids, n_classes), dtype)


def dataset(fn_args, files, tf_transform_output, label, n_classes, batch_size, seed, label_dtype=tf.float32):
    """The transformed `files` as (features, label) batches, repeated; a multi-label label as a multi-hot vector."""
    examples = fn_args.data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_key(label), shuffle_seed=seed),
        tf_transform_output.transformed_metadata.schema)
    if label.type == 'multilabel':
        examples = examples.map(lambda x, y: (x, multi_hot(y, n_classes, label_dtype)))
    return examples.repeat()
