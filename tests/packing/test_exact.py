"""Exact methods against brute force, on every available back-end."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optkit.packing import BinPackingInstance, MakespanInstance, arcflow, bound, check, exact, solve
from optkit.packing.driver import bounds as packing_bounds
from optkit.result import Status
from optkit.solvers import SolverOptions

from .helpers import brute_bins, brute_makespan

OPTS = SolverOptions(time_limit_s=20)


def identical_small():
    return MakespanInstance.identical([7, 7, 6, 6, 5, 4, 4, 3], 3, name="hand")  # sum 42 -> 14


def test_identical_hand_case_is_14():
    assert brute_makespan(MakespanInstance.identical([7, 6, 5, 4], 2)) == 11
    inst = identical_small()
    res = solve(inst)
    assert res.status is Status.OPTIMAL and res.objective == 14 and res.bound == 14


@pytest.mark.parametrize("method", ["milp", "cpsat", "arcflow"])
def test_each_exact_method_on_hand_case(method):
    res = solve(identical_small(), method, options=OPTS)
    assert res.status is Status.OPTIMAL and res.objective == 14 and res.verified


def test_milp_on_every_backend(milp_solver):
    inst = MakespanInstance.identical([9, 8, 7, 6, 5, 4, 3, 2], 3)  # sum 44 -> ceil 15
    res = solve(inst, "milp", OPTS, milp_solver)
    assert res.objective == brute_makespan(inst) == 15
    assert res.status is Status.OPTIMAL and res.solver == milp_solver
    b = BinPackingInstance(10, np.array([6, 5, 4, 3, 2, 5, 5], dtype=float))
    res = solve(b, "milp", OPTS, milp_solver)
    assert res.objective == brute_bins(b) == 3 and res.status is Status.OPTIMAL


def test_auto_exact_stage_on_every_backend(solver):
    # LPT gives 12 here (7+5 | 6+4+...); the optimum 11 needs the exact stage or local search.
    inst = MakespanInstance.unrelated([[4, 7, 3, 9, 2, 6], [5, 6, 4, 8, 3, 5], [9, 2, 7, 6, 4, 8]])
    res = solve(inst, "auto", OPTS, solver)
    assert res.objective == brute_makespan(inst)
    assert res.status is Status.OPTIMAL


def test_uniform_milp():
    inst = MakespanInstance.uniform([7, 3, 9, 4, 4, 6], [1.0, 2.0])
    res = solve(inst, "milp", options=OPTS)
    assert res.objective == pytest.approx(brute_makespan(inst))


def test_unrelated_forbidden_pairs_and_infeasible():
    inf = np.inf
    inst = MakespanInstance.unrelated([[3, inf, 2], [inf, 4, 5]])
    res = solve(inst, "cpsat", options=OPTS)
    assert res.objective == 5 and res.status is Status.OPTIMAL  # 3 + 2 on machine 0; 4 on 1
    bad = MakespanInstance.unrelated([[3, inf], [2, inf]], name="bad")
    res = solve(bad)
    assert res.status is Status.INFEASIBLE and res.reason.startswith("job 1 has no allowed machine")


def test_item_larger_than_capacity_is_infeasible():
    res = solve(BinPackingInstance(10, np.array([4.0, 11.0])))
    assert res.status is Status.INFEASIBLE
    assert res.reason == "item 1 of size 11 exceeds the bin capacity 10 (1 such items)"


def test_arcflow_lp_is_gilmore_gomory():
    # Items 3 x 0.5 W: LP (and GG) = 1.5 bins -> bound 2; optimum 3 (no two 6s fit in 10).
    s = np.array([6.0, 6.0, 6.0])
    lp = arcflow.solve(s, 10, relax=True)
    assert lp.lp_value == pytest.approx(3.0) and lp.bound == 3
    g = arcflow.build_graph(np.array([3, 3, 2, 2, 2], dtype=float), 6)
    sol = arcflow.solve(np.array([3, 3, 2, 2, 2], dtype=float), 6, graph=g)
    assert sol.bins == 2 and sol.status == "optimal"


def test_time_limited_solve_returns_best_plan_bound_and_gap():
    rng = np.random.default_rng(3)
    inst = MakespanInstance.identical(rng.integers(20, 100, 60), 7)
    res = solve(inst, "milp", SolverOptions(time_limit_s=0.5), "highs")
    assert res.plan is not None and res.verified
    assert res.status in (Status.OPTIMAL, Status.FEASIBLE)
    # the best plan: re-checked, never worse than the heuristic it started from
    assert check(inst, res.plan).objective == res.objective
    assert res.objective <= solve(inst, "lpt").objective
    # the bound: at least every cheap bound, and the gap is the one of DESIGN.md
    cheap = max(b.value for b in packing_bounds(inst, "cheap"))
    assert cheap <= res.bound <= res.objective
    assert res.gap == pytest.approx((res.objective - res.bound) / res.objective)


def test_export_models(tmp_path):
    from optkit.packing.export import export_model

    export_model(identical_small(), "milp", "lp", tmp_path / "a.lp")
    export_model(identical_small(), "arcflow", "mps", tmp_path / "a.mps")
    assert "Minimize" in (tmp_path / "a.lp").read_text()
    assert "ROWS" in (tmp_path / "a.mps").read_text()


small_p = st.lists(st.integers(1, 25), min_size=1, max_size=7)


@settings(max_examples=15)
@given(small_p, st.integers(1, 3), st.sampled_from(["milp", "cpsat", "arcflow"]))
def test_bound_le_exact_le_heuristic(p, m, method):
    inst = MakespanInstance.identical(p, m)
    opt = brute_makespan(inst)
    lb = bound(inst).value
    heur = solve(inst, "lpt").objective
    res = solve(inst, method, options=OPTS)
    assert lb <= opt <= heur
    assert res.objective == opt and res.status is Status.OPTIMAL
    assert check(inst, res.plan).valid


@settings(max_examples=15)
@given(
    st.lists(st.integers(1, 10), min_size=1, max_size=7),
    st.integers(10, 14),
    st.sampled_from(["milp", "cpsat", "arcflow", "auto"]),
)
def test_binpacking_exact_matches_brute_force(s, W, method):
    inst = BinPackingInstance(W, np.array(s, dtype=float))
    res = solve(inst, method, options=OPTS)
    assert res.objective == brute_bins(inst) and res.status is Status.OPTIMAL


@settings(max_examples=10)
@given(st.lists(st.lists(st.integers(1, 20), min_size=5, max_size=5), min_size=2, max_size=3))
def test_unrelated_exact_matches_brute_force(rows):
    inst = MakespanInstance.unrelated(rows)
    for method in ("milp", "cpsat"):
        res = solve(inst, method, options=OPTS)
        assert res.objective == brute_makespan(inst) and res.status is Status.OPTIMAL
    assert exact.cpsat_makespan(inst, OPTS).status == "optimal"


def test_cpsat_infeasible_horizon_proves_only_up_to_the_horizon():
    # Optimum 14; asking for C <= 12 is infeasible and proves C >= 13 — not infinity.
    out = exact.cpsat_makespan(identical_small(), OPTS, lower=0, upper=12)
    assert out.status == "infeasible" and out.plan is None and out.bound == 13
    b = BinPackingInstance(10, np.array([6, 5, 4, 3, 2, 5, 5], dtype=float))  # optimum 3
    out = exact.cpsat_binpacking(b, OPTS, upper=2)
    assert out.status == "infeasible" and out.bound == 3
