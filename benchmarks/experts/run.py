"""Expert caching on real Mixtral-8x7B routing (../shared/data/mixtral_moe_routing).

python benchmarks/experts/run.py [synthetic|milp|prefill|speed|horizons]

Train on GSM8K problem 0 (pinning, prediction and reuse statistics), evaluate on GSM8K
problem 1 and HumanEval problem 0, for caches of 12.5%-75% of the 256 experts, on an
RTX 4090 (PCIe 4.0 x16) and a GH200 (NVLink-C2C), fp16 weights. Per policy: reuse
rate (1 - loads/uses; Belady's is the ceiling of every plan), hit rate, time per
token, speed-up over LRU, and the share of the LRU -> optimum reuse gap it closes.
Results: results/experts.csv and results/reuse_vs_cache.png.

``milp``: the timed MILP's optimum (prefetches scheduled on the link) on windows of the
real trace small enough for it (2 tokens x 8 layers), beside Belady's time (fewest
loads, demand only) and the policies: results/milp.csv.
``prefill``: prefill mode (batches of 16 tokens need the union of their experts), every
policy's time and speed-up over LRU: results/prefill.csv.
``speed``: median decision time per policy and replayed layer-steps/s: results/speed.csv.
``horizons``: the clairvoyant lookahead policy (the next H layer steps known exactly)
against LRU and MIN: how much any predictor could gain, results/horizons.csv.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from optkit import plot  # noqa: E402
from optkit.costmodel import Setup, builtin_catalog  # noqa: E402
from optkit.experts import POLICIES, bounds, make, read_routing, replay  # noqa: E402
from optkit.experts.generate import expert_instance  # noqa: E402
from optkit.experts.policies import OFFLINE  # noqa: E402
from optkit.io import write_csv  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "mixtral_moe_routing"
SHARES = (0.125, 0.25, 0.5, 0.75)


def main() -> None:
    cat = builtin_catalog()
    model = cat.get_model("mixtral-8x7b")
    train = read_routing(DATA / "gsm8k_p0_p1_routing.jsonl", "gsm8k", 0)
    tests = {
        "gsm8k-1": read_routing(DATA / "gsm8k_p0_p1_routing.jsonl", "gsm8k", 1),
        "humaneval-0": read_routing(DATA / "humaneval_p0_routing.jsonl"),
    }
    rows = []
    for hw_key in ("rtx-4090", "gh200"):
        hw = cat.get_hardware(hw_key)
        for test, routing in tests.items():
            for share in SHARES:
                inst = expert_instance(model, hw, routing, share, Setup())
                inst = dataclasses.replace(inst, train=train)
                reps = {p: replay(inst, make(p)) for p in POLICIES}
                lb = max(b.value for b in bounds(inst))
                lru, opt = reps["lru"].verdict, reps["belady"].verdict
                gap = opt.details["reuse_rate"] - lru.details["reuse_rate"]
                for name, r in reps.items():
                    v = r.verdict
                    assert v.valid, (name, v.violations)
                    closed = (
                        (v.details["reuse_rate"] - lru.details["reuse_rate"]) / gap
                        if gap > 0
                        else 0.0
                    )
                    rows.append(
                        {
                            "hardware": hw_key,
                            "test": test,
                            "cache_share": share,
                            "capacity": inst.capacity,
                            "policy": name,
                            "reuse_rate": round(v.details["reuse_rate"], 4),
                            "hit_rate": round(v.details["hit_rate"], 4),
                            "loads": v.details["loads"],
                            "time_per_token_ms": round(1e3 * v.objective / inst.tokens, 3),
                            "speedup_vs_lru": round(lru.objective / v.objective, 3),
                            "gap_closed": round(closed, 3),
                            "bound_ms_per_token": round(1e3 * lb / inst.tokens, 3),
                        }
                    )
                best_online = max(
                    (r for r in rows[-len(reps) :] if r["policy"] not in OFFLINE),
                    key=lambda r: r["reuse_rate"],
                )
                print(
                    f"{hw_key:8s} {test:11s} cache {share:5.1%}: LRU reuse "
                    f"{lru.details['reuse_rate']:.3f}, optimum {opt.details['reuse_rate']:.3f}, "
                    f"best online {best_online['policy']} {best_online['reuse_rate']:.3f}; "
                    f"time/token LRU {1e3 * lru.objective / inst.tokens:.1f} ms, "
                    f"Belady {1e3 * opt.objective / inst.tokens:.1f} ms, "
                    f"bound {1e3 * lb / inst.tokens:.1f} ms"
                )
    out = write_csv(HERE / "results" / "experts.csv", rows)
    sel = [r for r in rows if r["hardware"] == "rtx-4090" and r["test"] == "humaneval-0"]
    series = {
        p: [(r["cache_share"], r["reuse_rate"]) for r in sel if r["policy"] == p] for p in POLICIES
    }
    plot.curves(
        series,
        HERE / "results" / "reuse_vs_cache.png",
        title="Mixtral-8x7B, HumanEval 0: reuse rate vs cache size (belady = ceiling)",
        xlabel="share of the 256 experts on the GPU",
        ylabel="reuse rate (1 - loads / uses)",
    )
    print("->", out)


def synthetic() -> None:
    """The fitted generator against held-out real traces: statistics, and LRU's and
    MIN's reuse rates at every cache share (seeds 0-4, 2,000 tokens each)."""
    import numpy as np

    from optkit.experts import ExpertInstance
    from optkit.experts.synth import fit, generate, statistics

    train = read_routing(DATA / "gsm8k_p0_p1_routing.jsonl", "gsm8k", 0)
    traces = {
        "gsm8k-0 (fitted)": train,
        "gsm8k-1": read_routing(DATA / "gsm8k_p0_p1_routing.jsonl", "gsm8k", 1),
        "humaneval-0": read_routing(DATA / "humaneval_p0_routing.jsonl"),
    }
    model = fit(train, 8)
    for seed in range(5):
        traces[f"synthetic seed {seed}"] = generate(model, 2000, seed)
    rows = []
    for name, r in traces.items():
        row: dict = {"trace": name, "tokens": len(r), **statistics(r, 8)}
        for share in SHARES:
            inst = ExpertInstance(32, 8, 2, 1.0, int(share * 256), 1.0, 0.0, np.zeros(32), r)
            row[f"lru_reuse_{share}"] = replay(inst, make("lru")).verdict.details["reuse_rate"]
            row[f"min_reuse_{share}"] = replay(inst, make("belady")).verdict.details["reuse_rate"]
        rows.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        print(rows[-1], flush=True)
    write_csv(HERE / "results" / "synthetic.csv", rows)


