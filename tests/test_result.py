import math

import pytest

from optkit.result import BoundConflict, Status, finalize, gap, meets


def test_gap_definition():
    assert gap(10.0, 8.0) == pytest.approx(0.2)
    assert gap(None, 3.0) == math.inf
    assert gap(0.0, 0.0) == 0.0


def _fin(**kw):
    base = dict(
        objective=10.0, bound=10.0, plan=(0,), violations=[], runtime_s=0.1, solver="x", method="m"
    )
    base.update(kw)
    return finalize(**base)


def test_optimal_only_when_verified_plan_meets_bound():
    assert _fin().status is Status.OPTIMAL
    assert _fin(bound=9.0).status is Status.FEASIBLE
    assert _fin(bound=None).status is Status.FEASIBLE


def test_violations_drop_the_plan():
    r = _fin(violations=["job 0 twice"])
    assert r.status is Status.ERROR and r.plan is None and "job 0 twice" in r.reason


def test_bound_better_than_objective_is_dropped_never_claimed():
    with pytest.warns(BoundConflict, match="better than the verified objective"):
        r = _fin(bound=11.0, more_bounds=[("milp dual bound", 9.5)])
    assert r.status is Status.FEASIBLE and r.objective == 10.0 and r.bound == 9.5
    assert any("bound 11.0 dropped" in line for line in r.log)


@pytest.mark.parametrize("scale", [1e-9, 1e-6, 1.0, 1e6, 1e12])
def test_tolerance_is_relative_to_the_magnitude(scale):
    # a microsecond-scale objective 2.6% above its bound is not optimal (it was, with an
    # absolute tolerance of 1e-6); the same instance in any unit gets the same status
    assert _fin(objective=13.0 * scale, bound=12.67 * scale).status is Status.FEASIBLE
    assert _fin(objective=13.0 * scale, bound=13.0 * scale * (1 - 1e-7)).status is Status.OPTIMAL
    assert meets(13.0 * scale, 13.0 * scale * (1 - 1e-7))
    assert not meets(13.0 * scale, 13.0 * scale * (1 - 1e-5))


def test_best_of_several_bounds_is_reported():
    r = _fin(bound=8.0, more_bounds=[("lp", 9.0), ("milp", 10.0 + 1e-9)])
    assert r.status is Status.OPTIMAL and r.bound == 10.0


def test_infeasible_and_no_solution():
    r = _fin(infeasible_reason="job 3 has no allowed machine")
    assert r.status is Status.INFEASIBLE and r.gap == 0.0
    r = _fin(plan=None, objective=None, bound=7.0)
    assert r.status is Status.NO_SOLUTION and r.gap == math.inf and r.bound == 7.0


def test_json_has_contract_fields():
    d = _fin().to_dict()
    for k in ("method", "solver", "status", "objective", "bound", "gap", "runtime_s", "verified"):
        assert k in d
    assert _fin(plan=None, objective=None).to_dict()["gap"] == "inf"
