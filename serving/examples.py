"""Raw records (CSV rows, JSON objects) to tf.Example or to columns, typed the way the exported model parses them.

The types come from the model itself (its `serving_raw` signature's inputs), so a client needs nothing but
the SavedModel, or, against a server, the model metadata TF Serving returns (`dtypes_from_signature`).
"""
import csv
import io
import json
import os
import sys
from typing import Dict, Iterable, List, Optional

import numpy as np
import tensorflow as tf

RAW_SIGNATURE = 'serving_raw'


class RecordError(ValueError):
    """A record that cannot be turned into the model's input; names the column and the fix."""


def raw_feature_dtypes(model_path: str) -> Dict[str, tf.DType]:
    """{column: dtype} of the raw CSV columns the SavedModel at `model_path` reads, from its `serving_raw`
    SignatureDef (keyed by the CSV's own column names, as TF Serving sees them)."""
    from tfx_tabular.serving.servable import read_meta_graph
    return dtypes_from_signature(read_meta_graph(model_path).signature_def[RAW_SIGNATURE])


def dtypes_from_signature(signature_def) -> Dict[str, tf.DType]:
    """{input: dtype} of a SignatureDef, e.g. `serving_raw` from a server's GetModelMetadata answer."""
    return {name: tf.dtypes.as_dtype(info.dtype) for name, info in signature_def.inputs.items()}


def _check_columns(record: Dict[str, object], dtypes: Dict[str, tf.DType], where: str = '') -> None:
    missing = [name for name in dtypes if record.get(name) is None or record.get(name) == '']
    if len(missing) == 1:
        raise RecordError(f'{where}column {missing[0]!r} is missing or empty; every record needs a value for it')
    if missing:
        raise RecordError(f'{where}columns {", ".join(map(repr, sorted(missing)))} are missing or empty; every '
                          'record needs a value for each')


def _convert(name: str, value, dtype: tf.DType, where: str = ''):
    try:
        if dtype == tf.string:
            return str(value).encode()
        if dtype.is_integer:
            return int(float(value))
        return float(value)
    except (TypeError, ValueError):
        raise RecordError(f'{where}column {name!r}: {value!r} is not a {dtype.name} value; fix the record') from None


def to_tf_example(record: Dict[str, object], dtypes: Dict[str, tf.DType], where: str = '') -> tf.train.Example:
    """A missing or empty value leaves its feature out, as a blank CSV cell does in training: the model fills in
    a column that had blanks in its training data and refuses (INVALID_ARGUMENT, naming the feature) one that
    never did."""
    features = {}
    for name, dtype in dtypes.items():
        if record.get(name) is None or record.get(name) == '':
            continue
        value = _convert(name, record[name], dtype, where)
        if dtype == tf.string:
            feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        elif dtype.is_integer:
            feature = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        features[name] = feature
    return tf.train.Example(features=tf.train.Features(feature=features))


def serialize(records: Iterable[Dict[str, object]], dtypes: Dict[str, tf.DType]) -> List[bytes]:
    """Serialized tf.Examples; a column absent from every record (not in the CSV header at all) is the caller's
    mistake, named here, while single empty values are left to the model."""
    records = list(records)
    absent = {n: t for n, t in dtypes.items() if all(r.get(n) is None for r in records)}
    if records and absent:
        _check_columns(records[0], absent, 'record 1: ')
    return [to_tf_example(r, dtypes, f'record {i}: ').SerializeToString() for i, r in enumerate(records, start=1)]


def to_columns(records: List[Dict[str, object]], dtypes: Dict[str, tf.DType]) -> Dict[str, np.ndarray]:
    """One [n] array per input, for Predict on `serving_raw` (a tensor per raw column)."""
    for i, record in enumerate(records, start=1):
        _check_columns(record, dtypes, f'record {i}: ')
    columns = {}
    for name, dtype in dtypes.items():
        values = [_convert(name, r[name], dtype, f'record {i}: ') for i, r in enumerate(records, start=1)]
        columns[name] = np.array(values, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    return columns


def parse_records(text: str, fmt: Optional[str] = None, source: str = 'input') -> List[Dict[str, object]]:
    """CSV with a header row, or JSON (one object, a list of objects, or one object per line)."""
    fmt = fmt or ('json' if text.lstrip()[:1] in ('{', '[') else 'csv')
    if fmt == 'csv':
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            raise RecordError(f'{source}: no CSV rows; give a header row of column names, then one row per record')
        return rows
    try:
        data = json.loads(text)
        records = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        try:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise RecordError(f'{source}: not JSON ({e.msg} at line {e.lineno}); give an object, a list of '
                              'objects or one object per line') from None
    if not records or not all(isinstance(r, dict) for r in records):
        raise RecordError(f'{source}: JSON records must be objects of column: value; got {type(records[0]).__name__}'
                          if records else f'{source}: no JSON records')
    return records


def read_records(path: str, fmt: Optional[str] = None) -> List[Dict[str, object]]:
    """Records from a CSV or JSON file (format from the extension unless given), or stdin for `-`."""
    if path == '-':
        return parse_records(sys.stdin.read(), fmt, 'stdin')
    if not os.path.isfile(path):
        raise RecordError(f'{path}: no such file; pass a CSV or JSON file of records, or - for stdin')
    ext = os.path.splitext(path)[1].lower()
    fmt = fmt or {'.csv': 'csv', '.json': 'json', '.jsonl': 'json'}.get(ext)
    with open(path, encoding='utf-8-sig') as f:
        return parse_records(f.read(), fmt, path)
