"""The tf.Transform `preprocessing_fn`, generated from the config's `features` and `label`.

TFX's Transform component calls `preprocessing_fn(inputs, custom_config)`; the pipeline passes the config's
feature and label sections as `custom_config`, so this one function serves every config.
Every output is a rank-1 tensor named `<feature key>_xf`: floats for numeric features, int64 ids for the rest.

Raw inputs keep the CSV's own column names (tf.Example keys take any string); where TensorFlow needs an
identifier (transformed keys, vocabulary files, Keras inputs, the `serving_raw` arguments) it gets `feature_key`.
"""
import hashlib
import keyword
import re
import unicodedata
from typing import Any, Dict

import tensorflow as tf
import tensorflow_transform as tft
from pydantic import TypeAdapter

from pipeline.config import Feature, LabelConfig

LABEL_VOCABULARY = '_label_vocabulary'  # cannot clash with a feature_key
CROSS_SEPARATOR = '_X_'


_PLAIN = re.compile(r'[A-Za-z][A-Za-z0-9_]*')


def feature_key(column: str) -> str:
    """The identifier TensorFlow sees for CSV column `column`: the name itself when it is a plain ASCII identifier,
    else its letters and digits plus a short hash of the whole name (so `a b`, `a_b`, `A b` stay distinct).
    The one mapping from user column names to TensorFlow names; nothing else invents one."""
    if _PLAIN.fullmatch(column) and not keyword.iskeyword(column) and len(column) <= 64:
        return column
    ascii_only = unicodedata.normalize('NFKD', column).encode('ascii', 'ignore').decode()
    stem = re.sub(r'[^A-Za-z0-9]+', '_', ascii_only).strip('_')[:40]
    return f'c_{stem}_{hashlib.sha1(column.encode()).hexdigest()[:6]}' if stem else \
        f'c_{hashlib.sha1(column.encode()).hexdigest()[:6]}'


def argument_keys(columns) -> Dict[str, str]:
    """{column: feature_key} made unique ignoring case, for names that become graph op names (the `serving_raw`
    arguments): TensorFlow uniquifies op names case-insensitively, so columns `Name` and `name` need two keys."""
    keys, taken = {}, set()
    for column in columns:
        key = feature_key(column)
        if key.lower() in taken:
            key = f'{key}_{hashlib.sha1(column.encode()).hexdigest()[:6]}'
        keys[column] = key
        taken.add(key.lower())
    return keys


def transformed_name(name: str) -> str:
    return f'{feature_key(name)}_xf'


def label_key(label: LabelConfig) -> str:
    return transformed_name(label.column)


def custom_config(config) -> Dict[str, Any]:
    """What the pipeline hands to Transform: only the config parts it reads, so that changing model settings
    does not invalidate Transform's cache."""
    return {
        'features': {n: f.model_dump(mode='json') for n, f in config.features.items()},
        'label': config.label.model_dump(mode='json'),
    }


def parse_custom_config(custom_config: Dict[str, Any]):
    adapter = TypeAdapter(Feature)
    features = {n: adapter.validate_python(f) for n, f in custom_config['features'].items()}
    return features, LabelConfig(**custom_config['label'])


def _dense(x, numeric: bool):
    """Rank-1 dense tensor; a sparse (sometimes missing) column is filled with its mean or ''."""
    if isinstance(x, tf.SparseTensor):
        if numeric:
            default = tf.cast(tft.mean(tf.cast(x.values, tf.float32)), x.dtype)
        else:
            default = tf.constant('', dtype=x.dtype)
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default)
    return tf.reshape(x, [-1])


def _as_string(x):
    return x if x.dtype == tf.string else tf.strings.as_string(x)


def _numeric(x, scaling: str):
    x = tf.cast(x, tf.float32)
    if scaling == 'z_score':
        return tft.scale_to_z_score(x)
    if scaling == 'min_max':
        return tft.scale_to_0_1(x)
    if scaling == 'log':
        return tft.scale_to_z_score(tf.math.log1p(tf.maximum(x, 0.0)))
    return x


def _label_ids(raw_label, label: LabelConfig):
    """Class ids: one per row, or for a multi-label label ('a|c') a variable-length list per row (a
    SparseTensor; the trainer makes it multi-hot)."""
    values = _as_string(raw_label)
    if label.type == 'multilabel':
        values = tf.strings.strip(tf.strings.split(values, label.delimiter)).to_sparse()
    # The vocabulary is always computed, so the class names travel with the transform graph.
    ids = tft.compute_and_apply_vocabulary(values, vocab_filename=LABEL_VOCABULARY, num_oov_buckets=0)
    if label.classes:
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(label.classes), tf.range(len(label.classes), dtype=tf.int64)),
            default_value=-1)
        ids = table.lookup(values)  # dense or sparse, as the values are
    return ids


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, Any]:
    features, label = parse_custom_config(custom_config)
    outputs = {}
    cross_values = {}
    for name, spec in features.items():
        if spec.kind == 'crossed':
            continue
        raw = inputs[name]
        numeric_input = raw.dtype != tf.string
        x = _dense(raw, numeric_input)
        if spec.kind == 'numeric':
            outputs[transformed_name(name)] = _numeric(x, spec.scaling)
            continue
        if spec.kind == 'bucketized':
            ids = tft.bucketize(tf.cast(x, tf.float32), num_buckets=spec.buckets)
            cross_values[name] = tf.strings.as_string(ids)
        elif spec.kind == 'categorical':
            ids = tft.compute_and_apply_vocabulary(
                _as_string(x), top_k=spec.top_k, num_oov_buckets=spec.oov_buckets, vocab_filename=feature_key(name))
            cross_values[name] = _as_string(x)
        else:  # hashed
            ids = tf.strings.to_hash_bucket_fast(_as_string(x), spec.hash_buckets)
            cross_values[name] = _as_string(x)
        outputs[transformed_name(name)] = ids
    for name, spec in features.items():
        if spec.kind == 'crossed':
            joined = tf.strings.join([cross_values[c] for c in spec.columns], separator=CROSS_SEPARATOR)
            outputs[transformed_name(name)] = tf.strings.to_hash_bucket_fast(joined, spec.hash_buckets)
    raw_label = inputs[label.column]
    outputs[label_key(label)] = _label_ids(_dense(raw_label, raw_label.dtype != tf.string), label)
    return outputs
