"""KV placement: hand-checked cases, bound <= LP <= MILP <= policies, capacity, CLI."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optkit.costmodel import builtin_catalog
from optkit.io import FieldError, parse_instance, read_instance
from optkit.kvcache import (
    POLICY_METHODS,
    CsrTrace,
    Pattern,
    PatternTrace,
    TooLarge,
    bounds,
    check,
    lp_bound,
    make,
    make_instance,
    milp,
    replay,
    solve,
    unlimited_hbm,
)
from optkit.kvcache.driver import replay_plan
from optkit.kvcache.exact import MILP_MAX_VARIABLES, model_size
from optkit.kvcache.generate import kv_instance
from optkit.kvcache.instance import KvInstance, Tier
from optkit.kvcache.policies import anneal
from optkit.result import Status
from optkit.solvers import SolverOptions
from tests.clirun import SIMULATE_KEYS, run


def csr(layers, prompt, rows):
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    flat = np.array([x for r in rows for x in r], dtype=np.int32)
    return CsrTrace(layers, prompt, len(rows) // layers, indptr, flat)


def one_step():
    # 1 layer, 4 prompt tokens, HBM holds 2 units (tokens 2, 3), the step reads all 4.
    return make_instance(csr(1, 4, [[0, 1, 2, 3]]), hbm_bytes=2, hbm_bw=4, ext_bw=1, link=1)


def test_one_step_two_tiers_by_hand():
    inst = one_step()
    b = {x.kind: x.value for x in bounds(inst, "lp")}
    assert b["ceiling"] == pytest.approx(4 / 5)  # D / (B0 + Bext)
    assert b["capacity"] == pytest.approx(2.0)  # 2 units cannot be in HBM: 2 B over 1 B/s
    # HBM is full, so the new unit is written out: tier moves 2 reads + 1 write = 3 B at 1 B/s.
    assert b["lp"] == pytest.approx(3.0, rel=1e-6)
    rep = replay(inst, make("static"))
    assert rep.total_time == pytest.approx(3.0)
    assert rep.hit_rate == pytest.approx(0.5)
    res = solve(inst)
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(3.0)
    assert unlimited_hbm(inst) == pytest.approx(5 / 4)  # a reference, not a bound


def test_promotion_pays_off_by_hand():
    # Step 0 reads token 0 (in the external tier), steps 1-3 read it again.
    # HBM holds 1 unit (token 1 initially, never read). Promoting token 0 while reading it
    # costs only an HBM write; it then hits for three steps.
    inst = make_instance(
        csr(1, 2, [[0], [0], [0], [0]]), hbm_bytes=1, hbm_bw=10, ext_bw=1, link=1, unit_bytes=1
    )
    static = replay(inst, make("static")).total_time
    assert static == pytest.approx(4 * 2.0)  # read 1 B + write the new unit 1 B at 1 B/s
    reactive = replay(inst, make("reactive"))
    assert reactive.hits.tolist() == [0, 1, 1, 1]
    res = solve(inst)
    assert res.status is Status.OPTIMAL
    assert res.objective <= reactive.total_time + 1e-9


def small_instance(draw_seed, layers, prompt, decode, cap, kind, mode, weights):
    p = Pattern(kind, sparsity=0.5, sinks=1, window=2, drift=0.3, page=2, seed=draw_seed)
    tr = PatternTrace(p, layers, prompt, decode).materialize()
    return make_instance(
        tr,
        hbm_bytes=cap,
        hbm_bw=8.0,
        ext_bw=2.0,
        link=1.5,
        weight_bytes=weights,
        mode=mode,
    )


@settings(max_examples=12)
@given(
    seed=st.integers(0, 100),
    layers=st.integers(1, 2),
    prompt=st.integers(3, 10),
    decode=st.integers(1, 4),
    cap=st.integers(0, 12),
    kind=st.sampled_from(["heavy-hitter", "lambda", "page"]),
    mode=st.sampled_from(["exclusive", "inclusive"]),
    weights=st.sampled_from([0.0, 3.0]),
)
def test_bounds_lp_milp_policies_are_ordered(
    seed, layers, prompt, decode, cap, kind, mode, weights
):
    inst = small_instance(seed, layers, prompt, decode, cap, kind, mode, weights)
    b = {x.kind: x.value for x in bounds(inst, "lp")}
    assert b["ceiling"] <= b["capacity"] + 1e-9
    assert b["capacity"] <= b["lp"] * (1 + 1e-6) + 1e-9
    assert b["capacity"] <= b["reuse"] * (1 + 1e-12)
    out = milp(inst, SolverOptions(20))
    assert out.status == "optimal"
    v = check(inst, out.moves)
    opt = v.objective
    assert v.valid, v.violations
    assert b["lp"] <= opt * (1 + 1e-6) + 1e-9
    assert b["reuse"] <= opt * (1 + 1e-6) + 1e-9
    assert out.bound <= opt * (1 + 1e-6) + 1e-9
    for name in POLICY_METHODS:
        rep = replay(inst, make(name), record=True)
        v = check(inst, replay_plan(inst, rep))
        value = v.objective
        assert v.valid, (name, v.violations)  # capacity never exceeded, every move legal
        assert value == pytest.approx(rep.total_time, rel=1e-9, abs=1e-12), name
        assert opt <= value * (1 + 1e-6) + 1e-9, name


@settings(max_examples=8)
@given(
    seed=st.integers(0, 50), cap=st.integers(5, 60), kind=st.sampled_from(["heavy-hitter", "page"])
)
def test_replays_on_bigger_traces_respect_capacity(seed, cap, kind):
    inst = small_instance(seed, 3, 40, 8, cap, kind, "exclusive", 0.0)
    lb = max(x.value for x in bounds(inst, "cheap"))
    for name in POLICY_METHODS:
        rep = replay(inst, make(name), record=True)
        v = check(inst, replay_plan(inst, rep))
        assert v.valid, (name, v.violations)
        value = v.objective
        assert lb <= value * (1 + 1e-9)


def test_check_reports_illegal_plans():
    inst = one_step()
    v = check(inst, [(np.array([2]), np.array([], dtype=np.int64), False)]).violations
    assert v == ("step 0 promotes a unit already in HBM",)
    v = check(inst, [(np.array([], dtype=np.int64), np.array([], dtype=np.int64), True)]).violations
    assert v == ("step 0: HBM holds 3 units after the moves, capacity 2",)
    v = check(inst, []).violations
    assert v == ("plan has 0 steps, the trace 1",)


def test_milp_refuses_large_models_with_a_message():
    inst = small_instance(0, 4, 200, 30, 30, "heavy-hitter", "exclusive", 0.0)
    assert model_size(inst) > MILP_MAX_VARIABLES
    with pytest.raises(
        TooLarge, match=r"the MILP would have [\d,]+ variables, more than the limit"
    ):
        milp(inst)
    lp = lp_bound(inst, 60)
    assert lp.value is not None and lp.value > 0


def test_lru_order():
    # HBM holds 3 units: tokens 1, 2, 3 after prefill. Step 0 reads {0, 1}: token 0 is
    # promoted (with the new token 4), so the two never-read units 2, 3 go. Step 1 reads
    # {2, 1}: 2 is promoted with new token 5; the least recently used are 4 (written at
    # step 0) and 0 (last read at step 0, before 4 was queued).
    inst = make_instance(
        csr(1, 4, [[0, 1], [2, 1], [0, 1]]), hbm_bytes=3, hbm_bw=10, ext_bw=1, link=1
    )
    rep = replay(inst, make("reactive"), record=True)
    assert rep.hits.tolist() == [1, 1, 1]
    (p0, d0, n0), (p1, d1, n1) = rep.moves[0], rep.moves[1]
    assert (p0.tolist(), sorted(d0.tolist()), n0) == ([0], [2, 3], True)
    assert (p1.tolist(), sorted(d1.tolist()), n1) == ([2], [0, 4], True)
    assert check(inst, replay_plan(inst, rep)).valid


def test_anneal_is_never_worse_than_belady():
    inst = small_instance(1, 2, 30, 6, 20, "heavy-hitter", "exclusive", 0.0)
    belady = replay(inst, make("belady")).total_time
    pol, best = anneal(inst, iters=5)
    assert best <= belady + 1e-12
    assert replay(inst, pol).total_time == pytest.approx(best)


def test_oracle_needs_an_explicit_trace():
    tr = PatternTrace(Pattern(), 1, 50, 2)
    inst = make_instance(tr, 20, 8, 2, 1)
    with pytest.raises(ValueError, match="needs the whole trace"):
        replay(inst, make("belady"))


def test_json_round_trip_and_errors(tmp_path):
    inst = small_instance(2, 2, 6, 3, 5, "lambda", "inclusive", 1.0)
    d = json.loads(json.dumps(inst.to_dict()))
    back = parse_instance(d)
    assert back.mode == "inclusive" and back.weight_bytes == 1.0
    assert replay(back, make("reactive")).total_time == pytest.approx(
        replay(inst, make("reactive")).total_time
    )
    bad = dict(d, tiers=[d["tiers"][0]])
    with pytest.raises(FieldError, match="'tiers'"):
        parse_instance(bad)
    bad = dict(d, tiers=[d["tiers"][0], {"name": "x", "capacity": 1e9, "bandwidth": 1}])
    with pytest.raises(FieldError, match=r"tiers\[1\].link_in"):
        parse_instance(bad)
    bad = dict(d, unit_bytes=-1)
    with pytest.raises(FieldError, match="'unit_bytes': expected a finite number > 0"):
        parse_instance(bad)
    small = dict(d["tiers"][1], capacity=1.0)
    with pytest.raises(FieldError, match="external tiers that hold the KV of every token"):
        parse_instance(dict(d, tiers=[d["tiers"][0], small]))
    # a trace file is resolved next to the instance file
    from optkit.kvcache import write_npz

    write_npz(tmp_path / "reads.npz", inst.trace)
    (tmp_path / "i.json").write_text(json.dumps(dict(d, trace={"file": "reads.npz"})))
    again = read_instance(tmp_path / "i.json")
    assert np.array_equal(again.trace.materialize().indices, inst.trace.materialize().indices)


def test_more_hbm_never_hurts_belady_hits():
    rates = []
    for cap in (5, 15, 40):
        inst = small_instance(3, 2, 40, 6, cap, "heavy-hitter", "exclusive", 0.0)
        rates.append(replay(inst, make("belady")).hit_rate)
    assert rates == sorted(rates)


def generate_kv(*options):
    """``optkit generate kv`` for LLaMA-3.1-8B on GH200, 300 + 4 tokens."""
    return run(
        "generate", "kv", "--model", "llama-3.1-8b", "--hardware", "gh200",
        "--prompt", "300", "--decode", "4", *options,
    )  # fmt: skip


def test_generate_kv_times_calibrated_or_roofline(tmp_path):
    from optkit.costmodel.fit import default_calibration

    docs = {}
    for eff in ("calibrated", "roofline"):
        r = generate_kv("--hbm-gb", "16.1", "--efficiency", eff, "--out", tmp_path / f"{eff}.json")
        assert r.returncode == 0, r.stderr
        docs[eff] = json.loads((tmp_path / f"{eff}.json").read_text())
    cal, roof = docs["calibrated"], docs["roofline"]
    assert (
        cal["generated_by"]["times"] == "calibrated" and roof["generated_by"]["times"] == "roofline"
    )
    eta = default_calibration().eta_attn_decode
    assert 0 < eta < 1
    assert cal["tiers"][0]["bandwidth"] == pytest.approx(roof["tiers"][0]["bandwidth"] * eta)
    assert cal["tiers"][1:] == roof["tiers"][1:]  # host tiers: datasheet either way
    # the generated_by record survives a read; slower HBM never lowers the bound
    a, b = (parse_instance(docs[e]) for e in ("calibrated", "roofline"))
    assert a.meta == cal["generated_by"]
    lb = [max(x.value for x in bounds(i, "cheap")) for i in (a, b)]
    assert lb[1] <= lb[0] * (1 + 1e-12)
    r = generate_kv("--efficiency", "peak", "--out", tmp_path / "x.json")
    assert r.returncode == 2 and "--efficiency: expected calibrated or roofline" in r.stderr


def test_cli_generate_simulate_bound_solve(tmp_path):
    path = tmp_path / "kv.json"
    r = generate_kv("--hbm-gb", "16.1", "--out", path)
    assert r.returncode == 0, r.stderr
    assert "HBM holds" in r.stderr
    r = run("simulate", path, "--policy", "reactive", "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert set(row) >= SIMULATE_KEYS
    assert row["problem"] == "kv_placement" and row["ratio_to_bound"] >= 1 - 1e-9
    assert 0 <= row["metrics"]["hit_rate"] <= 1
    r = run("bound", path, "--json", "--method", "cheap")
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    assert b["bound_kind"] == "capacity" and b["bound"] <= row["objective"]
    r = run("solve", path, "--json", "--method", "reactive")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["status"] in ("FEASIBLE", "OPTIMAL") and s["verified"] is True
    assert s["objective"] == pytest.approx(row["objective"])
    png = tmp_path / "heat.png"
    r = run("simulate", path, "--policy", "page", "--plot", png)
    assert r.returncode == 0 and png.stat().st_size > 0


def test_cli_bad_input_exit_2(tmp_path):
    r = generate_kv("--hbm-gb", "10")
    assert r.returncode == 2 and "does not hold the" in r.stderr
    r = generate_kv("--sparsity", "2")
    assert r.returncode == 2 and "--sparsity: expected a number in [0, 1)" in r.stderr
    inst = small_instance(0, 1, 5, 2, 3, "lambda", "exclusive", 0.0)
    path = tmp_path / "i.json"
    path.write_text(json.dumps(inst.to_dict()))
    r = run("simulate", path, "--policy", "nope")
    assert r.returncode == 2 and "unknown policy 'nope'" in r.stderr
    r = run("solve", path, "--method", "lpt")
    assert (
        r.returncode == 2
        and "--method: method 'lpt' does not apply to kv_placement; expected one of auto, milp"
        in r.stderr
    )
    gen = tmp_path / "gen.json"
    gen.write_text(
        json.dumps(make_instance(PatternTrace(Pattern(), 1, 50, 2), 20, 8, 2, 1).to_dict())
    )
    r = run("solve", gen, "--method", "belady")
    assert r.returncode == 2 and "the oracle needs the whole trace in memory" in r.stderr
    d = inst.to_dict()
    d["trace"] = {"file": "missing.npz"}
    path.write_text(json.dumps(d))
    r = run("simulate", path)
    assert r.returncode == 2 and "field 'trace.file'" in r.stderr and str(path) in r.stderr


def test_inf_free_metrics():
    inst = one_step()
    from optkit.kvcache import metrics

    m = metrics(inst, replay(inst, make("reactive")))
    assert all(math.isfinite(v) for v in m.values())


def test_generate_kv_on_pcie_platforms(tmp_path):
    """Any GPU with a host tier the user names (DRAM, then NVMe) over its host link."""
    for hw in ("h100-sxm", "a100-80gb", "rtx-4090"):
        out = tmp_path / f"{hw}.json"
        r = run(
            "generate",
            "kv",
            "--model",
            "llama-3.1-8b",
            "--hardware",
            hw,
            "--prompt",
            "200",
            "--decode",
            "4",
            "--hbm-gb",
            "16.1",
            "--host-tier",
            "ddr5-4800-8ch",
            "--host-tier",
            "nvme-pcie4",
            "--out",
            out,
        )
        assert r.returncode == 0, r.stderr
        d = json.loads(out.read_text())
        assert [t["name"] for t in d["tiers"]] == ["hbm", "ddr5-4800-8ch", "nvme-pcie4"]
        link = {"h100-sxm": 64e9, "a100-80gb": 32e9, "rtx-4090": 32e9}[hw]
        # both host tiers sit behind the GPU's one host link: charged once per direction
        assert d["tiers"][1]["link_in"] == d["tiers"][2]["link_in"] == link
        assert d["tiers"][1]["link"] == d["tiers"][2]["link"]
        r = run("solve", out, "--json", "--time-limit", "10")
        assert r.returncode == 0 and json.loads(r.stdout)["verified"], r.stderr
    r = run(
        "generate",
        "kv",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "ascend-910b",
        "--prompt",
        "20",
        "--decode",
        "2",
    )
    assert r.returncode == 2 and "ddr5-4800-8ch" in r.stderr


@pytest.mark.parametrize(
    "hw",
    ["a100-40gb", "a100-80gb", "h100-sxm", "h200", "b200", "mi300x", "a40", "l40s", "rtx-4090"],
)
def test_every_pcie_gpu_has_a_host_platform(hw):
    """Every GPU of the catalog has host memory with a source, so `generate kv` works
    without --host-tier; its tier sits behind the GPU's host link."""
    cat = builtin_catalog()
    h = cat.hardware[hw]
    assert h.host_memory is not None and h.sources["host_memory"]
    inst = kv_instance(cat.models["llama-3.1-8b"], h, 64, 4, Pattern(seed=1), hbm_gb=16.5)
    ext = inst.tiers[1]
    assert ext.link == h.host_link.key and ext.link_in == h.host_link.bandwidth_gbs * 1e9
    assert inst.external_rate == min(ext.link_in, ext.bandwidth)


