"""One tf.Transform analyzer for the vocabularies of every categorical feature.

`tft.compute_and_apply_vocabulary` builds a Beam sub-pipeline per feature (count, filter, sort, write a file); with
hundreds of categorical columns those stages dominate Transform's time and memory. `vocabularies` counts every
(feature, value) pair in one pass instead and writes one vocabulary file per feature, in tf.Transform's text format
and order: most frequent first, ties by value descending, `top_k` kept, empty values and values holding a line break
left out (they map to an OOV bucket, as with `tft.vocabulary`). Each file is an asset named by its feature's key, so
`tft.apply_vocabulary` looks values up in it and `TFTransformOutput.vocabulary_by_name(key)` reads it back, as they
do for tf.Transform's own vocabularies.
"""
import os
from collections import Counter
from typing import Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import analyzers as tft_analyzers
from tensorflow_transform.beam import experimental as tft_beam_experimental

# What tft.vocabulary writes for a feature with no usable value, so the lookup table is never empty.
EMPTY_VOCABULARY_VALUE = tft_analyzers.get_empy_vocabulary_dummy_value(tf.string)[1]


def _usable(value: bytes) -> bool:
    return bool(value) and b'\n' not in value and b'\r' not in value


def _count_batch(batch: Tuple[np.ndarray]) -> Iterable[Tuple[Tuple[int, bytes], int]]:
    """((feature index, value), count) for one batch of the stacked [rows, features] string tensor."""
    values, = batch
    for index in range(values.shape[1]):
        for value, count in Counter(values[:, index].tolist()).items():
            if _usable(value):
                yield (index, value), count


def ordered(counts: Iterable[Tuple[bytes, int]], top_k: Optional[int]) -> List[bytes]:
    """A feature's vocabulary in tf.Transform's order: count descending, then value descending."""
    entries = sorted(((count, value) for value, count in counts), reverse=True)
    return [value for _, value in entries[:top_k]] or [EMPTY_VOCABULARY_VALUE]


class _WriteVocabularies(beam.DoFn):
    def __init__(self, directory: str, keys: Sequence[str], top_k: Sequence[Optional[int]]):
        self.directory, self.keys, self.top_k = directory, list(keys), list(top_k)

    def process(self, counts: List[Tuple[Tuple[int, bytes], int]]):
        per_feature = [[] for _ in self.keys]
        for (index, value), count in counts:
            per_feature[index].append((value, count))
        tf.io.gfile.makedirs(self.directory)
        for index, key in enumerate(self.keys):
            path = os.path.join(self.directory, key)
            with tf.io.gfile.GFile(path, 'wb') as f:
                f.write(b''.join(v + b'\n' for v in ordered(per_feature[index], self.top_k[index])))
            yield beam.pvalue.TaggedOutput(str(index), np.array(path.encode()))


class _Vocabularies(tft_beam_experimental.PTransformAnalyzer):
    """Beam side of `vocabularies`: batches of the stacked values in, one file path per feature out."""

    def __init__(self, keys: Sequence[str], top_k: Sequence[Optional[int]]):
        super().__init__()
        self.keys, self.top_k = list(keys), list(top_k)

    def expand(self, batches):
        tags = [str(i) for i in range(len(self.keys))]
        paths = (batches
                 | 'CountPerBatch' >> beam.FlatMap(_count_batch)
                 | 'Count' >> beam.CombinePerKey(sum)
                 | 'Gather' >> beam.combiners.ToList()
                 | 'Write' >> beam.ParDo(_WriteVocabularies(self.base_temp_dir, self.keys, self.top_k))
                 .with_outputs(*tags))
        return tuple(paths[tag] for tag in tags)


def vocabularies(values: tf.Tensor, keys: Sequence[str], top_k: Sequence[Optional[int]]) -> List[tf.Tensor]:
    """The vocabulary file of each column of `values` ([batch, features] strings), named by `keys`: one analyzer
    however many features."""
    return list(tft.experimental.ptransform_analyzer(
        inputs=[values], ptransform=_Vocabularies(keys, top_k),
        output_dtypes=[tf.string] * len(keys), output_shapes=[[]] * len(keys),
        output_asset_default_values=[EMPTY_VOCABULARY_VALUE] * len(keys), name='vocabularies'))
