"""Raw records (CSV rows, JSON objects) to tf.Example, typed the way the exported model parses them.

The types come from the model itself (its `serving_raw` signature's inputs), so a client needs nothing but
the SavedModel, or, against a server, the model metadata TF Serving returns.
"""
from typing import Dict, Iterable, List

import tensorflow as tf

RAW_SIGNATURE = 'serving_raw'


class RecordError(ValueError):
    """A record that cannot be turned into the model's input; names the column and the fix."""


def raw_feature_dtypes(model) -> Dict[str, tf.DType]:
    """{column: dtype} of the raw CSV columns the model reads, from its `serving_raw` signature."""
    _, kwargs = model.signatures[RAW_SIGNATURE].structured_input_signature
    return {name: spec.dtype for name, spec in kwargs.items()}


def to_tf_example(record: Dict[str, object], dtypes: Dict[str, tf.DType]) -> tf.train.Example:
    features = {}
    for name, dtype in dtypes.items():
        value = record.get(name)
        if value is None or value == '':
            raise RecordError(f'column {name!r} is missing or empty; every record needs a value for it')
        try:
            if dtype == tf.string:
                feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
            elif dtype.is_integer:
                feature = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(value))]))
            else:
                feature = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
        except (TypeError, ValueError):
            raise RecordError(f'column {name!r}: {value!r} is not a {dtype.name} value; fix the record') from None
        features[name] = feature
    return tf.train.Example(features=tf.train.Features(feature=features))


def serialize(records: Iterable[Dict[str, object]], dtypes: Dict[str, tf.DType]) -> List[bytes]:
    return [to_tf_example(r, dtypes).SerializeToString() for r in records]
