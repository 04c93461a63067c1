"""Quantile bucket boundaries of a `tft.bucketize` feature, read back from the transform graph by probing it.

TFT bakes the boundaries into the graph as constants and (in open-source builds) records them nowhere else.
Bucketizing is monotone in the raw value, so bisection on the raw value finds, for every bucket, the smallest
raw value the graph puts in it: exact to the last float32 bit for float columns, to the integer for int columns.
"""
from typing import Callable, List

import numpy as np

# ids_of(values) -> the bucket id the transform gives each raw value.
IdsOf = Callable[[List], np.ndarray]

_SIGN = np.uint32(0x80000000)


def _float_key(x: float) -> int:
    """A uint32 that orders like the float32 value (negative floats reversed, positives above them)."""
    bits = int(np.array([x], np.float32).view(np.uint32)[0])
    return bits | int(_SIGN) if bits < int(_SIGN) else (~bits) & 0xFFFFFFFF


def _key_float(key: int) -> float:
    bits = key & 0x7FFFFFFF if key >= int(_SIGN) else (~key) & 0xFFFFFFFF
    return float(np.array([bits], np.uint32).view(np.float32)[0])


def boundaries(ids_of: IdsOf, is_float: bool) -> List[float]:
    """Sorted boundaries b_1..b_K: bucket k holds raw values in [b_k, b_k+1); bucket 0 everything below b_1.

    Repeated boundaries (empty buckets, as TFT produces for columns with few distinct values) come back
    repeated, so the list always has one entry per bucket id after 0.
    """
    if is_float:
        lo, hi = _float_key(float('-inf')), _float_key(float('inf'))
        to_value = _key_float
    else:
        lo, hi = -2 ** 63, 2 ** 63 - 1
        to_value = int
    low_id, high_id = (int(i) for i in ids_of([to_value(lo), to_value(hi)]))
    targets = list(range(low_id + 1, high_id + 1))
    if not targets:
        return []
    # Invariant per target k: ids_of(lo[k]) < k <= ids_of(hi[k]).
    los = np.full(len(targets), lo, dtype=object)
    his = np.full(len(targets), hi, dtype=object)
    while True:
        open_ = [i for i in range(len(targets)) if his[i] - los[i] > 1]
        if not open_:
            break
        mids = [(los[i] + his[i]) // 2 for i in open_]
        ids = ids_of([to_value(m) for m in mids])
        for i, mid, got in zip(open_, mids, ids):
            if got >= targets[i]:
                his[i] = mid
            else:
                los[i] = mid
    return [float(np.float32(to_value(h))) for h in his]


def interval(lower, upper) -> str:
    """`[25.0, 30.0)`, `(-inf, 25.0)` or `[60.0, +inf)`."""
    # str() of a float32 is its shortest round-trip form: 0.1, not 0.10000000149011612.
    left = f'[{str(np.float32(lower))}' if lower is not None else '(-inf'
    right = f'{str(np.float32(upper))})' if upper is not None else '+inf)'
    return f'{left}, {right}'


def bucket_intervals(bounds: List[float]) -> List[str]:
    """The interval of every bucket id, 0..len(bounds)."""
    edges = [None] + list(bounds) + [None]
    return [interval(edges[i], edges[i + 1]) for i in range(len(bounds) + 1)]
