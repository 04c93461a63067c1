"""Serialized tf.train.Examples built for a batch of rows at once with numpy: byte for byte what protobuf's
deterministic serialization (map keys sorted) gives for the examples TFX's CsvExampleGen builds cell by cell.

TFX makes a tf.train.Feature object per cell and serializes each example; at 1,000 columns that Python work was most
of CsvExampleGen's time. The wire format of an example is simple enough to write directly: per row, the map entries
of its features in key order; per entry, the key, then the Feature: a list holding the cell's one value, an empty
list for a blank cell, nothing for a column without a value in any row. Every part of every cell's entry is a padded
uint8 matrix of (rows, columns, bytes) with the bytes used per cell; a mask compacts them, row by row, into the
examples. Text values, of any length, are joined in by Arrow. tfx_bsl's C++ encoder does not serve: it writes the
features in hash order, and the split of a row is the hash of its sorted bytes (TFX's `_PartitionFn`).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow.core.example import feature_pb2

# Wire tags (field number << 3 | 2, length-delimited): Example.features, Features.feature (a map entry), the map
# entry's key, a list's (packed) `value` and Feature.bytes_list are field 1; the map entry's value and
# Feature.float_list are field 2; Feature.int64_list is field 3.
FIELD_1, FIELD_2, FIELD_3 = 0x0A, 0x12, 0x1A
KIND_TAG = {'int': FIELD_3, 'float': FIELD_2, 'bytes': FIELD_1}
# Bytes of an entry besides its key and value: tags and varint lengths (at most 5 bytes each below 4 GB).
ENTRY_OVERHEAD = 30
_NO_SEPARATOR = pa.scalar(b'', pa.large_binary())

Piece = Tuple[np.ndarray, np.ndarray]  # (uint8 array [..., width], bytes used per cell [...])


def _varint(values: np.ndarray) -> Piece:
    """Protobuf varints of non-negative int64 (or any uint64) values: 1 to 10 bytes each."""
    rest = values.astype(np.uint64)
    out = np.zeros(rest.shape + (10,), np.uint8)
    used = np.ones(rest.shape, np.int64)
    for k in range(10):
        out[..., k] = (rest & np.uint64(0x7F)).astype(np.uint8)
        rest = rest >> np.uint64(7)
        more = rest > 0
        if not more.any():
            return out[..., :k + 1], used
        out[..., k] |= (more * 0x80).astype(np.uint8)
        used += more
    return out, used


def _const(value: int, used: np.ndarray) -> Piece:
    """One byte where `used` is 1 (a bool or 0/1 array)."""
    return np.full(used.shape + (1,), value, np.uint8), used.astype(np.int64)


def _compact(pieces: Sequence[Piece]) -> Tuple[np.ndarray, np.ndarray]:
    """The used bytes of all pieces, in C order of their cells, each cell's pieces in turn; and bytes per row."""
    shape = pieces[0][1].shape
    matrix = np.concatenate([np.broadcast_to(m, shape + m.shape[-1:]) for m, _ in pieces], axis=-1)
    mask = np.concatenate([np.arange(m.shape[-1]) < np.broadcast_to(used, shape)[..., None] for m, used in pieces],
                          axis=-1)
    per_row = sum(np.broadcast_to(used, shape) for _, used in pieces).reshape(shape[0], -1).sum(axis=1)
    return matrix[mask], per_row


def _columns(piece: Piece, start: int, end: int) -> Piece:
    """Columns start:end of a piece, per cell (rows, columns, width) or per column (columns, width)."""
    matrix, used = piece
    return (matrix[:, start:end] if matrix.ndim == 3 else matrix[start:end],
            used[:, start:end] if used.ndim == 2 else used[start:end])