def three_tiers(trace, cap, shared, mode="exclusive", unit=1.0, rate=1.0):
    """HBM + two external tiers (the first holds half the units) behind one shared link
    or a link each; ``cap`` units of HBM, ``unit`` bytes per unit, bandwidths × ``rate``
    (real units: 16 KiB and rates of 1e11-1e12 B/s give step times of about 1e-8 s)."""
    n = trace.layers * (trace.prompt + trace.decode)
    first = n // 2
    link = "pcie" if shared else ""
    tiers = (
        Tier("hbm", cap * unit, 8.0 * rate),
        Tier("dram", first * unit, 4.0 * rate, 1.5 * rate, 1.5 * rate, link),
        Tier("ssd", (n - first) * unit, 0.5 * rate, 1.5 * rate, 1.5 * rate, link),
    )
    return KvInstance(tiers, unit, trace.layers, trace.prompt, trace.decode, trace, mode=mode)


#: (unit bytes, bandwidth scale): small integers, and GH200-like bytes and bytes/s
UNITS = [(1.0, 1.0), (16384.0, 6e11)]


@st.composite
def three_tier_cases(draw, shared=True):
    """A random two-layer heavy-hitter trace on :func:`three_tiers`, in either units."""
    p = Pattern(
        "heavy-hitter", sparsity=0.5, sinks=1, window=2, drift=0.3, seed=draw(st.integers(0, 100))
    )
    tr = PatternTrace(p, 2, draw(st.integers(3, 8)), draw(st.integers(1, 3))).materialize()
    unit, rate = draw(st.sampled_from(UNITS))
    cap, mode = draw(st.integers(0, 8)), draw(st.sampled_from(["exclusive", "inclusive"]))
    return [three_tiers(tr, cap, sh, mode, unit, rate) for sh in (False, True)]


