"""What every transformed id of every feature stands for, in words, with its frequency in the training data.

One `Row` per id: vocabulary values and OOV buckets from the tf.Transform vocabulary, bucket intervals probed
from the transform graph, and, for hash and cross buckets, the raw values of the training data that the
transform put there (most frequent first). Frequencies count training examples by the id the transform gave.
"""
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List

import numpy as np
import tensorflow_transform as tft

from tfx_tabular.components.embedding_metadata.buckets import boundaries, bucket_intervals
from tfx_tabular.components.embedding_metadata.data import Split, TransformProbe
from tfx_tabular.transforms.preprocessing import feature_key, transformed_name

SCALING = {'z_score': 'z-score', 'min_max': 'min-max', 'log': 'log1p, z-score', 'raw': 'raw'}
OOV = '<OOV>'
MISSING = '<missing>'
TOP_IN_LABEL = 3     # raw values named in a hash or cross bucket's label
TOP_IN_VALUE = 20    # raw values listed in its `value` column


@dataclass
class Row:
    label: str
    feature: str
    kind: str
    value: str
    frequency: int


class ValueCatalog:
    """Labels for the ids and numeric values of the config's features, from the transform and the train split."""

    def __init__(self, features: Dict, tft_output: tft.TFTransformOutput, train: Split):
        self.features = features
        self.by_key = {transformed_name(n): n for n in features}
        self.tft_output = tft_output
        self.train = train
        probe = TransformProbe(tft_output, train.serialized[0])
        self.intervals: Dict[str, List[str]] = {}
        for name, spec in features.items():
            if spec.kind == 'bucketized':
                key = transformed_name(name)
                bounds = boundaries(lambda values, n=name, k=key: probe([{n: v} for v in values])[k],
                                    is_float=probe.dtype(name).is_floating)
                self.intervals[name] = bucket_intervals(bounds)
        self.members = {name: self._members(name, spec) for name, spec in features.items()
                        if spec.kind in ('hashed', 'crossed')}

    # ---- raw values behind hash and cross buckets ---------------------------------------------------
    def _display(self, name: str, i: int) -> str:
        """A component of a cross as the transform saw it: the raw string, or the bucket interval."""
        spec = self.features[name]
        if spec.kind == 'bucketized':
            return self.bucket_text(name, int(self.train.transformed[transformed_name(name)][i]))
        value = self.train.raw[name][i]
        return MISSING if value is None else str(value)

    def _members(self, name: str, spec) -> Dict[int, Counter]:
        ids = self.train.transformed[transformed_name(name)]
        members: Dict[int, Counter] = {}
        for i, bucket in enumerate(ids.tolist()):
            if spec.kind == 'crossed':
                shown = ' × '.join(self._display(c, i) for c in spec.columns)
            else:
                shown = self._display(name, i)
            members.setdefault(int(bucket), Counter())[shown] += 1
        return members

    # ---- labels --------------------------------------------------------------------------------------
    def bucket_text(self, name: str, bucket: int) -> str:
        intervals = self.intervals.get(name, [])
        return intervals[bucket] if 0 <= bucket < len(intervals) else f'unused id {bucket}'

    def feature_name(self, key: str) -> str:
        return self.by_key.get(key, key)

    def frequency(self, name: str, num_ids: int) -> np.ndarray:
        ids = self.train.transformed.get(transformed_name(name))
        if ids is None:
            return np.zeros(num_ids, np.int64)
        ids = ids[(ids >= 0) & (ids < num_ids)]
        return np.bincount(ids.astype(np.int64), minlength=num_ids)

    def present(self, name: str) -> int:
        """Training examples with a raw value for `name`."""
        return sum(v is not None for v in self.train.raw.get(name, []))

    def numeric_rows(self, key: str, width: int) -> List[Row]:
        name = self.feature_name(key)
        spec = self.features.get(name)
        scaling = SCALING.get(getattr(spec, 'scaling', None), 'numeric')
        suffix = [''] if width == 1 else [f'[{j}]' for j in range(width)]
        return [Row(f'{name}{s} ({scaling})', name, 'numeric', scaling, self.present(name)) for s in suffix]

    def id_rows(self, key: str, num_ids: int) -> List[Row]:
        """One row per id 0..num_ids-1 of the id feature the model reads as `key`."""
        name = self.feature_name(key)
        spec = self.features.get(name)
        kind = spec.kind if spec else 'unknown'
        counts = self.frequency(name, num_ids)
        rows = []
        if kind == 'categorical':
            vocabulary = [v.decode('utf-8', errors='replace') for v in self.tft_output.vocabulary_by_name(feature_key(name))]
            for i in range(num_ids):
                if i < len(vocabulary):
                    value = vocabulary[i]
                elif i < len(vocabulary) + spec.oov_buckets:
                    value = OOV if spec.oov_buckets == 1 else f'<OOV {i - len(vocabulary) + 1}>'
                else:
                    value = f'unused id {i}'
                rows.append(Row(f'{name}={value}', name, kind, value, int(counts[i])))
        elif kind == 'bucketized':
            for i in range(num_ids):
                value = self.bucket_text(name, i)
                rows.append(Row(f'{name} in {value}', name, kind, value, int(counts[i])))
        elif kind in ('hashed', 'crossed'):
            for i in range(num_ids):
                top = self.members[name].get(i, Counter()).most_common()
                shown = ', '.join(v for v, _ in top[:TOP_IN_LABEL]) or '(no training value)'
                more = f', +{len(top) - TOP_IN_LABEL}' if len(top) > TOP_IN_LABEL else ''
                value = '|'.join(v for v, _ in top[:TOP_IN_VALUE]) + ('|…' if len(top) > TOP_IN_VALUE else '')
                value = value or '(none)'
                rows.append(Row(f'{name}#{i}: {shown}{more}', name, kind, value, int(counts[i])))
        else:
            rows = [Row(f'{key}={i}', name, kind, str(i), int(counts[i])) for i in range(num_ids)]
        return rows

