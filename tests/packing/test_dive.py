"""The arc-flow LP dive (a primal heuristic) and the galloping search that raises
P||Cmax bounds."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optkit.packing import BinPackingInstance, MakespanInstance, check, solve
from optkit.packing.bounds import raise_by_search
from optkit.packing.dive import dive
from optkit.solvers import SolverOptions

from .helpers import brute_bins


def _valid(sizes: list[int], W: int, K: int, plan: np.ndarray | None) -> bool:
    if plan is None:
        return False
    inst = BinPackingInstance(W, np.array(sizes, dtype=float))
    verdict = check(inst, plan)
    bins, viol = verdict.objective, list(verdict.violations)
    return not viol and bins <= K and int(plan.max()) < K


def test_perfect_triplets_by_hand():
    # Falkenauer-T style: every bin must hold exactly three items summing to 100
    # (a: 50 + 30 + 20, b: 45 + 35 + 20, c: 40 + 35 + 25, d: 40 + 32 + 28)
    sizes = [50, 30, 20, 45, 35, 20, 40, 35, 25, 40, 32, 28]
    out = dive(np.array(sizes), 100, 4, time_limit_s=None)
    assert _valid(sizes, 100, 4, out.plan) and not out.refuted
    # three bins cannot hold 400 units: the LP is infeasible, which refutes 3 bins
    out = dive(np.array(sizes), 100, 3, time_limit_s=None)
    assert out.plan is None and out.refuted
    assert out.lp_value == pytest.approx(4.0)  # the LP of all items, the new bound


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 10), min_size=1, max_size=7), st.integers(10, 15))
def test_any_plan_is_valid_and_below_the_optimum_there_is_none(s, W):
    opt = brute_bins(BinPackingInstance(W, np.array(s, dtype=float)))
    for K in (opt, opt + 1):
        out = dive(np.array(s), W, K, time_limit_s=None)
        assert not out.refuted and (out.plan is None or _valid(s, W, K, out.plan))
    if opt > 1:
        assert dive(np.array(s), W, opt - 1, time_limit_s=None).plan is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(5, 60), min_size=6, max_size=30), st.integers(2, 5))
def test_dive_at_a_makespan_never_exceeds_it(p, m):
    # P||Cmax: m bins of capacity C; whatever the dive returns is a plan of makespan <= C
    C = max(max(p), -(-sum(p) // m)) + 3
    plan = dive(np.array(p), C, m, time_limit_s=None).plan
    if plan is not None:
        verdict = check(MakespanInstance.identical(p, m), plan)
        obj, viol = verdict.objective, list(verdict.violations)
        assert not viol and obj <= C


def _perfect(m: int, C: int, seed: int) -> list[int]:
    """m machines, each filled to exactly C by three jobs (class-6-like, 2-3 per machine)."""
    rng = np.random.default_rng(seed)
    p: list[int] = []
    for _ in range(m):
        a = int(rng.integers(C // 4, C // 2))
        b = int(rng.integers(C // 4, min(C // 2, C - a - C // 4) + 1))
        p += [a, b, C - a - b]
    rng.shuffle(p)
    return p


def test_dive_and_auto_find_a_perfect_packing_the_list_heuristics_miss():
    p = _perfect(20, 1000, 0)
    inst = MakespanInstance.identical(p, 20)
    assert solve(inst, "lpt").objective > 1000 and solve(inst, "multifit").objective > 1000
    plan = dive(np.array(p), 1000, 20, time_limit_s=None).plan
    assert plan is not None
    verdict = check(inst, plan)
    obj, viol = verdict.objective, list(verdict.violations)
    assert not viol and obj == 1000
    res = solve(inst, "auto", options=SolverOptions(5.0))
    assert res.status.value == "OPTIMAL" and res.objective == 1000


@given(st.integers(0, 50), st.integers(0, 200), st.data())
def test_search_finds_the_threshold_in_few_calls(lo, width, data):
    hi = lo + width
    T = data.draw(st.integers(lo, hi))  # every C < T is infeasible, C >= T is not
    calls: list[int] = []

    def infeasible(C: int) -> bool:
        calls.append(C)
        assert lo <= C < hi
        return C < T

    assert raise_by_search(lo, hi, infeasible) == T
    assert len(calls) <= 2 * max(1, (T - lo + 1).bit_length()) + 1
    if lo == T and width:
        assert calls == [lo]  # a bound that stands costs one call


@given(st.integers(0, 30), st.integers(1, 60), st.integers(0, 2**16), st.booleans())
def test_search_is_valid_with_an_oracle_that_misses_proofs(lo, width, seed, graded):
    # the oracle proves only some infeasible C (graded: with a random excess, which
    # misleads the secant): the result never passes a C it did not refute
    rng = np.random.default_rng(seed)
    hi, T = lo + width, lo + int(rng.integers(0, width + 1))
    proven = {C: float(rng.random()) if graded else 1.0 for C in range(lo, T) if rng.random() < 0.7}
    out = raise_by_search(lo, hi, lambda C: proven.get(C, 0.0))
    assert lo <= out <= T
    assert all(any(D in proven for D in range(C, out)) for C in range(lo, out))


@given(st.integers(0, 10_000), st.integers(1, 10_000), st.data())
def test_search_with_a_linear_excess_takes_a_few_calls(lo, width, data):
    # the LP excess LP(C) - m falls about linearly in C (NU_2: 0.119 at L1, 0.0003 at OPT - 1)
    hi = lo + width
    T = data.draw(st.integers(lo, hi))
    slope = data.draw(st.floats(1e-4, 1.0))
    calls: list[int] = []

    def excess(C: int) -> float:
        calls.append(C)
        return slope * (T - C) if C < T else 0.0

    assert raise_by_search(lo, hi, excess) == T
    assert len(calls) <= 5