def test_shared_link_charged_once_by_hand():
    # 1 layer, 2 prompt tokens, none in HBM; the step reads both, one from each tier;
    # the new unit is written out to the second tier (first-fit homes: token 0, then 1, 2).
    tr = csr(1, 2, [[0, 1]])
    # A link each: each link carries one read in 1 s (and b's the write out): 1 s.
    # One shared link: 2 reads in over it take 2 s. The tiers (10 B/s) never bind.
    for shared, expected in ((False, 1.0), (True, 2.0)):
        tiers = (
            Tier("hbm", 0, 10.0),
            Tier("a", 1, 10.0, 1.0, 1.0, "pcie" if shared else ""),
            Tier("b", 2, 10.0, 1.0, 1.0, "pcie" if shared else ""),
        )
        inst = KvInstance(tiers, 1.0, 1, 2, 1, tr)
        rep = replay(inst, make("static"), record=True)
        assert rep.total_time == pytest.approx(expected)
        assert check(inst, replay_plan(inst, rep)).objective == pytest.approx(rep.total_time)
        lp = {b.kind: b.value for b in bounds(inst, "lp")}["lp"]
        assert lp == pytest.approx(rep.total_time, rel=1e-6)


def test_shared_link_must_agree():
    tr = csr(1, 2, [[0, 1]])
    tiers = (
        Tier("hbm", 0, 10.0),
        Tier("a", 1, 10.0, 1.0, 1.0, "x"),
        Tier("b", 2, 10.0, 2.0, 2.0, "x"),
    )
    with pytest.raises(FieldError, match=r"tiers\[2\]\.link_in"):
        KvInstance(tiers, 1.0, 1, 2, 1, tr)


