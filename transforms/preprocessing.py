"""The tf.Transform `preprocessing_fn`, generated from the config's `features` and `label`.

TFX's Transform component calls `preprocessing_fn(inputs, custom_config)`; the pipeline passes the config's
feature and label sections as `custom_config`, so this one function serves every config.
The numeric features come out side by side as one `[batch, n]` float output, `NUMERIC_KEY`, in config order; every
other feature is a rank-1 int64 id tensor named `<feature key>_xf`. One output for all the numeric columns keeps the
per-column cost (graph ops traced, outputs written and parsed, signature tensors) small on wide CSVs.

Raw inputs keep the CSV's own column names (tf.Example keys take any string); where TensorFlow needs an
identifier (transformed keys, vocabulary files, Keras inputs, the `serving_raw` arguments) it gets `feature_key`.
"""
import hashlib
import keyword
import re
import unicodedata
from typing import Any, Dict, List

import tensorflow as tf
import tensorflow_transform as tft
from pydantic import TypeAdapter

from tfx_tabular.pipeline.core.config import Feature, LabelConfig
from tfx_tabular.transforms.vocabularies import vocabularies

LABEL_VOCABULARY = '_label_vocabulary'  # cannot clash with a feature_key
NUMERIC_KEY = 'numeric_features'  # cannot clash with a transformed name: those end in _xf
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


def _number_column(x) -> tf.Tensor:
    """A numeric column as [batch, 1] float32, NaN where a row has no value (a column with blanks arrives as a
    SparseTensor). tf.Transform's mean, var and quantiles analyzers skip NaN, so one pass sees the present values."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), [x.dense_shape[0], 1]),
                               default_value=float('nan'))
    x = tf.cast(x, tf.float32)
    return x if x.shape.rank == 2 and x.shape[1] == 1 else tf.reshape(x, [-1, 1])


def _numbers(x) -> tf.Tensor:
    """A numeric column as rank-1 float32, NaN where a row has no value."""
    return _rank_1(_number_column(x))


def _rank_1(x: tf.Tensor) -> tf.Tensor:
    """[batch, 1] (a schema column of shape [1]) as [batch] in one op, not a reshape and its shape constant: on
    wide data every op per column is created again in each of tf.Transform's traces of preprocessing_fn."""
    return tf.squeeze(x, axis=1) if x.shape.rank == 2 and x.shape[1] == 1 else tf.reshape(x, [-1])


def _sparse(x) -> bool:
    """Whether a raw column can miss values (a column with blanks arrives as a SparseTensor)."""
    return isinstance(x, tf.SparseTensor)


