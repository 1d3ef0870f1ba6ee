"""Branch-and-price: its optimum against brute force and the arc-flow MILP, its tree
alone (no dive), the goal question, the decomposition of integral arc flows."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optkit.packing import BinPackingInstance, arcflow, bnp, classes
from optkit.packing.driver import raw_check

from .helpers import brute_bins


def _bins_of(plan: np.ndarray, sizes: np.ndarray, W: int) -> int:
    obj, viol = raw_check(BinPackingInstance(W, sizes.astype(float)), plan)
    assert not viol
    return int(obj)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=7), st.integers(40, 90))
def test_optimum_equals_brute_force(s, W):
    sizes = np.array(s)
    out = bnp.branch_and_price(sizes, W, time_limit_s=20)
    opt = brute_bins(BinPackingInstance(W, sizes.astype(float)))
    assert out.status == "optimal" and out.bins == out.bound == opt
    assert _bins_of(out.plan, sizes, W) == opt


@pytest.fixture
def tree_only(monkeypatch):
    """No dive: the tree alone must find the packing and prove it."""
    monkeypatch.setattr(bnp, "DIVES", ())


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(10, 60), min_size=8, max_size=30),
    st.integers(100, 150),
)
def test_tree_alone_matches_the_arcflow_milp(s, W):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bnp, "DIVES", ())
        sizes = np.array(s)
        worst = np.arange(len(s))  # one item per bin: the tree has everything to find
        out = bnp.branch_and_price(sizes, W, time_limit_s=30, incumbent=worst)
    opt = arcflow.solve(sizes, W, time_limit_s=30, in_process=True)
    assert opt.status == "optimal"
    assert out.status == "optimal" and out.bins == out.bound == opt.bins
    assert _bins_of(out.plan, sizes, W) == opt.bins


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(10, 60), min_size=8, max_size=30), st.integers(100, 150))
def test_goal_answers_the_question(s, W):
    sizes = np.array(s)
    opt = arcflow.solve(sizes, W, time_limit_s=30, in_process=True).bins
    no = bnp.branch_and_price(sizes, W, time_limit_s=30, goal=opt - 1)
    assert no.status in ("goal", "optimal") and no.bound >= opt and no.bins >= opt
    yes = bnp.branch_and_price(sizes, W, time_limit_s=30, goal=opt)
    assert yes.bins <= opt and _bins_of(yes.plan, sizes, W) == yes.bins
    assert yes.bound <= opt


@pytest.mark.parametrize("limit", [0.01, 0.2, 1.0])
def test_a_stopped_tree_keeps_a_valid_bound_and_its_limit(tree_only, limit):
    g = classes.falkenauer_t(np.random.default_rng(3), n=60)  # 20 full bins: optimum 20
    t0 = time.perf_counter()
    out = bnp.branch_and_price(g.sizes, g.capacity, time_limit_s=limit, incumbent=np.arange(60))
    assert time.perf_counter() - t0 <= limit * 1.05 + 0.5
    assert out.bound <= g.optimum <= out.bins == _bins_of(out.plan, g.sizes, g.capacity)


def test_decompose_uses_every_arc():
    w = np.array([6, 4, 3])  # types by non-increasing size, W = 10
    W = 10
    code = lambda t, h: t * (W + 1) + h  # noqa: E731
    # two bins (6, 4) and one bin (4, 3, 3): arcs (0,0) x2... as flows
    flows = {code(0, 0): 1.0, code(1, 6): 1.0, code(1, 0): 1.0, code(2, 4): 1.0, code(2, 7): 1.0}
    paths = bnp.decompose(flows, w, W)
    assert sorted(p.tolist() for p in paths) == [[0, 1, 2], [1, 1, 0]]


def test_units_do_not_change_the_answer():
    rng = np.random.default_rng(7)
    sizes = rng.integers(20, 70, 40)
    a = bnp.branch_and_price(sizes, 150, time_limit_s=20)
    b = bnp.branch_and_price(sizes * 1000, 150_000, time_limit_s=20)
    assert a.status == b.status == "optimal" and a.bins == b.bins
    # in bytes (W = 150 MB): the pricing runs on its grid, no tree; what it returns
    # still brackets the optimum and packs every item
    big = sizes * 1_000_000
    c = bnp.branch_and_price(big, 150_000_000, time_limit_s=20)
    assert c.bound <= a.bins <= c.bins == _bins_of(c.plan, big, 150_000_000)


@pytest.mark.parametrize("name", sorted(classes.CLASSES))
def test_every_class_generates_valid_sizes(name):
    for seed in range(3):
        g = classes.generate(name, seed)
        assert len(g.sizes) > 0 and g.sizes.min() >= 1 and g.sizes.max() <= g.capacity
        if g.optimum is not None:  # a perfect packing by construction: L1 is the optimum
            assert int(g.sizes.sum()) == g.optimum * g.capacity
        again = classes.generate(name, seed)
        assert np.array_equal(g.sizes, again.sizes)  # the seed fixes the instance


def test_an_incumbent_with_gaps_in_its_labels_counts_its_bins():
    sizes = np.array([60, 60, 40, 40])
    gappy = np.array([0, 7, 0, 7])  # two bins, labelled 0 and 7
    out = bnp.branch_and_price(sizes, 100, time_limit_s=10, incumbent=gappy)
    assert out.bins == out.bound == 2 and out.status == "optimal"


def test_plan_of_bins_drops_surplus_sizes_and_reports_a_missing_item():
    from optkit.packing.bins import plan_of_bins

    sizes = np.array([5, 3, 3])
    plan = plan_of_bins(sizes, [np.array([5, 3, 3, 3]), np.array([])])  # one 3 too many
    assert plan is not None and plan.tolist() == [0, 0, 0]
    assert plan_of_bins(sizes, [np.array([5, 3])]) is None  # a 3 in no bin
