"""Raw examples of one split, passed through the real tf.Transform graph and held as Python values and arrays.

Labels need both sides of the transform: the raw value a person recognises (`Paris`) and the id the model saw
(hash bucket 17). Reading both from the same examples ties every label to what the transform really did.
"""
import functools
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Union

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
    """Each row's first value (None when the row has none), from the tensor's arrays at once: on a wide CSV this
    runs for every column of every batch."""
    if isinstance(tensor, tf.SparseTensor):
        rows, values, n = tensor.indices.numpy()[:, 0], tensor.values.numpy(), int(tensor.dense_shape[0])
        first = np.full(n, None, dtype=object)
        present, at = np.unique(rows, return_index=True)  # indices are in row order: the first entry of each row
        first[present] = values[at]
    else:
        array = tensor.numpy()
        first = array.reshape(array.shape[0], -1)[:, 0] if array.size else np.full(array.shape[0], None, object)
    first = first.tolist()
    return [_plain(v) for v in first] if tensor.dtype == tf.string else first


def _plain(value) -> RawValue:
    return value.decode('utf-8', errors='replace') if isinstance(value, bytes) else value


@functools.lru_cache(maxsize=2)
def parse_and_transform(tft_output: tft.TFTransformOutput):
    """serialized raw tf.Examples -> (parsed raw features, transformed features), as one tf.Function.

    Called eagerly, the transform layer's function first fails to bind its inputs to its structured signature and
    formats every input tensor into the error it then discards: seconds per batch on a wide CSV. Traced once
    here, that happens on symbolic tensors. One function per transform output, shared by both splits and the
    probe: loading the transform graph and tracing the parse take seconds on a wide CSV."""
    layer = tft_output.transform_features_layer()
    spec = tft_output.raw_feature_spec()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def run(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        return parsed, layer(parsed)
    return run


def read_split(files: List[str], tft_output: tft.TFTransformOutput, limit: int) -> Split:
    spec = tft_output.raw_feature_spec()
    run = parse_and_transform(tft_output)
    split = Split([], {k: [] for k in spec}, {})
    chunks: Dict[str, List[np.ndarray]] = {}
    dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').take(limit).batch(BATCH)
    for batch in dataset:
        parsed, transformed = run(batch)
        split.serialized += batch.numpy().tolist()
        for key, tensor in parsed.items():
            split.raw[key] += _first_values(tensor)
        for key, tensor in transformed.items():
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
        self.run = parse_and_transform(tft_output)

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
        _, transformed = self.run(tf.constant([self._example(o) for o in overrides]))
        return {k: v.numpy() for k, v in transformed.items() if not isinstance(v, tf.SparseTensor)}
