"""Mutation tests: change one duration, capacity or assignment in a valid plan, and each
problem's independent checker reports it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optkit import kvcache, packing, serving
from optkit.io import read_instance
from optkit.kvcache.generate import small_random
from optkit.kvcache.plan import KvPlan
from optkit.packing import BinPackingInstance, MakespanInstance
from optkit.serving import IterationModel, Schedule, ServingInstance
from optkit.solvers import SolverOptions
from tests.conftest import ROOT

# --- packing -------------------------------------------------------------------------


@settings(max_examples=20)
@given(
    p=st.lists(st.integers(1, 50), min_size=3, max_size=12),
    m=st.integers(2, 4),
    k=st.integers(0, 100),
)
def test_makespan_check_sees_a_moved_job(p, m, k):
    inst = MakespanInstance.identical(np.asarray(p, float), m)
    plan = np.asarray(packing.solve(inst, "lpt").plan)
    j = k % len(p)
    moved = plan.copy()
    moved[j] = (plan[j] + 1) % m
    before, after = packing.check(inst, plan), packing.check(inst, moved)
    loads = np.bincount(moved, weights=inst.durations, minlength=m)
    assert after.valid and after.objective == loads.max()
    assert before.objective == np.bincount(plan, weights=inst.durations, minlength=m).max()
    bad = moved.copy()
    bad[j] = m  # a machine that does not exist
    assert not packing.check(inst, bad).valid


def test_binpacking_check_sees_an_overfull_bin():
    inst = BinPackingInstance(10, np.array([6.0, 5.0, 4.0, 5.0]))
    plan = np.asarray(packing.solve(inst, "ffd").plan)
    assert packing.check(inst, plan).valid
    crowded = plan.copy()
    crowded[1] = crowded[0]  # 6 + 5 > 10
    v = packing.check(inst, crowded)
    assert not v.valid and any("capacity" in x or "exceed" in x for x in v.violations)


# --- KV placement ----------------------------------------------------------------------


@settings(max_examples=10)
@given(seed=st.integers(0, 1000))
def test_kv_check_sees_a_changed_move(seed):
    inst = small_random(seed)
    res = kvcache.solve(inst, "reactive")
    plan = res.plan
    assert kvcache.check(inst, plan).valid
    steps = list(plan.steps)
    # a promotion of a unit that is already in HBM (any unit just promoted) is refused
    t = next((i for i, (p, _, _) in enumerate(steps) if len(p)), None)
    if t is not None and t + 1 < len(steps):
        p, d, w = steps[t + 1]
        steps2 = list(steps)
        steps2[t + 1] = (np.append(p, steps[t][0][0]), d, w)
        assert not kvcache.check(inst, KvPlan.of(steps2)).valid
    # every new unit kept in HBM without demoting: HBM overflows (capacity)
    full = KvPlan.of([(p, np.zeros(0, np.int64), True) for p, _, _ in steps])
    v = kvcache.check(inst, full)
    if inst.hbm_units < inst.units_total:
        assert not v.valid


def test_kv_plan_json_round_trip_and_bad_json():
    inst = small_random(3)
    res = kvcache.solve(inst, "heavy-hitter")
    again = KvPlan.from_json(res.plan.to_json())
    assert kvcache.check(inst, again).objective == res.objective
    from optkit.io import FieldError

    with pytest.raises(FieldError, match=r"plan.steps\[0\]"):
        KvPlan.from_json({"kind": "kv_moves", "steps": [[[1], "x", True]]})


# --- serving ---------------------------------------------------------------------------


def serving_instance() -> ServingInstance:
    return read_instance(ROOT / "instances/serving/gsm8k20-llama2-7b-a100x2.json")


def schedule_of(inst: ServingInstance) -> Schedule:
    res = serving.solve(inst, "hybrid", SolverOptions(5))
    assert serving.check(inst, res.plan).valid
    return res.plan


def replace_iteration(s: Schedule, i: int, k: int, **changes) -> Schedule:
    clients = [list(c) for c in s.clients]
    clients[i][k] = dataclasses.replace(clients[i][k], **changes)
    return Schedule(tuple(tuple(c) for c in clients))


def test_serving_check_sees_a_changed_duration():
    inst = serving_instance()
    s = schedule_of(inst)
    it = s.clients[0][3]
    v = serving.check(inst, replace_iteration(s, 0, 3, duration=it.duration * 0.99))
    assert not v.valid and any("the model gives" in x for x in v.violations)


def test_serving_check_sees_overlap_and_early_start():
    inst = serving_instance()
    s = schedule_of(inst)
    prev = s.clients[0][4]
    v = serving.check(inst, replace_iteration(s, 0, 5, start=prev.start))
    assert not v.valid and any("before the previous ends" in x for x in v.violations)
    first = s.clients[0][0]
    j = first.prefill[0][0]
    late = dataclasses.replace(
        inst, arrival=inst.arrival + (first.start + 1.0) * (np.arange(inst.n) == j)
    )
    v = serving.check(late, s)
    assert not v.valid and any("before it arrives" in x for x in v.violations)


def test_serving_check_sees_a_moved_request_and_capacity():
    inst = serving_instance()
    s = schedule_of(inst)
    # move one prefill chunk of a request to the other client
    k = next(k for k, it in enumerate(s.clients[1]) if it.prefill)
    chunk = s.clients[1][k].prefill[0]
    moved = replace_iteration(s, 0, 0, prefill=(*s.clients[0][0].prefill, chunk))
    v = serving.check(inst, moved)
    assert not v.valid
    tight = dataclasses.replace(inst, max_batch=1)
    v = serving.check(tight, s)
    assert not v.valid and any("max_batch" in x for x in v.violations)


def test_serving_check_agrees_with_the_simulator_in_any_unit():
    it = IterationModel(tau_w=0.01, kappa=2e-5, gamma=1e-9, delta=5e-7)
    inst = ServingInstance(
        2, 4, 500, it, np.array([0.0, 0.001, 0.05]), np.array([30, 0, 7]), np.array([3, 2, 5])
    )
    for scale in (1.0, 1e-3, 3600.0):
        itx = IterationModel(**{k: v * scale for k, v in it.to_dict().items()})
        x = dataclasses.replace(inst, iteration=itx, arrival=inst.arrival * scale)
        res = serving.simulate(x, "sarathi", record=True, token_budget=16)
        v = serving.check(x, res.schedule)
        assert v.valid, v.violations
        assert v.objective == pytest.approx(res.makespan, rel=1e-12)
        assert np.array_equal(v.details["finish"], res.finish)