def milp_windows() -> None:
    """Windows of 2 tokens x the first 8 MoE layers of the held-out traces (64 units),
    caches of 4-32 experts, RTX 4090 and GH200 link/compute: the MILP's proven optimum
    against Belady (demand loads, fewest loads) and every policy."""

    from optkit.experts.milp import milp
    from optkit.solvers import SolverOptions

    cat = builtin_catalog()
    model = cat.get_model("mixtral-8x7b")
    rows = []
    for hw_key in ("rtx-4090", "gh200"):
        hw = cat.get_hardware(hw_key)
        for test, path, pid in (
            ("gsm8k-1", "gsm8k_p0_p1_routing.jsonl", 1),
            ("humaneval-0", "humaneval_p0_routing.jsonl", None),
        ):
            r = read_routing(DATA / path, "gsm8k" if pid else None, pid)
            for start in (0, 40):
                full = expert_instance(model, hw, r[start : start + 2], 0.25, Setup())
                for cap in (4, 8, 16):
                    inst = dataclasses.replace(
                        full,
                        layers=8,
                        routing=full.routing[:, :8],
                        compute=full.compute[:8],
                        capacity=cap,
                        name=f"{test}-t{start}-c{cap}",
                    )
                    reps = {p: replay(inst, make(p)) for p in POLICIES}
                    out = milp(
                        inst,
                        min(r.verdict.objective for r in reps.values()),
                        reps["belady"].plan.loads,
                        SolverOptions(time_limit_s=20),
                    )
                    row = {
                        "hardware": hw_key,
                        "window": inst.name,
                        "capacity": cap,
                        "milp_status": out.status,
                        "milp_ms": None if out.objective is None else round(1e3 * out.objective, 4),
                        "milp_bound_ms": round(1e3 * out.bound, 4),
                        **{f"{p}_ms": round(1e3 * r.verdict.objective, 4) for p, r in reps.items()},
                    }
                    rows.append(row)
                    print(row, flush=True)
    write_csv(HERE / "results" / "milp.csv", rows)


def prefill() -> None:
    cat = builtin_catalog()
    model = cat.get_model("mixtral-8x7b")
    train = read_routing(DATA / "gsm8k_p0_p1_routing.jsonl", "gsm8k", 0)
    rows = []
    for hw_key in ("rtx-4090", "gh200"):
        for test, r in (
            ("gsm8k-1", read_routing(DATA / "gsm8k_p0_p1_routing.jsonl", "gsm8k", 1)),
            ("humaneval-0", read_routing(DATA / "humaneval_p0_routing.jsonl")),
        ):
            for share in SHARES:
                inst = expert_instance(model, cat.get_hardware(hw_key), r, share, Setup(), batch=16)
                inst = dataclasses.replace(inst, train=train)
                reps = {p: replay(inst, make(p)).verdict for p in POLICIES}
                lb = max(b.value for b in bounds(inst, "cheap"))
                for name, v in reps.items():
                    rows.append(
                        {
                            "hardware": hw_key,
                            "test": test,
                            "cache_share": share,
                            "policy": name,
                            "reuse_rate": round(v.details["reuse_rate"], 4),
                            "time_ms": round(1e3 * v.objective, 3),
                            "speedup_vs_lru": round(reps["lru"].objective / v.objective, 3),
                            "bound_ms": round(1e3 * lb, 3),
                        }
                    )
                print(rows[-len(reps) :], flush=True)
    write_csv(HERE / "results" / "prefill.csv", rows)


