"""Serving: instance, bound, schedulers, simulator accounting and limits, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optkit.costmodel import Setup, builtin_catalog, decode_step_time, prefill_time
from optkit.io import FieldError, parse_instance
from optkit.result import Status
from optkit.serving import (
    SCHEDULERS,
    IterationModel,
    ServingInstance,
    bounds,
    chains,
    check,
    lower_bound,
    packing_assignment,
    simulate,
    solve,
)
from optkit.serving.improve import local_search
from optkit.serving.policies import Hybrid
from optkit.solvers import Deadline
from tests.clirun import SIMULATE_KEYS, run

TRACE = Path(__file__).resolve().parents[1] / "data" / "traces" / "gsm8k_20.csv"
UNIT = IterationModel(tau_w=1.0, kappa=0.0, gamma=0.0, delta=0.0)


def inst_of(prompt, output, arrival=None, clients=1, B=4, M=10_000, it=UNIT):
    n = len(prompt)
    return ServingInstance(
        clients,
        B,
        M,
        it,
        np.zeros(n) if arrival is None else np.asarray(arrival, float),
        np.asarray(prompt),
        np.asarray(output),
    )


def test_one_request_by_hand_is_optimal():
    # prefill (1 s, yields token 1) + 2 decode iterations of 1 s = 3 s; chain bound = 3
    inst = inst_of([10], [3])
    for name in SCHEDULERS:
        r = simulate(inst, name, record=True)
        assert r.makespan == 3.0 and check(inst, r.schedule).valid
        assert r.first_token[0] == 1.0
    assert lower_bound(inst).value == 3.0
    res = solve(inst)
    assert res.status == Status.OPTIMAL and res.objective == 3.0


def test_occupancy_bound_by_hand():
    # UNIT: every iteration costs 1 s. KV for one reservation (s + o = 4 each, M = 5):
    # the three requests are serial, each holding its KV for o = 2 iterations -> 6 s.
    # The KV read on average (the old count, (o - 1)·s + 1 tokens each) gave 3 s only.
    inst = inst_of([2, 2, 2], [2, 2, 2], B=4, M=5)
    assert bounds(inst)[1].kind == "iterations" and bounds(inst)[1].value == 6.0
    assert lower_bound(inst).value == 6.0 == simulate(inst, "fcfs").makespan
    # the longest request: 5 iterations on one client even with room for everything
    assert lower_bound(inst_of([1, 1], [5, 1], B=4)).value == 5.0


def test_iterations_bound_counts_late_arrivals():
    # two 1-iteration requests arrive at 10 on one client: T >= 10 + 1 (one iteration
    # for both, B = 2); with B = 1 they need two iterations after 10
    assert lower_bound(inst_of([1, 1, 1], [1, 1, 1], [0.0, 10.0, 10.0], B=2)).value == 11.0
    assert lower_bound(inst_of([1, 1, 1], [1, 1, 1], [0.0, 10.0, 10.0], B=1)).value == 12.0


def test_two_requests_batch_together():
    # B = 2: one prefill iteration for both (fcfs), then 4 shared decode iterations
    inst = inst_of([5, 5], [5, 3], B=2)
    r = simulate(inst, "fcfs", record=True)
    assert r.makespan == 5.0
    assert list(r.finish) == [5.0, 3.0]
    # B = 1: the second waits for the first
    r1 = simulate(inst_of([5, 5], [5, 3], B=1), "fcfs", record=True)
    assert r1.makespan == 5.0 + 3.0


small = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1, 40), min_size=n, max_size=n),
        st.lists(st.integers(1, 12), min_size=n, max_size=n),
        st.lists(st.sampled_from([0.0, 0.0, 0.5, 2.0]), min_size=n, max_size=n),
        st.integers(1, 3),
        st.integers(1, 4),
    )
)
MODEL = IterationModel(tau_w=0.01, kappa=1e-4, gamma=1e-7, delta=1e-5, tau_c=1e-3)


@given(small)
def test_bound_below_every_scheduler_and_limits_hold(case):
    prompt, output, arrival, clients, B = case
    M = max(p + o for p, o in zip(prompt, output, strict=True)) + 7
    inst = inst_of(prompt, output, arrival, clients, B, M, MODEL)
    lb = lower_bound(inst).value
    plan, _ = packing_assignment(inst, 1.0)
    runs = [simulate(inst, s, record=True) for s in SCHEDULERS]
    runs.append(simulate(inst, "hybrid", plan, record=True, order="output-desc"))
    runs.append(simulate(inst, "hybrid", record=True, mix=False))  # the published test
    runs.append(simulate(inst, "sarathi", record=True, token_budget=8))
    better, _ = local_search(inst, plan, lambda i: Hybrid(), Deadline(None))
    runs.append(simulate(inst, "hybrid", better, record=True))
    assert runs[-1].makespan <= simulate(inst, "hybrid", plan).makespan
    for r in runs:
        verdict = check(inst, r.schedule)
        assert verdict.valid, verdict.violations  # slots, KV, every token once, durations
        assert verdict.objective == pytest.approx(r.makespan, rel=1e-12)
        assert np.array_equal(verdict.details["finish"], r.finish)
        assert lb <= r.makespan * (1 + 1e-9)
        assert np.all(r.first_token >= inst.arrival)


def test_bound_holds_when_iterations_mix_prompts_and_decodes():
    # chunked prefill puts prompt tokens and decodes in one iteration; an earlier T^LB
    # charged tau_w per decode iteration and kappa per prompt token in full, giving 6.567 > 6.4
    it = IterationModel(tau_w=1.0, kappa=0.1, gamma=0.0, delta=0.0)
    inst = inst_of([1, 10, 11, 3, 8, 6], [3, 1, 3, 2, 3, 2], B=3, M=1000, it=it)
    r = simulate(inst, "sarathi", record=True, token_budget=12)
    assert check(inst, r.schedule).valid
    assert r.makespan == pytest.approx(6.4)
    assert lower_bound(inst).value <= r.makespan


def test_check_catches_violations():
    inst = inst_of([5, 5, 5], [4, 4, 4], B=2)
    r = simulate(inst, "fcfs", record=True)
    assert check(inst, r.schedule).valid
    tighter = inst_of([5, 5, 5], [4, 4, 4], B=1)
    assert any("max_batch" in v for v in check(tighter, r.schedule).violations)


def test_iteration_model_tracks_the_roofline():
    cat = builtin_catalog()
    m, h = cat.get_model("llama-2-13b"), cat.get_hardware("a100-80gb")
    st_ = Setup(tp=2)
    it = IterationModel.from_costmodel(m, h, st_)
    for b, c in [(1, 100), (16, 1000), (64, 2000)]:
        roof = float(decode_step_time(m, h, b, c, st_))
        mine = it.time(b, 0, b * (c + 1))
        assert mine == pytest.approx(roof, rel=0.15)
    roof = float(prefill_time(m, h, 1, 2048, 0, st_))
    assert it.prefill(2048) == pytest.approx(roof, rel=0.15)


@pytest.mark.parametrize("tp", [1, 4])
def test_calibrated_iterations_sit_above_the_roofline_and_fit_the_passes(tp):
    from optkit.costmodel.predict import forward_time
    from optkit.serving.generate import serving_instance

    cat = builtin_catalog()
    m, h = cat.get_model("llama-2-13b"), cat.get_hardware("a100-80gb")
    st_ = Setup(tp=tp)
    roof = IterationModel.from_costmodel(m, h, st_)
    cal, err = IterationModel.from_calibrated(m, h, st_)
    assert err < 0.05
    for k, v in roof.to_dict().items():
        assert cal.to_dict()[k] >= v
    # the fitted form follows calibrated passes it was not fitted on
    for b, c in [(3, 300), (24, 1500), (100, 700)]:
        t, _ = forward_time(m, h, b, 1, c, st_)
        assert cal.time(b, 0, b * c) == pytest.approx(float(t), rel=0.1)
    t, _ = forward_time(m, h, 1, 1000, 0, st_)
    assert cal.prefill(1000) == pytest.approx(float(t), rel=0.1)
    # the instance keeps the roofline beside the calibrated times; its T^LB is the smaller
    from optkit.costmodel.traces import read_trace

    tr = read_trace(TRACE)
    a = serving_instance(tr, m, h, 2, st_, arrivals=False)
    b = serving_instance(tr, m, h, 2, st_, arrivals=False, efficiency="roofline")
    assert a.meta["times"] == "calibrated" and b.meta["times"] == "roofline"
    assert a.meta["iteration_roofline"] == roof.to_dict() == b.iteration.to_dict()
    assert lower_bound(b).value <= lower_bound(a).value
    with pytest.raises(ValueError, match="efficiency: expected calibrated or roofline"):
        serving_instance(tr, m, h, 2, st_, efficiency="peak")


def test_instance_round_trip_and_errors(tmp_path):
    inst = inst_of([5, 7], [2, 3], [0.0, 1.5], clients=2)
    d = json.loads(json.dumps(inst.to_dict()))
    back = parse_instance(d)
    assert back.n == 2 and back.iteration == inst.iteration and list(back.arrival) == [0.0, 1.5]
    with pytest.raises(FieldError, match="output\\[1\\]"):
        parse_instance({**d, "output": [2, 0]})
    with pytest.raises(FieldError, match=r"iteration\.kappa"):
        parse_instance({**d, "iteration": {"tau_w": 1, "kappa": -1, "gamma": 0, "delta": 0}})
    with pytest.raises(FieldError, match="prompt\\[0\\]"):
        parse_instance({**d, "kv_tokens": 6})


def test_cli_generate_simulate_solve(tmp_path):
    f = tmp_path / "s.json"
    r = run(
        "generate",
        "serving",
        "--trace",
        TRACE,
        "--model",
        "llama-2-7b",
        "--hardware",
        "a100-80gb",
        "--clients",
        "2",
        "--out",
        f,
    )
    assert r.returncode == 0, r.stderr
    r = run("simulate", f, "--scheduler", "sarathi", "--json", "--plot", tmp_path / "g.png")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert set(row) >= SIMULATE_KEYS
    for k in (
        "utilization_busy",
        "utilization_slots",
        "ttft_p50_s",
        "tpot_p50_s",
        "throughput_tok_s",
    ):
        assert k in row["metrics"]
    assert row["ratio_to_bound"] >= 1 and (tmp_path / "g.png").stat().st_size > 0
    r = run("solve", f, "--json", "--time-limit", "4", "--out", tmp_path / "res")
    res = json.loads(r.stdout)
    assert r.returncode == 0 and res["verified"]
    # auto is at least as good as the simulated sarathi, and its bound at least T^LB
    assert res["objective"] <= row["objective"] * (1 + 1e-12)
    assert res["bound"] >= row["bound"] * (1 - 1e-12)
    bad = run("simulate", f, "--scheduler", "lifo")
    assert (
        bad.returncode == 2
        and "policy 'lifo' does not apply to serving; expected one of fcfs" in bad.stderr
    )
    big = run(
        "generate",
        "serving",
        "--trace",
        TRACE,
        "--model",
        "llama-65b",
        "--hardware",
        "rtx-4090",
        "--clients",
        "1",
        "--out",
        tmp_path / "x.json",
    )
    assert big.returncode == 2 and "does not fit" in big.stderr
    for extra, msg in [
        (("--efficiency", "peak"), "--efficiency: expected calibrated or roofline, got 'peak'"),
        (("--memory-eff", "0.7"), "--compute-eff/--memory-eff apply to --efficiency roofline"),
    ]:
        r = run(
            "generate", "serving", "--trace", TRACE, "--model", "llama-2-7b",
            "--hardware", "a100-80gb", "--clients", "1", *extra, "--out", tmp_path / "y.json",
        )  # fmt: skip
        assert r.returncode == 2 and msg in r.stderr and not (tmp_path / "y.json").exists()


def _memory_bound_instance(seed=7, n=120):
    # KV for ~6 reservations per client: decode batches stay below the compute knee
    # (tau_w / kappa = 100 tokens), so held-back prompt tokens ride free
    rng = np.random.default_rng(seed)
    it = IterationModel(tau_w=0.01, kappa=1e-4, gamma=1e-9, delta=1e-7, tau_c=5e-3)
    prompt, output = rng.integers(100, 1500, n), rng.integers(5, 300, n)
    return inst_of(prompt, output, clients=2, B=64, M=6000, it=it)


def test_hybrid_feeds_held_prompts_to_decode_iterations():
    inst = _memory_bound_instance()

    class NoHold(Hybrid):
        def _slack(self, state, j):
            return 0

    # prompts whole, but the last one held for the decode-only iterations (chunk=False:
    # feeding every prompt at the knee is the next test)
    mixed = simulate(inst, "hybrid", record=True, chunk=False)
    plain = simulate(inst, lambda i: NoHold(chunk=False), record=True)
    stalled = simulate(inst, "hybrid", record=True, mix=False)
    assert check(inst, mixed.schedule).valid
    # every iteration of the mixed hybrid decodes its running batch: nothing stalls
    runs_decode = [it.decode for c in mixed.schedule.clients for it in c]
    assert sum(runs_decode) >= 0.95 * len(runs_decode)
    # prompts fed in chunks to the decode-only iterations, and that pays here
    chunks = [j for c in mixed.schedule.clients for it in c for j, _ in it.prefill]
    assert len(chunks) > inst.n
    assert mixed.makespan < plain.makespan < stalled.makespan
    assert mixed.makespan < simulate(inst, "fcfs").makespan


def test_local_search_rebalances_a_bad_assignment():
    inst = _memory_bound_instance(n=40)
    bad = np.zeros(inst.n, dtype=np.int64)  # everything on client 0
    bad[:2] = 1
    before = simulate(inst, "hybrid", bad).makespan
    better, moves = local_search(inst, bad, lambda i: Hybrid(), Deadline(None))
    after = simulate(inst, "hybrid", better, record=True)
    assert moves > 0 and after.makespan < 0.75 * before
    assert check(inst, after.schedule).valid
    assert lower_bound(inst).value <= after.makespan
    res = solve(inst, "plan")
    assert res.objective <= simulate(inst, "hybrid", packing_assignment(inst, 1.0)[0]).makespan


def test_where_the_time_goes_by_hand():
    from optkit.serving.report import breakdown, occupancy

    # FCFS: prefill A [0, 1]; B arrived at 0.5, its prefill stalls A [1, 2]; A decodes
    # [2, 3], [3, 4]. Slots: A holds [0, 4], B [1, 2] -> 5 slot-seconds of 4 x 4
    inst = inst_of([1, 1], [3, 1], [0.0, 0.5], M=8)
    r = simulate(inst, "fcfs", record=True)
    b = breakdown(inst, r.schedule)
    assert b["iterations_prefill_only"] == 2 and b["iterations_stalled"] == 1
    assert b["iterations_decode_only"] == 2 and b["iterations_mixed"] == 0
    assert b["stall_s"] == 1.0 and b["stalled_sequence_s"] == 1.0
    assert b["busy_s"] == 4.0 and b["idle_s"] == 0.0
    assert b["slot_occupancy"] == pytest.approx(5 / 16)
    assert b["kv_occupancy"] == pytest.approx((4 * 4 + 2 * 1) / (4 * 8))
    assert b["below_knee_s"] == 4.0  # kappa = 0: every iteration sits at the floor
    (oc,) = occupancy(inst, r.schedule)
    assert list(oc.slots) == [1, 2, 1, 1] and list(oc.kv) == [4, 6, 4, 4]
    # the mixed hybrid prefills B inside A's decode: nothing stalls, 3 s
    h = simulate(inst, "hybrid", record=True)
    bh = breakdown(inst, h.schedule)
    assert h.makespan == 3.0 and bh["iterations_stalled"] == 0 and bh["iterations_mixed"] == 1


def test_split_bound_combines_the_longest_chain_with_its_clients_load():
    from optkit.serving.bounds import iterations_bound, split_bound

    # LLaMA-65B on 4 x A100 (roofline): one 400-token answer among 500 short ones on 2
    # clients. The longest request's client runs >= 400 iterations at the floor and
    # pays the KV reads of whatever it is given; neither the average nor the chain
    # alone sees that
    it = IterationModel(tau_w=0.016, kappa=1.04e-4, gamma=2.1e-9, delta=3.2e-7, tau_c=1.76e-3)
    rng = np.random.default_rng(3)
    prompt = np.r_[70, rng.integers(40, 120, 500)]
    output = np.r_[400, rng.integers(50, 150, 500)]
    inst = inst_of(prompt, output, clients=2, B=256, M=60_000, it=it)
    split = split_bound(inst)
    assert split > 1.05 * max(iterations_bound(inst), float(np.max(chains(inst))))
    assert lower_bound(inst).value == split
    best = solve(inst, "auto")
    assert split <= best.objective
    for s in SCHEDULERS:
        assert split <= simulate(inst, s).makespan
    # scaling time scales the bound (the LP is solved in its own units)
    slow = inst_of(
        prompt,
        output,
        clients=2,
        B=256,
        M=60_000,
        it=IterationModel(
            *(3600.0 * x for x in (it.tau_w, it.kappa, it.gamma, it.delta, it.tau_c))
        ),
    )
    assert split_bound(slow) == pytest.approx(3600.0 * split, rel=1e-6)


def test_hybrid_chunks_prompts_to_the_knee_when_compute_never_binds():
    # ShareGPT-like on LLaMA-65B 2 x TP4 (roofline): ~25 reservations fit, decode
    # batches sit far below the knee (tau_w / kappa ~ 154 tokens) and the weight-read
    # floors of the iterations the occupancy forces exceed all the compute: a whole
    # 2,000-token prompt in one iteration costs ~0.2 s beyond the floor, fed at the
    # knee it rides free
    rng = np.random.default_rng(11)
    it = IterationModel(tau_w=0.016, kappa=1.04e-4, gamma=2.1e-9, delta=3.2e-7, tau_c=1.76e-3)
    inst = inst_of(
        rng.integers(1500, 3000, 150),
        rng.integers(100, 800, 150),
        clients=2,
        B=256,
        M=60_000,
        it=it,
    )
    fed = simulate(inst, "hybrid", record=True)
    whole = simulate(inst, "hybrid", chunk=False, record=True)
    assert check(inst, fed.schedule).valid
    assert fed.makespan < 0.96 * whole.makespan
    from optkit.serving.report import breakdown

    assert (
        breakdown(inst, fed.schedule)["below_knee_s"]
        < breakdown(inst, whole.schedule)["below_knee_s"]
    )
    assert lower_bound(inst).value <= fed.makespan
