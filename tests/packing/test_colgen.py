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


def _patterns(w: np.ndarray, d: np.ndarray, W: int):
    """Every pattern (counts per type) of sizes ``w`` with demands ``d``, by enumeration."""
    out = [np.zeros(len(w), dtype=np.int64)]
    for t in range(len(w)):
        out = [
            np.where(np.arange(len(w)) == t, k, a)
            for a in out
            for k in range(int(d[t]) + 1)
            if int(a @ w) + k * int(w[t]) <= W
        ]
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 3)), min_size=1, max_size=5),
    st.integers(30, 70),
    st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3),
    st.data(),
)
def test_pricing_with_arc_duals_is_the_best_path(types, W, ys, data):
    # the DP over heights charges an arc dual where a type-t item starts at height h;
    # it must find the best pattern of an enumeration, priced along its path
    sizes = {}
    for s, d in types:
        sizes[s] = sizes.get(s, 0) + d
    w = np.array(sorted(sizes, reverse=True), dtype=np.int64)
    d = np.array([sizes[s] for s in w.tolist()], dtype=np.int64)
    profit = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(w), max_size=len(w))))
    pats = _patterns(w, d, W)
    arcs: dict[int, dict[int, float]] = {}
    for y in ys:  # duals on arcs that some pattern crosses
        a = pats[data.draw(st.integers(0, len(pats) - 1))]
        kinds, heights = knapsack.path(a, w)
        if len(kinds):
            k = data.draw(st.integers(0, len(kinds) - 1))
            arcs.setdefault(int(kinds[k]), {})[int(heights[k])] = y
    best = max(knapsack.path_price(a, profit, w, arcs) for a in pats)
    got = knapsack.price(profit, w, d, W, arcs or None)
    assert got.exact and got.upper == pytest.approx(max(best, 0.0), rel=1e-9, abs=1e-12)
    if got.patterns:
        assert got.prices[0] == pytest.approx(got.upper, rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(1_000, 400_000), min_size=1, max_size=6),
    st.integers(400_000, 1_000_000),
    st.integers(1, 3),
)
def test_the_grid_bounds_the_knapsack_and_its_patterns_fit(sizes, W, copies):
    # in bytes: the table is too large, so the grid's rounded-down sizes must bound
    # the optimum and its rounded-up patterns must fit
    w = np.array(sorted(set(sizes), reverse=True), dtype=np.int64)
    d = np.full(len(w), copies, dtype=np.int64)
    profit = w / W  # the LP's duals are proportional to the sizes at the end
    exact = knapsack.price(profit, w, d, W)
    grid = knapsack.price(profit, w, d, W, table=5_000, bb_nodes=0)
    assert not grid.exact and exact.exact
    assert grid.upper >= exact.upper * (1 - 1e-12)
    assert all(int(a @ w) <= W and np.all(a <= d) for a in grid.patterns)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 60), st.integers(1, 3)), min_size=1, max_size=7),
    st.integers(1, 100),
    st.data(),
)
def test_the_branch_and_bound_is_the_table(types, W, data):
    # past the table (here: a table of one cell) the branch and bound prices without
    # arc duals: the same optimum as the table, proven (upper >= it, within its 1e-9),
    # its patterns feasible and priced at most upper, the first at the optimum
    sizes: dict[int, int] = {}
    for s, d in types:
        sizes[s] = sizes.get(s, 0) + d
    w = np.array(sorted(sizes, reverse=True), dtype=np.int64)
    d = np.array([sizes[s] for s in w.tolist()], dtype=np.int64)
    scale = data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
    profit = scale * np.array(
        data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(w), max_size=len(w)))
    )
    table = knapsack.price(profit, w, d, W)
    bb = knapsack.price(profit, w, d, W, table=1)
    assert table.exact and bb.exact
    assert table.upper <= bb.upper <= table.upper * (1 + 2e-9) + 1e-300
    assert all(int(a @ w) <= W and np.all(a <= d) for a in bb.patterns)
    assert all(v <= bb.upper for v in bb.prices)
    if table.upper > 0:
        assert bb.prices[0] == pytest.approx(table.upper, rel=1e-9)
    # with a floor (column generation's 1): max(optimum, floor), only patterns above it
    floor = data.draw(st.sampled_from([0.5, 1.0, 2.0])) * scale
    fl = knapsack.price(profit, w, d, W, table=1, floor=floor)
    want = max(table.upper, floor)
    assert want <= max(fl.upper, floor) <= want * (1 + 2e-9)
    assert all(v > floor for v in fl.prices)
    if table.upper > floor * (1 + 1e-9):
        assert fl.prices[0] == pytest.approx(table.upper, rel=1e-9)


