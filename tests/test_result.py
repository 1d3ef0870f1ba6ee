import math

import pytest

from optkit.result import Status, finalize, gap


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


def test_bound_better_than_objective_is_an_internal_error():
    with pytest.raises(RuntimeError, match="better than verified objective"):
        _fin(bound=11.0)


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
