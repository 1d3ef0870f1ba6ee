"""The exact serving MIP: hand-checked optima, and T^LB <= MIP optimum <= every scheduler."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optkit.result import Status
from optkit.serving import (
    SCHEDULERS,
    IterationModel,
    ServingInstance,
    check,
    lower_bound,
    simulate,
    solve,
)
from optkit.serving.mip import MIP_MAX_VARIABLES, TooLarge, model_size, solve_mip
from tests.clirun import run
from tests.serving.test_serving import UNIT, inst_of


def mip(inst):
    out = solve_mip(inst)
    assert out.status == "optimal"
    return out


@pytest.mark.parametrize(
    ("prompt", "output", "arrival", "B", "M", "optimum"),
    [
        # one request: a 2-token prefill (1 s; in two chunks it would take 2 s) + 2 decodes
        ([2], [3], None, 4, 100, 3.0),
        # two slots: prefill both together, decode both together
        ([1, 1], [2, 2], None, 2, 100, 2.0),
        # one slot: strictly one after the other
        ([1, 1], [2, 2], None, 1, 100, 4.0),
        # two slots but KV for one reservation (s + o = 3 each, M = 5): serial again
        ([1, 1], [2, 2], None, 2, 5, 4.0),
        # the second request arrives at 0.5 and is prefilled inside a decode iteration
        # (iterations cost tau_w = 1 whatever they carry): 3 s; prefill priority takes 4 s
        ([1, 1], [3, 1], [0.0, 0.5], 4, 100, 3.0),
    ],
)
def test_hand_checked_optima(prompt, output, arrival, B, M, optimum):
    inst = inst_of(prompt, output, arrival, B=B, M=M, it=UNIT)
    out = mip(inst)
    assert out.objective == pytest.approx(optimum)
    res = solve(inst, "mip")
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(optimum)


def test_mixed_iteration_beats_prefill_priority():
    inst = inst_of([1, 1], [3, 1], [0.0, 0.5], it=UNIT)
    assert simulate(inst, "fcfs").makespan == 4.0
    plans = mip(inst).plans
    assert plans is not None
    # prefill of 0; decode of 0; decode of 0 together with the prefill of 1 (or in that order)
    assert any(p.decode and p.prefill == [(1, 1)] for p in plans[0])


def test_chunked_prefill_is_modelled():
    # an iteration costs max(1, 0.25·N): up to 4 tokens ride free. A (1-token prompt,
    # 3 decodes) starts at 0; B (6-token prompt) arrives at 0.5. Chunks of 3 tokens of B
    # in two of A's decode iterations give 4 s (= A's chain bound); B in one piece costs
    # 1.75 s in a mixed iteration (4.75 s in all)
    it = IterationModel(tau_w=1.0, kappa=0.25, gamma=0.0, delta=0.0)
    inst = inst_of([1, 6], [4, 1], [0.0, 0.5], it=it)
    out = mip(inst)
    assert out.objective == pytest.approx(4.0)
    assert out.plans is not None
    chunks = [x for p in out.plans[0] for j, x in p.prefill if j == 1]
    assert len(chunks) >= 2 and sum(chunks) == 6
    assert simulate(inst, "fcfs").makespan > 4.5
    assert simulate(inst, "sarathi", token_budget=4).makespan == pytest.approx(4.0)


def test_highs_presolve_false_infeasibility_is_avoided():
    # HiGHS 1.16's presolve called this model infeasible with the cut T <= 0.048 (the
    # FCFS makespan, so a schedule exists); found by the property test below
    it = IterationModel(tau_w=0.01, kappa=0.004, gamma=1e-3, delta=1e-3, tau_c=1e-3)
    inst = ServingInstance(2, 1, 4, it, np.array([0.02, 0.02]), np.array([1, 2]), np.array([1, 2]))
    res = solve(inst, "mip")
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(0.048)


def test_highs_false_infeasibility_without_presolve_is_retried():
    # without presolve HiGHS 1.16 called this model infeasible with T^LB = 0.047 as the
    # floor and the cut T <= 0.063 (the plan's makespan); with presolve, and CBC, 0.063
    # is optimal (benchmarks/serving run.py mip, case 1)
    it = IterationModel(tau_w=0.01, kappa=0.004, gamma=1e-3, delta=1e-3, tau_c=1e-3)
    arrival = np.array([0.02, 0.005, 0.005])
    inst = ServingInstance(2, 2, 9, it, arrival, np.array([4, 1, 1]), np.array([2, 3, 2]))
    res = solve(inst, "mip")
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(0.063)


def test_size_limit_message():
    inst = inst_of([200] * 10, [50] * 10, clients=2, M=10_000)
    assert model_size(inst) > MIP_MAX_VARIABLES
    with pytest.raises(TooLarge, match=r"the MIP would have [\d,]+ variables, more than the limit"):
        solve(inst, "mip")


MODEL = IterationModel(tau_w=0.01, kappa=0.004, gamma=1e-3, delta=1e-3, tau_c=1e-3)
tiny = st.integers(1, 3).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
        st.lists(st.integers(1, 3), min_size=n, max_size=n),
        st.lists(st.sampled_from([0.0, 0.0, 0.005, 0.02]), min_size=n, max_size=n),
        st.integers(1, 2),
        st.integers(1, 3),
        st.integers(0, 4),
    )
)


@settings(max_examples=25)
@given(tiny)
def test_bound_le_mip_le_every_scheduler(case):
    prompt, output, arrival, clients, B, slack = case
    M = max(p + o for p, o in zip(prompt, output, strict=True)) + slack
    inst = ServingInstance(
        clients, B, M, MODEL, np.asarray(arrival), np.asarray(prompt), np.asarray(output)
    )
    res = solve(inst, "mip")
    assert res.status is Status.OPTIMAL  # tiny: solved to optimality
    opt = res.objective
    assert lower_bound(inst).value <= opt * (1 + 1e-9)
    runs = [simulate(inst, s, record=True) for s in SCHEDULERS]
    runs += [simulate(inst, "sarathi", record=True, token_budget=b) for b in (1, 2)]  # chunks
    for r in runs:
        assert check(inst, r.schedule).valid
        assert opt <= r.makespan * (1 + 1e-9) + 1e-12


def test_cli_solve_mip_and_export(tmp_path):
    inst = inst_of([1, 6], [4, 1], [0.0, 0.5], it=IterationModel(1.0, 0.25, 0.0, 0.0))
    f = tmp_path / "tiny.json"
    f.write_text(json.dumps(inst.to_dict()))
    r = run("solve", f, "--method", "mip", "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert (row["status"], row["objective"]) == ("OPTIMAL", 4.0)
    assert row["method"].startswith("mip")  # the MIP, or a schedule that meets T^LB
    r = run("solve", f, "--method", "mip", "--solver", "cpsat")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: {f}: --solver: solver 'cpsat' does not apply to serving; expected one of "
        "highs, cbc, scip"
    )
    r = run("export", f, "--format", "lp", "--out", tmp_path / "tiny.lp")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "tiny.lp").read_text()
    assert "Minimize" in text and "decodes_0_0" in text
    big = tmp_path / "big.json"
    big.write_text(json.dumps(inst_of([200] * 10, [50] * 10, clients=2).to_dict()))
    r = run("export", big, "--out", tmp_path / "big.lp")
    assert r.returncode == 2 and "the MIP would have" in r.stderr
    assert not (tmp_path / "big.lp").exists()
