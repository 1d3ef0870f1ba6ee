"""Gilmore–Gomory column generation: the same LP as arc-flow, valid bounds at every
stop, and the P||Cmax LP-bound search it serves."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optkit.packing import BinPackingInstance, arcflow, colgen, knapsack
from optkit.packing.lpbound import makespan_lp_bound

from .helpers import brute_bins


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=7), st.integers(40, 90))
def test_arc_flow_lp_le_this_lp_le_the_optimum(s, W):
    # patterns respect the demands (a_t <= d_t); arc-flow paths may carry more copies
    # of a size than there are items, so its LP can be lower (20, 40 in W = 40: 1.5 vs 2)
    gg = colgen.lp_bound(np.array(s), W)
    lp = arcflow.solve(np.array(s), W, relax=True)
    opt = brute_bins(BinPackingInstance(W, np.array(s, dtype=float)))
    assert gg.optimal and lp.lp_value - 1e-6 <= gg.lower <= opt + 1e-6
    assert gg.lower <= gg.upper + 1e-9


def test_demands_bound_the_patterns_by_hand():
    gg = colgen.lp_bound(np.array([20, 40]), 40)
    assert gg.lower == pytest.approx(2.0)  # arc-flow's LP says 1.5
    assert arcflow.solve(np.array([20, 40]), 40, relax=True).lp_value == pytest.approx(1.5)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=2, max_size=25),
    st.integers(40, 90),
    st.integers(1, 6),
)
def test_an_early_stop_still_brackets_the_lp(s, W, K):
    # asked only "more than K bins?", it may stop early; its bounds still hold
    z = colgen.lp_bound(np.array(s), W).lower
    gg = colgen.lp_bound(np.array(s), W, max_bins=K)
    assert gg.lower <= z + 1e-6 and z <= gg.upper + 1e-6
    assert (gg.lower > K + 1e-6) == (z > K + 1e-6) or gg.upper <= K


def test_pricing_by_hand():
    # profits 3, 2, 2 for sizes 5, 3, 2 (one, two, one copies), capacity 8:
    # 5 + 3 (5) beats 3 + 3 + 2 (6)? no: 3 + 3 + 2 = 8 -> 2 + 2 + 2 = 6 > 5
    got = knapsack.price(np.array([3.0, 2.0, 2.0]), np.array([5, 3, 2]), np.array([1, 2, 1]), 8)
    value, a = got.upper, got.patterns[0]
    assert value == pytest.approx(6.0) and a.tolist() == [0, 2, 1]


def test_a_pool_of_patterns_gives_the_same_value():
    rng = np.random.default_rng(3)
    s = rng.integers(900, 1000, size=40)
    pool: list[np.ndarray] = []
    first = colgen.lp_bound(s, 8 * 990, pool=pool)
    again = colgen.lp_bound(s, 8 * 990 + 7, pool=pool)
    fresh = colgen.lp_bound(s, 8 * 990 + 7)
    assert pool and again.lower == pytest.approx(fresh.lower, abs=1e-6)
    assert again.iterations < fresh.iterations
    assert first.lower >= again.lower - 1e-8  # more room, no more bins


def test_makespan_search_with_few_sizes_uses_the_same_lp():
    # 5 machines, 41 jobs of 10 distinct long durations: the bound by column
    # generation is at least the arc-flow LP's
    rng = np.random.default_rng(7)
    p = rng.choice(np.arange(9000, 9100, 10), size=41)
    lo = int(-(-p.sum() // 5))
    by_cg = makespan_lp_bound(p, 5, lo, lo + 2000)
    cells = colgen.COLGEN_MIN_CELLS
    try:
        colgen.COLGEN_MIN_CELLS = 10**12  # force the arc-flow LP
        by_af = makespan_lp_bound(p, 5, lo, lo + 2000)
    finally:
        colgen.COLGEN_MIN_CELLS = cells
    assert by_cg >= by_af > lo
