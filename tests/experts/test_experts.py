"""Expert caching: Belady's MIN is the fewest loads, the bounds hold below every plan,
the checker catches broken plans, bad input exits 2 naming the field."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optkit import experts
from optkit.experts import ExpertInstance, ExpertPlan, bounds, check, make, replay
from optkit.experts.trace import read_routing
from optkit.io import FieldError
from optkit.result import Status
from tests.clirun import run
from tests.conftest import SHARED, needs_shared

ROUTING = SHARED / "mixtral_moe_routing" / "gsm8k_p0_p1_routing.jsonl"


@st.composite
def instances(draw):
    L, E, k = draw(st.integers(1, 4)), draw(st.integers(2, 6)), draw(st.integers(1, 2))
    k = min(k, E)
    N = draw(st.integers(1, 25))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    routing = np.stack([[rng.choice(E, k, replace=False) for _ in range(L)] for _ in range(N)])
    C = draw(st.integers(k, L * E))
    return ExpertInstance(
        L,
        E,
        k,
        expert_bytes=draw(st.sampled_from([1.0, 3.5e8])),
        capacity=C,
        bandwidth=draw(st.sampled_from([1.0, 2.5e10])),
        latency=draw(st.sampled_from([0.0, 1e-5])),
        compute=np.full(L, draw(st.sampled_from([0.0, 0.5, 1e-3]))),
        routing=routing,
    )


@settings(max_examples=60)
@given(inst=instances())
def test_belady_fewest_loads_and_bounds_below_every_plan(inst):
    reps = {p: replay(inst, make(p)) for p in experts.POLICIES}
    for name, r in reps.items():
        assert r.verdict.valid, (name, r.verdict.violations)
    fewest = reps["belady"].plan.loads
    assert all(fewest <= r.plan.loads for r in reps.values())
    ceiling = reps["belady"].verdict.details["reuse_rate"]
    lb = max(b.value for b in bounds(inst, "cheap"))
    for r in reps.values():
        assert lb <= r.verdict.objective * (1 + 1e-9)
        assert r.verdict.details["reuse_rate"] <= ceiling + 1e-12


def brute_min_loads(inst: ExpertInstance) -> int:
    """Exhaustive demand paging (tiny): the fewest loads over every eviction choice."""

    need = [tuple(int(u) for u in r) for r in inst.needed()]

    @functools.cache
    def best(n: int, held: frozenset) -> int:
        if n == len(need):
            return 0
        miss = [u for u in need[n] if u not in held]
        over = len(held) + len(miss) - inst.capacity
        if over <= 0:
            return len(miss) + best(n + 1, held | frozenset(miss))
        from itertools import combinations

        cand = [u for u in held if u not in need[n]]
        return len(miss) + min(
            best(n + 1, (held - frozenset(out)) | frozenset(miss))
            for out in combinations(sorted(cand), over)
        )

    return best(0, frozenset())


@settings(max_examples=25)
@given(inst=instances())
def test_belady_matches_exhaustive_search(inst):
    if inst.steps > 24 or inst.units > 10:
        return
    assert experts.min_loads(inst) == brute_min_loads(inst)


def tiny() -> ExpertInstance:
    routing = np.array([[[0, 1]], [[2, 3]], [[0, 1]]])
    return ExpertInstance(1, 4, 2, 1.0, 2, 1.0, 0.0, np.array([1.0]), routing)


def test_hand_case():
    # two slots, three tokens: every step loads both experts; tau = 1, compute 1:
    # loads 0..2 for step 0, compute 2..3; step 1 loads 3..5, compute 5..6; step 2: 8..9
    r = replay(tiny(), make("lru"))
    assert r.plan.loads == 6 and r.verdict.objective == pytest.approx(9.0)
    assert max(b.value for b in bounds(tiny(), "cheap")) == pytest.approx(7.0)  # 6 loads + 1
    # no slot is ever free to load ahead: the LP relaxation proves LRU's 9 optimal
    assert max(b.value for b in bounds(tiny())) == pytest.approx(9.0)


def test_check_catches_broken_plans():
    inst = tiny()
    good = replay(inst, make("lru")).plan
    steps = list(good.steps)
    assert check(inst, good).valid
    no_load = ExpertPlan.of([(np.zeros(0, np.int64), d) for _, d in steps])
    assert not check(inst, no_load).valid
    full = ExpertPlan.of([(a, np.zeros(0, np.int64)) for a, _ in steps])
    assert any("capacity" in v or "already" in v for v in check(inst, full).violations)
    evict_used = [(steps[0][0], np.zeros(0, np.int64)), (steps[1][0], np.array([0, 1])), steps[2]]
    evict_used[1] = (np.array([2, 3]), np.array([0, 1]))
    evict_used[2] = (np.array([0, 1]), np.array([2, 3]))
    assert check(inst, ExpertPlan.of(evict_used)).valid
    bad = list(evict_used)
    bad[2] = (np.array([0, 1]), np.array([0, 3]))  # evicts a unit it uses
    assert not check(inst, ExpertPlan.of(bad)).valid
    again = ExpertPlan.from_json(json.loads(json.dumps(good.to_json())))
    assert check(inst, again).objective == check(inst, good).objective


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"routing": [[[0, 9]]]}, "routing[0][0]"),
        ({"top_k": 5}, "top_k"),
        ({"capacity": 1}, "capacity"),
        ({"compute": [-1.0]}, "compute"),
    ],
)
def test_bad_input_names_the_field(change, field, tmp_path):
    d = {**tiny().to_dict(), **change}
    f = tmp_path / "e.json"
    f.write_text(json.dumps(d))
    r = run("solve", f)
    assert r.returncode == 2 and field in r.stderr and str(f) in r.stderr, r.stderr


@pytest.mark.skipif(not ROUTING.exists(), reason="shared routing sample not present")
def test_real_routing_and_cli(tmp_path):
    out = tmp_path / "e.json"
    r = run(
        "generate",
        "experts",
        "--routing",
        ROUTING,
        "--problem-id",
        "1",
        "--model",
        "mixtral-8x7b",
        "--hardware",
        "gh200",
        "--cache-share",
        "0.5",
        "--out",
        out,
    )
    assert r.returncode == 0, r.stderr
    r = run("solve", out, "--json", "--time-limit", "20")
    row = json.loads(r.stdout)
    assert row["status"] in ("OPTIMAL", "FEASIBLE") and row["verified"]
    inst = experts.ExpertInstance.from_dict(json.loads(out.read_text()))
    assert inst.tokens == 78 and inst.layers == 32
    assert row["bound"] <= row["objective"]
    r = run("simulate", out, "--policy", "lru", "--json")
    m = json.loads(r.stdout)["metrics"]
    assert 0 <= m["reuse_rate"] <= m["reuse_rate_ceiling"] <= 1


def test_milp_prefetches_to_the_proven_optimum():
    # one layer, 2 slots, c = 2, tau = 1, experts 0, 1, 2 in turn: demand loads end at 9;
    # prefetching 1 with 0 and then 2 during step 1 hides every load but the first: 7,
    # the compute bound (3 x 2 + 1)
    inst = ExpertInstance(
        1, 4, 1, 1.0, 2, 1.0, 0.0, np.array([2.0]), np.array([[[0]], [[1]], [[2]]])
    )
    assert replay(inst, make("lru")).verdict.objective == pytest.approx(9.0)
    res = experts.EXPERT_CACHE.solve(inst, "milp")
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(7.0)
    assert check(inst, res.plan).objective == pytest.approx(7.0)


@settings(max_examples=15, deadline=None)
@given(inst=instances())
def test_milp_optimum_between_the_bounds_and_every_policy(inst):
    from optkit.experts.milp import MAX_VARIABLES, lp_bound, milp, size
    from optkit.solvers import SolverOptions

    if inst.steps > 10 or size(inst) > MAX_VARIABLES:
        return
    times = [replay(inst, make(p)).verdict.objective for p in experts.POLICIES]
    m_star = experts.min_loads(inst)
    out = milp(inst, min(times), m_star, SolverOptions(time_limit_s=20))
    assert out.status == "optimal"
    v = check(inst, out.plan)
    assert v.valid and v.objective <= out.objective * (1 + 1e-6)  # every T > 0: τ > 0
    assert v.objective <= min(times) * (1 + 1e-9)
    cheap = max(b.value for b in bounds(inst, "cheap"))
    lp = lp_bound(inst, min(times), m_star)
    rel = 1e-6 * max(abs(v.objective), inst.load_time)
    assert cheap <= v.objective + rel and lp is not None and lp <= v.objective + rel
    assert out.bound <= v.objective + rel


@pytest.mark.parametrize("scale", [1e-6, 1e3])
def test_milp_scales_with_the_time_unit(scale):
    rng = np.random.default_rng(5)
    routing = np.stack([[rng.choice(4, 2, replace=False) for _ in range(2)] for _ in range(4)])
    base = ExpertInstance(2, 4, 2, 3.5e8, 4, 2.5e10, 1e-5, np.full(2, 2e-3), routing)
    scaled = ExpertInstance(
        2, 4, 2, 3.5e8, 4, 2.5e10 / scale, 1e-5 * scale, np.full(2, 2e-3 * scale), routing
    )
    a, b = (experts.EXPERT_CACHE.solve(i, "milp") for i in (base, scaled))
    assert a.status is Status.OPTIMAL and b.status is Status.OPTIMAL
    assert b.objective == pytest.approx(a.objective * scale, rel=1e-6)


def test_milp_refuses_a_large_instance_with_a_reason(tmp_path):
    rng = np.random.default_rng(0)
    routing = np.stack([[rng.choice(8, 2, replace=False) for _ in range(8)] for _ in range(40)])
    inst = ExpertInstance(8, 8, 2, 1.0, 16, 1.0, 0.0, np.full(8, 0.1), routing, name="big")
    f = tmp_path / "big.json"
    f.write_text(json.dumps(inst.to_dict()))
    r = run("solve", f, "--method", "milp")
    assert r.returncode == 2 and "expert-cache MILP would have" in r.stderr
    r = run("solve", f, "--json", "--time-limit", "2")  # auto: the policies, no MILP
    assert r.returncode == 0 and json.loads(r.stdout)["verified"]


@settings(max_examples=25, deadline=None)
@given(inst=instances(), batch=st.integers(2, 6))
def test_prefill_steps_need_the_union_of_the_batch(inst, batch):
    import dataclasses

    from optkit.experts.milp import MAX_VARIABLES, milp, size

    most = max(
        len(np.unique(inst.routing[i : i + batch, layer]))
        for i in range(0, inst.tokens, batch)
        for layer in range(inst.layers)
    )
    if most > inst.capacity:  # a batch needs more experts than the GPU holds
        with pytest.raises(FieldError, match="capacity"):
            dataclasses.replace(inst, batch=batch)
        return
    pre = dataclasses.replace(inst, batch=batch)
    need = pre.needed()
    assert len(need) == pre.steps == -(-inst.tokens // batch) * inst.layers
    for n, r in enumerate(need):
        i, layer = divmod(n, inst.layers)
        want = np.unique(inst.routing[i * batch : (i + 1) * batch, layer]) + layer * inst.experts
        assert r.tolist() == want.tolist()
    assert pre.uses == sum(len(r) for r in need)
    reps = {p: replay(pre, make(p)) for p in experts.POLICIES}
    lb = max(b.value for b in bounds(pre, "cheap"))
    for name, r in reps.items():
        assert r.verdict.valid, (name, r.verdict.violations)
        assert lb <= r.verdict.objective * (1 + 1e-9)
        assert reps["belady"].plan.loads <= r.plan.loads
    if pre.steps <= 8 and size(pre) <= MAX_VARIABLES:
        best = min(r.verdict.objective for r in reps.values())
        out = milp(pre, best, experts.min_loads(pre))
        assert out.status == "optimal" and check(pre, out.plan).objective <= best * (1 + 1e-9)
    back = ExpertInstance.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert back.batch == batch and back.steps == pre.steps


def test_solve_reports_the_best_plan():
    res = experts.EXPERT_CACHE.solve(tiny())
    assert res.status in (Status.OPTIMAL, Status.FEASIBLE) and res.verified
    with pytest.raises(FieldError):
        ExpertPlan.from_json({"kind": "expert_moves", "steps": [["x"]]})


# --- the fitted trace generator ------------------------------------------------------------


@needs_shared
def test_synthetic_trace_reproduces_what_a_cache_feels():
    from optkit.experts.synth import fit, generate, statistics

    real = read_routing(ROUTING, "gsm8k", 0)
    model = fit(real, 8)
    a = generate(model, 400, seed=7)
    assert np.array_equal(a, generate(model, 400, seed=7))  # the seed decides it
    assert a.shape == (400, 32, 2) and a.min() >= 0 and a.max() < 8
    assert np.all(a[:, :, 0] != a[:, :, 1])  # k distinct experts per token and layer
    s_real, s_syn = statistics(real, 8), statistics(a, 8)
    assert abs(s_syn["reuse"] - s_real["reuse"]) < 0.03
    assert abs(s_syn["top_quarter_share"] - s_real["top_quarter_share"]) < 0.05

    def reuse(r, policy):
        inst = ExpertInstance(32, 8, 2, 1.0, 64, 1.0, 0.0, np.zeros(32), r)
        return replay(inst, make(policy)).verdict.details["reuse_rate"]

    for policy in ("lru", "belady"):
        assert abs(reuse(a, policy) - reuse(real, policy)) < 0.04, policy


@needs_shared
def test_generate_experts_synthetic(tmp_path):
    out = tmp_path / "syn.json"
    r = run(
        "generate",
        "experts",
        "--routing",
        ROUTING,
        "--model",
        "mixtral-8x7b",
        "--hardware",
        "rtx-4090",
        "--synthetic",
        "50",
        "--seed",
        "2",
        "--out",
        out,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert len(doc["routing"]) == 50 and doc["generated_by"]["synthetic_tokens"] == 50
    r = run(
        "generate",
        "experts",
        "--routing",
        ROUTING,
        "--model",
        "mixtral-8x7b",
        "--hardware",
        "rtx-4090",
        "--synthetic",
        "0",
    )
    assert r.returncode == 2 and "--synthetic" in r.stderr


class _FromPython:
    """A built-in policy seen as a user's own: the replay calls ``decide`` from Python
    step by step instead of running the compiled loop."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name

    def reset(self, inst):
        self.inner.reset(inst)

    def decide(self, n, needed, state):
        return self.inner.decide(n, needed, state)


