import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optkit.packing import MakespanInstance, OnlineAssigner, check

jobs = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=60)


@given(jobs, st.integers(1, 8))
def test_least_loaded_meets_graham_bound(p, m):
    a = OnlineAssigner(m)
    plan = a.assign_many(p)
    inst = MakespanInstance.identical(p, m)
    verdict = check(inst, plan)
    obj, viol = verdict.objective, list(verdict.violations)
    assert not viol and obj == pytest.approx(a.makespan)
    # List scheduling: C <= sum/m + (1 - 1/m) max p  (<= (2 - 1/m) OPT).
    assert obj <= sum(p) / m + (1 - 1 / m) * max(p) + 1e-6


@given(jobs, st.integers(1, 8), st.floats(1, 500))
def test_target_rule_guarantee(p, m, target):
    a = OnlineAssigner(m, rule="target", target=target)
    plan = a.assign_many(p)
    verdict = check(MakespanInstance.identical(p, m), plan)
    obj, viol = verdict.objective, list(verdict.violations)
    assert not viol and obj == pytest.approx(a.makespan)
    assert np.bincount(plan, weights=p, minlength=m) == pytest.approx(a.loads)
    assert obj <= max(target, sum(p) / m + (1 - 1 / m) * max(p)) + 1e-6


def test_uniform_machines_earliest_completion():
    a = OnlineAssigner(2, speeds=[1.0, 3.0])
    assert [a.assign(3.0) for _ in range(3)] == [1, 1, 0]  # finishes 1, 2, then a tie 3 = 3
    assert a.loads.tolist() == [3.0, 2.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"machines": 0}, "machines must be at least 1"),
        ({"machines": 2, "rule": "magic"}, "unknown rule 'magic'"),
        ({"machines": 2, "rule": "target"}, "needs a positive target"),
        ({"machines": 2, "speeds": [1.0]}, "one positive number per machine"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OnlineAssigner(**kwargs)


def test_negative_duration_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        OnlineAssigner(2).assign(-1.0)
    assert np.isfinite(OnlineAssigner(2).assign(0.0))