@settings(max_examples=10, deadline=None)
@given(case=three_tier_cases())
def test_three_tiers_replay_check_bounds(case):
    """Two external tiers: every policy's replay time is what check() recomputes, the
    LP bound is below every policy and the MILP optimum, and sharing the link never
    makes a plan faster."""
    own, shared = case
    got = {b.kind: b.value for b in bounds(shared, "lp")}
    lp, reuse = got["lp"], got["reuse"]
    for name in ("static", "reactive", "heavy-hitter", "belady"):
        rep = replay(shared, make(name), record=True)
        plan = replay_plan(shared, rep)
        v = check(shared, plan)
        assert v.valid and v.objective == pytest.approx(rep.total_time, rel=1e-9)
        assert max(lp, reuse) <= v.objective * (1 + 1e-6)
        assert check(own, plan).objective <= v.objective * (1 + 1e-9)
    if model_size(shared) <= 4000:
        out = milp(shared, SolverOptions(time_limit_s=20))
        if out.status == "optimal":
            assert max(lp, reuse) <= check(shared, out.moves).objective * (1 + 1e-6)


@settings(max_examples=8, deadline=None)
@given(case=three_tier_cases())
def test_mip_start_of_a_policy_plan_is_feasible(case):
    """start_columns turns a verified policy plan into a feasible point of the MILP whose
    objective is at most the plan's (the last step's moves are dropped), and the MILP
    started from it is never worse than the plan."""
    from optkit.kvcache.exact import build, start_columns

    inst = case[1]
    rep = replay(inst, make("reactive"), record=True)
    plan = replay_plan(inst, rep)
    model = build(inst, integer=True)
    v = start_columns(inst, model, plan)
    act = model.A @ v
    tol = 1e-9 * (1 + np.abs(act))
    assert np.all(act >= model.row_lo - tol) and np.all(act <= model.row_hi + tol)
    assert np.all(v >= model.col_lo) and np.all(v <= model.col_hi)
    assert (model.c @ v) * model.time_unit <= rep.total_time * (1 + 1e-9)
    out = milp(inst, SolverOptions(time_limit_s=10), start=plan)
    assert out.moves is not None
    got = check(inst, out.moves)
    assert got.valid and got.objective <= rep.total_time * (1 + 1e-6)