@settings(max_examples=30)
@given(inst=instances())
def test_compiled_loop_and_python_protocol_make_the_same_plan(inst):
    for name in experts.POLICIES:
        fast = replay(inst, make(name))
        slow = replay(inst, _FromPython(make(name)))
        assert fast.plan.to_json() == slow.plan.to_json(), name
        assert fast.verdict.objective == slow.verdict.objective


@settings(max_examples=30)
@given(inst=instances(), horizon=st.integers(0, 40))
def test_lookahead_between_lru_and_belady(inst, horizon):
    from optkit.experts.policies import Lookahead

    far = replay(inst, Lookahead(horizon=inst.steps)).plan
    assert far.to_json() == replay(inst, make("belady")).plan.to_json()
    near = replay(inst, Lookahead(horizon=0)).plan
    assert near.to_json() == replay(inst, make("lru")).plan.to_json()
    mid = replay(inst, Lookahead(horizon=horizon))
    assert mid.verdict.valid
    assert mid.plan.loads >= far.loads


def test_a_user_policy_with_a_bad_unit_is_refused():
    class Bad:
        name = "bad"

        def reset(self, inst):
            pass

        def decide(self, n, needed, state):
            return [99], []

    with pytest.raises(ValueError, match=r"policy 'bad' at step 0: .* unit ids in 0\.\.3"):
        replay(tiny(), Bad())


def test_plan_csr_round_trip_and_per_step_views():
    steps = [(np.array([0, 1]), np.zeros(0, np.int64)), ([], [1]), ([2], [])]
    plan = ExpertPlan.of(steps)
    assert len(plan) == 3 and plan.loads == 3
    assert plan.loads_per_step().tolist() == [2, 0, 1]
    assert [e.tolist() for _, e in plan.steps] == [[], [1], []]
    back = ExpertPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert back.to_json() == plan.to_json()
    with pytest.raises(FieldError, match=r"plan\.steps\[0\]"):
        ExpertPlan.from_json({"kind": "expert_moves", "steps": [[[2**70], []]]})
