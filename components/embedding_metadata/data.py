"""Raw examples of one split, passed through the real tf.Transform graph and held as Python values and arrays.

Labels need both sides of the transform: the raw value a person recognises (`Paris`) and the id the model saw
(hash bucket 17). Reading both from the same examples ties every label to what the transform really did.
"""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.types import artifact_utils

RawValue = Optional[Union[str, int, float]]
BATCH = 1024


@dataclass
class Split:
    """Up to `limit` examples of one split, in file order."""
    serialized: List[bytes]
    raw: Dict[str, List[RawValue]]          # raw column -> first value per example, None when missing
    transformed: Dict[str, np.ndarray]      # `<name>_xf` -> one entry per example

    @property
    def count(self) -> int:
        return len(self.serialized)


def split_files(examples_artifact, split: str) -> List[str]:
    uri = artifact_utils.get_split_uri([examples_artifact], split)
    files = sorted(tf.io.gfile.glob(os.path.join(uri, '*')))
    if not files:
        raise FileNotFoundError(f'no {split!r} examples under {uri}')
    return files


def _first_values(tensor) -> List[RawValue]:
    if isinstance(tensor, tf.SparseTensor):
        rows = tf.RaggedTensor.from_sparse(tensor).to_list()
    else:
        array = tensor.numpy()
        rows = array.reshape(array.shape[0], -1).tolist()
    return [_plain(row[0]) if row else None for row in rows]


def _plain(value) -> RawValue:
    return value.decode('utf-8', errors='replace') if isinstance(value, bytes) else value


def transform(tft_output: tft.TFTransformOutput, serialized: Sequence[bytes], layer=None) -> Dict[str, np.ndarray]:
    """The transform graph applied to serialized raw tf.Examples, as numpy arrays."""
    layer = layer or tft_output.transform_features_layer()
    parsed = tf.io.parse_example(tf.constant(list(serialized)), tft_output.raw_feature_spec())
    return {k: v.numpy() for k, v in layer(parsed).items() if not isinstance(v, tf.SparseTensor)}


def read_split(files: List[str], tft_output: tft.TFTransformOutput, limit: int) -> Split:
    spec = tft_output.raw_feature_spec()
    layer = tft_output.transform_features_layer()
    split = Split([], {k: [] for k in spec}, {})
    chunks: Dict[str, List[np.ndarray]] = {}
    dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').take(limit).batch(BATCH)
    for batch in dataset:
        parsed = tf.io.parse_example(batch, spec)
        split.serialized += batch.numpy().tolist()
        for key, tensor in parsed.items():
            split.raw[key] += _first_values(tensor)
        for key, tensor in layer(parsed).items():
            if not isinstance(tensor, tf.SparseTensor):
                chunks.setdefault(key, []).append(tensor.numpy())
    split.transformed = {k: np.concatenate(v) for k, v in chunks.items()}
    return split


class TransformProbe:
    """Runs the real transform on copies of one real example with some raw values replaced.

    This is how facts that live only inside the transform graph (quantile boundaries) are read back: by asking
    the graph, not by re-implementing it.
    """

    def __init__(self, tft_output: tft.TFTransformOutput, template: bytes):
        self.tft_output = tft_output
        self.spec = tft_output.raw_feature_spec()
        self.template = tf.train.Example.FromString(template)
        self.layer = tft_output.transform_features_layer()

    def dtype(self, column: str) -> tf.DType:
        return self.spec[column].dtype

    def _example(self, overrides: Dict[str, RawValue]) -> bytes:
        example = tf.train.Example()
        example.CopyFrom(self.template)
        for column, value in overrides.items():
            feature = example.features.feature[column]
            feature.Clear()
            if value is None:
                del example.features.feature[column]
            elif self.dtype(column) == tf.string:
                feature.bytes_list.value.append(str(value).encode())
            elif self.dtype(column).is_integer:
                feature.int64_list.value.append(int(value))
            else:
                feature.float_list.value.append(float(value))
        return example.SerializeToString()

    def __call__(self, overrides: List[Dict[str, RawValue]]) -> Dict[str, np.ndarray]:
        return transform(self.tft_output, [self._example(o) for o in overrides], self.layer)