def test_three_tiers_scale_with_their_units():
    """Bytes × 16384 and bandwidths × 6e11 scale every time, bound and plan time by
    16384 / 6e11 and change nothing else (the shared link included)."""
    p = Pattern("heavy-hitter", sparsity=0.5, sinks=1, window=2, drift=0.3, seed=3)
    tr = PatternTrace(p, 2, 8, 3).materialize()
    (u0, r0), (u1, r1) = UNITS
    small, real = (three_tiers(tr, 4, True, "exclusive", u, r) for u, r in UNITS)
    k = (u1 / r1) / (u0 / r0)
    for name in ("reactive", "heavy-hitter", "belady"):
        a, b = replay(small, make(name)), replay(real, make(name))
        assert b.total_time == pytest.approx(k * a.total_time, rel=1e-9)
        assert b.hits.tolist() == a.hits.tolist()
    la = {x.kind: x.value for x in bounds(small, "lp")}
    lb = {x.kind: x.value for x in bounds(real, "lp")}
    for kind in ("ceiling", "capacity", "lp", "reuse"):
        assert lb[kind] == pytest.approx(k * la[kind], rel=1e-6)


def test_reuse_bound_by_hand():
    """2 layers, 1 prompt token, HBM holds 1 unit (so none after prefill); both layers
    read token 0 at both decode tokens. Steps 0, 1 must fetch over the link; the reads at
    steps 2 and 3 need HBM over steps 1-2 and 2-3: one unit of HBM, half an interval a
    step, so at most 1.5 of them hit and 2.5 reads cross. Out: each step writes a unit
    and HBM takes one, so 3 units leave over the 1 B/s link: 3 s, where the capacity
    bound (one step's read against all of HBM) sees 4/11 s. With the external tier at
    1 B/s as well, its reads and writes share it: 2.5 + 3 B, 5.5 s."""
    from optkit.kvcache.reuse import reuse_bound

    trace = csr(2, 1, [[0], [0], [0], [0]])
    for tier_bw, expected, optimum in ((100, 3.0, 4.0), (1, 5.5, 7.0)):
        inst = make_instance(trace, hbm_bytes=1, hbm_bw=10, ext_bw=tier_bw, link=1)
        b = {x.kind: x for x in bounds(inst, "reuse")}
        assert b["capacity"].value == pytest.approx(4 / 11)
        assert b["reuse"].value == pytest.approx(expected) and b["reuse"].reason == ""
        assert reuse_bound(inst).crossings == pytest.approx(2.5)
        res = solve(inst)
        assert res.status is Status.OPTIMAL and res.objective == pytest.approx(optimum)


def test_reuse_bound_streams_and_stops_at_its_limit():
    """The generated trace streamed gives the value of its materialised copy; a pass
    stopped at once is the capacity bound, and says so."""
    from optkit.kvcache.reuse import reuse_bound

    p = Pattern("heavy-hitter", sparsity=0.4, sinks=1, window=2, drift=0.2, seed=5)
    gen = make_instance(PatternTrace(p, 4, 64, 24), hbm_bytes=60, hbm_bw=8, ext_bw=2, link=1.5)
    mat = make_instance(gen.trace.materialize(), hbm_bytes=60, hbm_bw=8, ext_bw=2, link=1.5)
    full = reuse_bound(gen)
    assert full.complete and full.value == pytest.approx(reuse_bound(mat).value, rel=1e-12)
    cap = {x.kind: x.value for x in bounds(gen, "cheap")}["capacity"]
    assert full.value > 1.5 * cap  # HBM holds under half of one token's reads
    none = {x.kind: x for x in bounds(gen, "reuse", time_limit_s=0.0)}["reuse"]
    assert none.value == pytest.approx(cap) and "first 0 of 96 steps" in none.reason
    assert none.obtained