def _binary(data: np.ndarray, per_row: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(per_row) + 1, np.int64)
    np.cumsum(per_row, out=offsets[1:])
    return pa.Array.from_buffers(pa.large_binary(), len(per_row), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _keys(names: Sequence[str]) -> Piece:
    encoded = [name.encode('utf-8') for name in names]
    matrix = np.zeros((len(encoded), max(map(len, encoded))), np.uint8)
    for j, key in enumerate(encoded):
        matrix[j, :len(key)] = np.frombuffer(key, np.uint8)
    return matrix, np.array([len(key) for key in encoded], np.int64)


def _read_varint(data: bytes, position: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if byte < 0x80:
            return value, position


def deterministic_order(names: Sequence[str]) -> List[int]:
    """The columns whose features an example holds, in the order protobuf's deterministic serialization writes
    them, asked of the installed protobuf (upb sorts by bytes but puts a key before its own prefix: `bigf`, `big`).
    Of columns with the same name the last one, as in TFX's examples (a dict by name)."""
    features = feature_pb2.Features()
    for name in names:
        features.feature.get_or_create(name)
    data = features.SerializeToString(deterministic=True)
    last = {name: j for j, name in enumerate(names)}
    order, position = [], 0
    while position < len(data):  # map entries: FIELD_1, size, then FIELD_1, key size, key, FIELD_2, 0
        size, position = _read_varint(data, position + 1)
        key_size, start = _read_varint(data, position + 1)
        order.append(last[data[start:start + key_size].decode('utf-8')])
        position += size
    return order


def examples(names: Sequence[str], order: Sequence[int], kinds: Sequence[Optional[str]], present: np.ndarray,
             ints: np.ndarray, floats: np.ndarray, texts: Dict[int, pa.Array]) -> List[bytes]:
    """Serialized examples of n rows, with the features of the columns `order` (deterministic_order) in that
    order. Column j is `names[j]` of kind 'int', 'float', 'bytes' or None (no value in any row: an empty Feature);
    `present[j]` (n,) is False where its cell is blank (an empty list); its values are `ints[j]` (int64),
    `floats[j]` (float32) or `texts[j]` (Arrow large_binary, b'' where blank)."""
    order = np.asarray(order, np.int64)
    kinds = [kinds[j] for j in order]
    present = present[order].T  # (rows, columns) from here
    n, k = present.shape
    is_int = np.array([kind == 'int' for kind in kinds])
    is_float = np.array([kind == 'float' for kind in kinds])
    typed = np.array([kind is not None for kind in kinds])
    keys, key_size = _keys([names[j] for j in order])

    value = np.zeros((n, k, 10), np.uint8)
    value_size = np.zeros((n, k), np.int64)
    if is_int.any():
        varints, size = _varint(ints[order[is_int]].T.view(np.uint64))  # negative: ten bytes, as protobuf writes
        value[:, is_int, :varints.shape[-1]] = varints
        value_size[:, is_int] = size
    if is_float.any():
        value[:, is_float, :4] = np.ascontiguousarray(floats[order[is_float]].T.astype('<f4')).view(
            np.uint8).reshape(n, -1, 4)
        value_size[:, is_float] = 4
    for position, j in enumerate(order):
        if kinds[position] == 'bytes':
            value_size[:, position] = pc.binary_length(texts[j]).to_numpy(zero_copy_only=False)
    value_size *= present
    value_prefix = _varint(value_size)
    list_size = present * (1 + value_prefix[1]) + value_size  # 0 for a blank cell: an empty list
    list_prefix = _varint(list_size)
    feature_size = typed * (1 + list_prefix[1] + list_size)
    feature_prefix = _varint(feature_size)
    key_prefix = _varint(key_size)
    entry_size = 1 + key_prefix[1] + key_size + 1 + feature_prefix[1] + feature_size
    kind_tags = np.array([KIND_TAG.get(kind, 0) for kind in kinds], np.uint8)
    ones = np.ones((n, k), bool)
    numeric = is_int | is_float
    pieces = [_const(FIELD_1, ones), _varint(entry_size),  # the map entry
              _const(FIELD_1, ones), key_prefix, (keys, key_size), _const(FIELD_2, ones), feature_prefix,
              (kind_tags[:, None], typed), (list_prefix[0], list_prefix[1] * typed),  # the Feature: its list
              _const(FIELD_1, present), (value_prefix[0], value_prefix[1] * present),  # the list's value
              (value[..., :max(1, int((value_size * numeric).max()))], value_size * numeric)]  # text: below

    # Columns up to each text column are compacted together, then its values joined in after them.
    cuts = [position + 1 for position, kind in enumerate(kinds) if kind == 'bytes']
    segments, start = [], 0
    for end in cuts + ([k] if not cuts or cuts[-1] != k else []):
        segments.append(_binary(*_compact([_columns(piece, start, end) for piece in pieces])))
        if kinds[end - 1] == 'bytes':
            segments.append(texts[order[end - 1]])
        start = end
    features = pc.binary_join_element_wise(*segments, _NO_SEPARATOR) if len(segments) > 1 else segments[0]
    size = pc.binary_length(features).to_numpy(zero_copy_only=False).astype(np.int64)
    header = _binary(*_compact([_const(FIELD_1, np.ones(n, bool)), _varint(size)]))
    return pc.binary_join_element_wise(header, features, _NO_SEPARATOR).to_pylist()