def _text(x) -> tf.Tensor:
    """A column as rank-1 strings ('' where a row has no value), numbers as their decimal text."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, _as_string(x.values), [x.dense_shape[0], 1]),
                               default_value='')
    return _rank_1(_as_string(x))


def _as_string(x):
    return x if x.dtype == tf.string else tf.strings.as_string(x)


def _log1p(x):
    return tf.math.log1p(tf.maximum(x, 0.0))


def _finite(statistic):
    """A column with no value in the analyzed split gets NaN statistics; 0 keeps its outputs finite."""
    return tf.where(tf.math.is_finite(statistic), statistic, 0.0)


def _mean(x):
    """Per-column mean of the present (non-NaN) values of `x`."""
    return _finite(tft.mean(x, reduce_instance_dims=False))


def _scaled(x: tf.Tensor, scaling: str) -> tf.Tensor:
    """Numeric columns side by side (`x`: [batch, k], NaN where missing) filled with their mean and scaled, the
    statistics from elementwise analyzers over `x`: a handful of analyzers, one analysis phase, a few ops in all,
    however many columns.

    The result is what filling first and then scaling the filled column gives (`log`: log1p of the filled value).
    That would take a second phase (the mean, then the filled column's statistics), so the filled column's mean and
    variance are derived from the present values' instead: a share p of present values with mean m and variance v,
    the rest at the fill value f, has mean p*m + (1-p)*f and variance p*(v + (m - mean)^2) + (1-p)*(f - mean)^2.
    """
    present = tf.logical_not(tf.math.is_nan(x))
    mean = _mean(x)
    filled = tf.where(present, x, mean)
    if scaling == 'raw':
        return filled
    if scaling == 'min_max':
        low = tft.min(tf.where(present, x, float('inf')), reduce_instance_dims=False)
        high = tft.max(tf.where(present, x, float('-inf')), reduce_instance_dims=False)
        spread = tf.where(low < high, high - low, 0.0)
        # As tft.scale_to_0_1: a constant column goes through a sigmoid.
        return tf.where(spread > 0, (filled - low) / tf.where(spread > 0, spread, 1.0), tf.math.sigmoid(filled))
    transform = _log1p if scaling == 'log' else (lambda values: values)
    values = tf.where(present, transform(x), float('nan'))
    fill, values_mean = transform(mean), _mean(values)
    values_var = _finite(tft.var(values, reduce_instance_dims=False))
    share = tft.mean(tf.cast(present, tf.float32), reduce_instance_dims=False)
    filled_mean = share * values_mean + (1 - share) * fill
    filled_var = (share * (values_var + tf.square(values_mean - filled_mean))
                  + (1 - share) * tf.square(fill - filled_mean))
    # As tft.scale_to_z_score: a column without spread is only centred.
    std = tf.where(filled_var > 0, tf.sqrt(filled_var), 1.0)
    return (transform(filled) - filled_mean) / std


def _numeric_block(inputs: Dict[str, Any], features: Dict) -> tf.Tensor:
    """Every numeric feature scaled, side by side in config order ([batch, n]): the columns of one scaling are
    scaled together (`_scaled`), then one gather puts the groups back in config order."""
    names = [n for n, spec in features.items() if spec.kind == 'numeric']
    groups = _groups(features, 'numeric', lambda spec: spec.scaling)
    blocks = [_scaled(tf.concat([_number_column(inputs[n]) for n in group], axis=1), scaling)
              for scaling, group in groups.items()]
    order = [n for group in groups.values() for n in group]
    if order == names:
        return blocks[0] if len(blocks) == 1 else tf.concat(blocks, axis=1)
    position = {n: i for i, n in enumerate(order)}
    return tf.gather(tf.concat(blocks, axis=1), [position[n] for n in names], axis=1)


def _filled(column: tf.Tensor, blanks: bool, value: tf.Tensor) -> tf.Tensor:
    """`column` with its NaN (missing) entries set to `value`; as it is when it has no blanks."""
    return tf.where(tf.math.is_nan(column), value, column) if blanks else column


def _bucketized(columns: List[tf.Tensor], blanks: List[bool], num_buckets: int) -> List[tf.Tensor]:
    """Quantile bucket ids of numeric columns (rank-1, NaN where missing), as `tft.bucketize` gives them, from one
    elementwise quantiles analyzer over the stacked columns (applied column by column, as in `_scaled`). Boundaries
    come from the present values; a missing value gets the bucket of its column's mean."""
    x = tf.stack(columns, axis=1)
    boundaries = tft.quantiles(x, num_buckets, epsilon=min(1.0 / num_buckets, 0.01), reduce_instance_dims=False)
    return [tft.apply_buckets(_filled(c, b, m), bounds[tf.newaxis, :]) for c, b, m, bounds in
            zip(columns, blanks, tf.unstack(_mean(x)), tf.unstack(tf.reshape(boundaries, [len(columns), -1])))]


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


def _groups(features: Dict, kind: str, by) -> Dict[Any, List[str]]:
    """Names of the features of `kind`, grouped by what they share (`by(spec)`: a scaling, a bucket count)."""
    groups: Dict[Any, List[str]] = {}
    for name, spec in features.items():
        if spec.kind == kind:
            groups.setdefault(by(spec), []).append(name)
    return groups


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, Any]:
    """Columns are transformed in groups, never one analyzer per column: numeric columns are stacked and scaled
    together (one output, `NUMERIC_KEY`), bucketized columns of one bucket count share a quantiles analyzer, and
    every categorical column's vocabulary comes from one analyzer, so Transform's cost grows with the rows, not with
    the columns."""
    features, label = parse_custom_config(custom_config)
    outputs, cross_values = {}, {}
    if any(spec.kind == 'numeric' for spec in features.values()):
        outputs[NUMERIC_KEY] = _numeric_block(inputs, features)
    for buckets, names in _groups(features, 'bucketized', lambda spec: spec.buckets).items():
        columns, blanks = [_numbers(inputs[n]) for n in names], [_sparse(inputs[n]) for n in names]
        for name, ids in zip(names, _bucketized(columns, blanks, buckets)):
            outputs[transformed_name(name)] = ids
            cross_values[name] = tf.strings.as_string(ids)
    categorical = [n for n, spec in features.items() if spec.kind == 'categorical']
    if categorical:
        columns = [_text(inputs[n]) for n in categorical]
        files = vocabularies(tf.stack(columns, axis=1), [feature_key(n) for n in categorical],
                             [features[n].top_k for n in categorical])
        for name, column, path in zip(categorical, columns, files):
            outputs[transformed_name(name)] = tft.apply_vocabulary(
                column, path, num_oov_buckets=features[name].oov_buckets)
            cross_values[name] = column
    for name, spec in features.items():
        if spec.kind == 'hashed':
            cross_values[name] = _text(inputs[name])
            outputs[transformed_name(name)] = tf.strings.to_hash_bucket_fast(cross_values[name], spec.hash_buckets)
    for name, spec in features.items():
        if spec.kind == 'crossed':
            joined = tf.strings.join([cross_values[c] for c in spec.columns], separator=CROSS_SEPARATOR)
            outputs[transformed_name(name)] = tf.strings.to_hash_bucket_fast(joined, spec.hash_buckets)
    outputs[label_key(label)] = _label_ids(_text(inputs[label.column]), label)
    return outputs