def test_the_branch_and_bound_hands_over_to_the_grid_past_its_nodes():
    # strongly correlated profits (p = w + c) on many sizes: the search does not close
    # in 50 nodes, so the grid's bound (not exact) comes back, still above the optimum
    rng = np.random.default_rng(3)
    w = np.sort(rng.integers(100_000, 400_000, 40))[::-1].astype(np.int64)
    d = np.full(40, 2, dtype=np.int64)
    profit = (w + 10_000) / 1_000_000
    few = knapsack.price(profit, w, d, 1_000_000, table=5_000, bb_nodes=50)
    full = knapsack.price(profit, w, d, 1_000_000, table=5_000)
    assert full.exact and not few.exact
    assert few.upper >= full.upper * (1 - 1e-12)


def test_lp_bound_is_unit_free():
    # the same items in units 1,000 times smaller: the same number of bins
    rng = np.random.default_rng(11)
    s = rng.integers(20, 60, size=30)
    small, large = colgen.lp_bound(s, 100), colgen.lp_bound(s * 1000, 100_000)
    assert small.optimal and large.optimal
    assert large.lower == pytest.approx(small.lower, rel=1e-8)


def test_a_forbidden_arc_and_a_forced_arc():
    # sizes 5, 4, 3 with W = 9: forbidding the arc (type 0 at height 0) leaves the
    # size-5 items no pattern (each starts with them), so only artificials cover them;
    # forcing the arc (type 1 at height 5) to carry 2 puts two 5+4 bins in the LP
    w, d = np.array([5, 4, 3]), np.array([2, 2, 2])
    m = colgen.Master(w, d, 9)
    code = 0 * (9 + 1) + 0
    m.set_arc_bounds({code: (-m.inf, 0.0)})
    got = m.solve()
    assert got is not None and got.artificial == pytest.approx(2.0)
    assert m.arc_flows(got.values).get(code, 0.0) == pytest.approx(0.0, abs=1e-9)
    forced = 1 * (9 + 1) + 5
    m.set_arc_bounds({forced: (2.0, m.inf)})
    got = m.solve()
    assert got is not None and got.artificial == pytest.approx(0.0, abs=1e-9)
    assert m.arc_flows(got.values)[forced] >= 2.0 - 1e-9
    # the bound stays below the best packing that obeys the row: 5+4, 5+4, 3+3 = 3 bins
    assert got.bound.lower <= 3.0 + 1e-9


def test_the_branch_and_bound_is_the_table_on_many_types():
    # up to 40 types, profits near the LP's (proportional to the sizes, scaled): where
    # the cuts matter; a bound that is not the LP's would cut an optimum (seen: 1.0907
    # for 1.0936 with a truncated bound)
    rng = np.random.default_rng(1)
    for _ in range(600):
        n, W = int(rng.integers(1, 40)), int(rng.integers(10, 400))
        w = np.sort(rng.integers(1, W + 1, n))[::-1].astype(np.int64)
        d = rng.integers(1, 5, n).astype(np.int64)
        p = rng.random(n) * w / W * rng.choice([0.5, 1.2, 3.0])
        table = knapsack.price(p, w, d, W)
        for floor in (0.0, 1.0):
            bb = knapsack.price(p, w, d, W, table=1, floor=floor)
            want = max(table.upper, floor)
            assert want * (1 - 1e-12) <= max(bb.upper, floor) <= want * (1 + 3e-9)


def test_the_table_size_is_counted_without_building_it():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n, W = int(rng.integers(1, 30)), int(rng.integers(1, 1000))
        w, c, use = rng.integers(0, W + 1, n), rng.integers(0, 40, n), rng.random(n) < 0.8
        assert knapsack._group_count(c, w, W, use) == len(knapsack._groups(c, w, W, use))


def test_the_branch_and_bound_in_bytes_and_with_free_sizes():
    # the same knapsack with sizes and capacity in units 1,000 times smaller (and a
    # profit scale of 1e-6): the same optimum and patterns, by the table at the small
    # scale and by the branch and bound at the byte scale
    rng = np.random.default_rng(7)
    for _ in range(100):
        n, W = int(rng.integers(2, 25)), int(rng.integers(50, 400))
        w = np.sort(rng.integers(1, W + 1, n))[::-1].astype(np.int64)
        d = rng.integers(1, 4, n).astype(np.int64)
        p = 1e-6 * rng.random(n) * w / W
        small = knapsack.price(p, w, d, W)
        big = knapsack.price(p, w * 1000, d, W * 1000, table=1)
        assert big.exact and big.upper == pytest.approx(small.upper, rel=3e-9)
        assert all(int(a @ (w * 1000)) <= W * 1000 for a in big.patterns)
    # a size-0 type with a profit goes into the pattern with all its copies
    w, d, p = np.array([7, 4, 0]), np.array([2, 2, 3]), np.array([0.5, 0.3, 0.1])
    table, bb = knapsack.price(p, w, d, 10), knapsack.price(p, w, d, 10, table=1)
    assert table.upper == pytest.approx(0.9) and bb.upper == pytest.approx(0.9, rel=2e-9)
    assert bb.patterns[0].tolist() == [0, 2, 3]
