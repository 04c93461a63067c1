"""components/confusion_cut/maxcut.py: the exact cut against an independent brute force, the heuristic against its bound and the
exact optimum, and the partition of a confusion matrix with a known structure."""
import itertools
import time

import numpy as np
import pytest

from tfx_tabular.components.confusion_cut import maxcut


def brute_force(w):
    """Independent reference: every assignment of every node, plain Python."""
    n = len(w)
    best = -1.0
    for sides in itertools.product((0, 1), repeat=n):
        value = sum(w[i][j] for i in range(n) for j in range(i + 1, n) if sides[i] != sides[j])
        best = max(best, value)
    return best


def random_confusion(rng, n, density=0.5, scale=20):
    counts = rng.integers(0, scale, size=(n, n)) * (rng.random((n, n)) < density)
    np.fill_diagonal(counts, rng.integers(50, 100, size=n))  # correct answers: dropped by the graph
    return counts


def test_graph_is_symmetric_confusions_both_ways_without_self_loops():
    c = np.array([[9, 2, 0], [5, 7, 1], [0, 3, 8]])
    w = maxcut.confusion_graph(c)
    assert w.tolist() == [[0, 7, 0], [7, 0, 4], [0, 4, 0]]
    with pytest.raises(ValueError, match='square'):
        maxcut.confusion_graph(np.ones((2, 3)))
    with pytest.raises(ValueError, match='non-negative'):
        maxcut.confusion_graph(-np.ones((2, 2)))


@pytest.mark.parametrize('n', range(2, 11))
def test_exact_cut_equals_brute_force(n):
    rng = np.random.default_rng(100 + n)
    for _ in range(3):
        w = maxcut.confusion_graph(random_confusion(rng, n))
        cut = maxcut.exact_cut(w)
        assert cut.exact and cut.upper_bound == cut.value
        assert cut.value == pytest.approx(brute_force(w.tolist()))
        assert cut.value == pytest.approx(maxcut.cut_value(w, cut.sides))  # the reported sides give the value
        assert cut.sides[0] == 0 and set(cut.sides.tolist()) <= {0, 1}


def test_exact_cut_at_20_nodes_is_fast_and_beats_every_local_optimum():
    rng = np.random.default_rng(20)
    w = maxcut.confusion_graph(random_confusion(rng, 20, density=0.4))
    start = time.perf_counter()
    cut = maxcut.exact_cut(w)
    assert time.perf_counter() - start < 5.0
    assert cut.value >= maxcut.local_search_cut(w, starts=32).value
    assert maxcut.max_cut(w).exact  # 20 is within EXACT_UP_TO


@pytest.mark.parametrize('n', [12, 14, 16, 18, 20])
def test_heuristic_within_its_bound_and_near_the_exact_optimum(n):
    rng = np.random.default_rng(7 * n)
    for density in (0.2, 0.5, 0.9):
        w = maxcut.confusion_graph(random_confusion(rng, n, density))
        exact = maxcut.exact_cut(w).value
        heuristic = maxcut.local_search_cut(w, seed=n)
        assert not heuristic.exact
        assert heuristic.value == pytest.approx(maxcut.cut_value(w, heuristic.sides))
        assert heuristic.value <= exact + 1e-9
        assert heuristic.upper_bound >= exact - 1e-6              # the bound really bounds the optimum
        assert heuristic.upper_bound <= maxcut.total_weight(w) + 1e-9
        assert heuristic.value >= 0.95 * exact                    # proven: >= 0.5; measured: optimal or close
        assert heuristic.value >= maxcut.total_weight(w) / 2 - 1e-9  # every 1-flip local optimum cuts half


def test_eigenvalue_bound_is_tighter_than_total_weight_on_dense_graphs():
    rng = np.random.default_rng(3)
    w = maxcut.confusion_graph(random_confusion(rng, 16, density=0.9))
    bound = maxcut.upper_bound(w)
    assert maxcut.exact_cut(w).value <= bound < 0.9 * maxcut.total_weight(w)


@pytest.mark.parametrize('n', [21, 40, 120])
def test_beyond_20_nodes_the_heuristic_runs_and_reports_a_bound(n):
    rng = np.random.default_rng(n)
    w = maxcut.confusion_graph(random_confusion(rng, n, density=0.3))
    start = time.perf_counter()
    cut = maxcut.max_cut(w)
    assert time.perf_counter() - start < 20.0
    assert not cut.exact and 'heuristic' in cut.method and 'bound' in cut.method
    assert len(cut.sides) == n
    assert cut.value == pytest.approx(maxcut.cut_value(w, cut.sides))
    assert maxcut.total_weight(w) / 2 <= cut.value <= cut.upper_bound <= maxcut.total_weight(w) + 1e-9
    assert cut.value >= 0.9 * cut.upper_bound  # the bound is informative, not just the total weight


def test_bipartite_graph_is_cut_completely():
    """On a bipartite graph the maximum cut takes every edge, and the heuristic finds it too."""
    rng = np.random.default_rng(5)
    n = 24
    part = rng.integers(0, 2, size=n)
    w = rng.integers(1, 10, size=(n, n)).astype(float) * (part[:, None] != part[None, :])
    w = np.triu(w, 1) + np.triu(w, 1).T
    cut = maxcut.max_cut(w)
    assert cut.value == pytest.approx(maxcut.total_weight(w))
    assert cut.upper_bound == pytest.approx(cut.value)
    assert (cut.sides == part).all() or (cut.sides != part).all()


@pytest.mark.parametrize('exact_up_to', [20, 5])  # exact, then the heuristic on the same matrix
def test_most_confused_pairs_land_on_opposite_sides(exact_up_to):
    """Ten classes in five pairs that are confused heavily with each other (100 each way) and slightly with
    everything else (1): the cut must split every pair."""
    pairs = [(0, 5), (1, 6), (2, 7), (3, 8), (4, 9)]
    c = np.ones((10, 10), dtype=int)
    for a, b in pairs:
        c[a, b] = c[b, a] = 100
    np.fill_diagonal(c, 500)
    cut = maxcut.cut_confusion(c, exact_up_to=exact_up_to)
    assert cut.exact == (exact_up_to >= 10)
    for a, b in pairs:
        assert cut.sides[a] != cut.sides[b], (a, b, cut.sides)
    # 5 heavy edges of weight 200, plus the light edges across: 5 x 5 pairs across, minus the 5 heavy ones.
    assert cut.value == pytest.approx(5 * 200 + (25 - 5) * 2)


def test_block_confusion_keeps_an_unconfused_group_together():
    """Two groups, {0,1,2} confused among themselves and {3,4,5} never confused with anything: the heavy
    triangle can only be cut 2 of 3 edges, and no cut edge may be a zero-weight one wasted."""
    c = np.zeros((6, 6), dtype=int)
    for a, b, k in [(0, 1, 30), (1, 2, 20), (0, 2, 10)]:
        c[a, b] = c[b, a] = k
    cut = maxcut.cut_confusion(c, names=list('abcdef'))
    assert cut.value == pytest.approx(2 * (30 + 20))      # cuts 0-1 and 1-2, keeps the lightest edge 0-2
    assert cut.sides[0] == cut.sides[2] != cut.sides[1]
    with pytest.raises(ValueError, match='class names'):
        maxcut.cut_confusion(c, names=['a', 'b'])