def speed() -> None:
    """Median decision time per policy (``decide`` called from Python once per layer
    step, as an engine embedding the policy would) and layer-steps/s of the whole
    replay (the compiled loop) with and without its check, on a synthetic trace fitted
    to GSM8K 0 (20,000 tokens = 640,000 layer steps, seed 0) at 25% cache, RTX 4090."""
    import time

    import numpy as np

    from optkit.experts import CacheState, check
    from optkit.experts.simulate import plan_of
    from optkit.experts.synth import fit, generate

    cat = builtin_catalog()
    model = cat.get_model("mixtral-8x7b")
    train = read_routing(DATA / "gsm8k_p0_p1_routing.jsonl", "gsm8k", 0)
    trace = generate(fit(train, 8), 20_000, 0)
    inst = expert_instance(model, cat.get_hardware("rtx-4090"), trace, 0.25, Setup())
    inst = dataclasses.replace(inst, train=train)
    flat, off = inst.needed_csr()
    comp = inst.step_compute()
    rows = []
    for name in POLICIES:
        replay(inst, make(name))  # compiled (and cached) before timing
        walls, checked = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            plan = plan_of(inst, make(name))
            t1 = time.perf_counter()
            check(inst, plan)
            walls.append(t1 - t0)
            checked.append(time.perf_counter() - t0)
        pol = make(name)
        pol.reset(inst)
        state = CacheState(inst.units, inst.capacity)
        times = []
        for n in range(20_000):
            r = flat[off[n] : off[n + 1]]
            state.step = n
            t0 = time.perf_counter()
            loads, evicts = pol.decide(n, r, state)
            times.append(time.perf_counter() - t0)
            state.apply(n, r, loads, evicts, inst.load_time, float(comp[n]))
        rows.append(
            {
                "policy": name,
                "steps": inst.steps,
                "decision_median_us": round(1e6 * float(np.median(times)), 2),
                "decision_p99_us": round(1e6 * float(np.percentile(times, 99)), 2),
                "replay_steps_per_s": round(inst.steps / float(np.median(walls))),
                "replay_and_check_steps_per_s": round(inst.steps / float(np.median(checked))),
            }
        )
        print(rows[-1], flush=True)
    write_csv(HERE / "results" / "speed.csv", rows)


def horizons() -> None:
    """How much a better predictor could gain: the clairvoyant ``lookahead`` policy
    knows the routing of the next H layer steps exactly (H = 1 is a perfect next-layer
    predictor, ProMoE's setting; H = 32 a whole token ahead), on both held-out traces at
    every cache share: its reuse rate and the share of the LRU -> MIN gap it closes."""
    from optkit.experts.policies import Lookahead

    cat = builtin_catalog()
    model = cat.get_model("mixtral-8x7b")
    hw = cat.get_hardware("rtx-4090")
    rows = []
    for test, path, pid in (
        ("gsm8k-1", "gsm8k_p0_p1_routing.jsonl", 1),
        ("humaneval-0", "humaneval_p0_routing.jsonl", None),
    ):
        r = read_routing(DATA / path, "gsm8k" if pid else None, pid)
        for share in SHARES:
            inst = expert_instance(model, hw, r, share, Setup())
            reuse = {
                "lru": replay(inst, make("lru")).verdict.details["reuse_rate"],
                "belady": replay(inst, make("belady")).verdict.details["reuse_rate"],
            }
            gap = reuse["belady"] - reuse["lru"]
            for H in (1, 4, 8, 16, 32, 64, 128):
                got = replay(inst, Lookahead(H)).verdict.details["reuse_rate"]
                rows.append(
                    {
                        "test": test,
                        "cache_share": share,
                        "horizon_steps": H,
                        "lru_reuse": round(reuse["lru"], 4),
                        "lookahead_reuse": round(got, 4),
                        "min_reuse": round(reuse["belady"], 4),
                        "gap_closed": round((got - reuse["lru"]) / gap, 3) if gap > 0 else 0.0,
                    }
                )
                print(rows[-1], flush=True)
    write_csv(HERE / "results" / "horizons.csv", rows)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "main"
    jobs = {"synthetic": synthetic, "milp": milp_windows, "prefill": prefill, "speed": speed}
    jobs["horizons"] = horizons
    jobs.get(what, main)()
