"""TFDV's equi-width histogram, computed with numpy instead of a Python loop per quantile bucket.

TFDV builds each numeric feature's standard histogram from a 1,000-bucket quantiles histogram, visiting the buckets
one at a time in Python (`quantiles_util.generate_equi_width_histogram`): at 1,000 columns about 3 s per split, the
largest part of StatisticsGen (bench/width.py). `equi_width_histogram` returns the same proto: the same cases of
`quantiles_util._overlap` for every bucket and interval at once, summed in bucket order as TFDV sums them, so the
counts are equal to the last bit (tests/test_statistics_gen.py compares the two on sketches of messy columns).
"""
from unittest import mock

import numpy as np
from tensorflow_data_validation.utils import quantiles_util
from tensorflow_metadata.proto.v0 import statistics_pb2


def _overlaps(low: np.ndarray, high: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """[intervals, buckets]: the share of each quantiles bucket [low, high] inside each interval of `bounds`, by the
    cases of `quantiles_util._overlap` in its order (the first interval takes a point bucket on its left edge)."""
    lb, hb = bounds[:-1, None], bounds[1:, None]
    low, high = low[None, :], high[None, :]
    point_at_left = (high == low) & (low == lb)
    first = np.zeros_like(point_at_left)
    first[0] = True
    with np.errstate(divide='ignore', invalid='ignore'):
        width = high - low
        cases = [
            (point_at_left & first, 1.0),
            (point_at_left, 0.0),
            (high < lb, 0.0),
            (low > hb, 0.0),
            ((lb <= low) & (hb >= high), 1.0),
            (lb <= low, (hb - low) / width),
            (hb >= high, (high - lb) / width),
            ((lb > low) & (hb < high), (hb - lb) / width),
        ]
        decided = np.zeros(point_at_left.shape, dtype=bool)
        result = np.zeros(point_at_left.shape)
        for condition, value in cases:
            take = condition & ~decided
            result = np.where(take, value, result)
            decided |= take
    if not decided.all():
        i, j = np.argwhere(~decided)[0]
        raise ValueError(f'Unable to compute overlap between ({bounds[i]}, {bounds[i + 1]}) and bucket '
                         f'[{low[0, j]}, {high[0, j]}]')
    return result


def equi_width_histogram(quantiles: np.ndarray, cumulative_counts: np.ndarray, finite_min: float,
                         finite_max: float, num_buckets: int, num_pos_inf: float) -> statistics_pb2.Histogram:
    """`quantiles_util.generate_equi_width_histogram`, same arguments and result."""
    result = statistics_pb2.Histogram(type=statistics_pb2.Histogram.STANDARD)
    if not np.isfinite(finite_min) and not np.isfinite(finite_max):
        result.buckets.add(low_value=finite_min, high_value=finite_max, sample_count=cumulative_counts[-1])
        return result
    assert np.isfinite(finite_min) and np.isfinite(finite_max)
    assert np.all(quantiles[:-1] <= quantiles[1:])
    quantiles, cumulative_counts, num_neg_inf = quantiles_util._strip_infinities(  # pylint: disable=protected-access
        quantiles, cumulative_counts, finite_max, num_pos_inf)
    low, high, counts = quantiles_util._get_bin_weights(quantiles, cumulative_counts)  # pylint: disable=protected-access
    # The quantiles histogram proto stores its bounds and counts as doubles: the same values.
    low, high, counts = (np.asarray(a, dtype=np.float64) for a in (low, high, counts))
    if finite_min == finite_max:
        bounds = np.array([finite_min, finite_max])
    else:
        bounds = np.linspace(finite_min, finite_max, num_buckets + 1)
        if not np.isfinite(bounds).all():
            return result
    if num_neg_inf:
        result.buckets.add(low_value=float('-inf'), high_value=float('-inf'), sample_count=num_neg_inf)
    if counts.size:
        # cumsum adds left to right, as TFDV's loop does (a bucket outside the interval adds an exact 0).
        sample_counts = np.cumsum(_overlaps(low, high, bounds) * counts[None, :], axis=1)[:, -1]
    else:
        sample_counts = np.zeros(bounds.size - 1)
    for low_bound, high_bound, count in zip(bounds[:-1], bounds[1:], sample_counts):
        result.buckets.add(low_value=low_bound, high_value=high_bound, sample_count=count)
    if num_pos_inf:
        result.buckets.add(low_value=float('inf'), high_value=float('inf'), sample_count=num_pos_inf)
    return result


def numpy_histograms():
    """A context in which TFDV's generators use `equi_width_histogram`."""
    return mock.patch.object(quantiles_util, 'generate_equi_width_histogram', equi_width_histogram)
