"""KV-placement benchmarks (results in benchmarks/kvcache/results/).

python benchmarks/kvcache/run.py gh200   # the GH200 reproduction table (both KV sizings, patterns)
python benchmarks/kvcache/run.py drift   # Reactive/Page hit rate against the trace's drift
python benchmarks/kvcache/run.py perf    # full-size Reactive replay, per-policy decision cost
python benchmarks/kvcache/run.py lp      # largest LP bound within 60 s, its gap to the best policy
python benchmarks/kvcache/run.py all
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from optkit.costmodel import Setup, builtin_catalog
from optkit.io import write_csv as io_write_csv
from optkit.kvcache import (
    KvInstance,
    Pattern,
    PatternTrace,
    anneal,
    bounds,
    lp_bound,
    make,
    make_instance,
    metrics,
    replay,
    unlimited_hbm,
)
from optkit.kvcache.generate import kv_instance
from optkit.plot import bound_bars

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CAT = builtin_catalog()
POLICIES = ("static", "reactive", "page", "heavy-hitter", "balanced", "belady")


def write_csv(name: str, rows: list[dict[str, Any]]) -> Path:
    path = io_write_csv(RESULTS / name, rows)
    print(f"wrote {path}")
    return path


def gh200(
    kv_scale: float, pattern: Pattern, decode: int, layers: int, prompt: int = 31_000
) -> KvInstance:
    """The paper's setting: LLaMA-3.1-8B fp16 on GH200 with 24 GB HBM (16 GB weights),
    LPDDR5X 500 GB/s behind NVLink-C2C 450 GB/s. ``layers < 32`` keeps the per-layer
    HBM share and the per-layer trace statistics (policies work layer by layer) and
    scales the run time down."""
    full = kv_instance(
        CAT.get_model("llama-3.1-8b"),
        CAT.get_hardware("gh200"),
        prompt,
        decode,
        pattern,
        Setup(),
        hbm_gb=24.0,
        kv_scale=kv_scale,
        host_gbs=500.0,
        efficiency="roofline",  # the paper's simulator: datasheet bandwidths
    )
    if layers == full.layers:
        return full
    hbm = dataclasses.replace(full.tiers[0], capacity=full.tiers[0].capacity * layers / full.layers)
    return dataclasses.replace(
        full,
        tiers=(hbm, *full.tiers[1:]),
        layers=layers,
        trace=PatternTrace(pattern, layers, prompt, decode),
        name=f"{full.name}-L{layers}",
    )


def table(decode: int, layers: int, anneal_iters: int) -> None:
    rows = []
    for kv_scale in (4.0, 1.0):
        for kind in ("heavy-hitter", "page"):
            pat = Pattern(kind, sparsity=0.6)
            inst = gh200(kv_scale, pat, decode, layers)
            t0 = time.perf_counter()
            csr = inst.trace.materialize()
            inst = dataclasses.replace(inst, trace=csr)
            print(
                f"{inst.name}: trace {time.perf_counter() - t0:.1f} s, {len(csr.indices):,} reads"
            )
            b = {x.kind: x.value for x in bounds(inst, "cheap")}
            ref = unlimited_hbm(inst)
            res: dict[str, Any] = {}
            for name in POLICIES:
                rep = replay(inst, make(name))
                res[name] = (rep, metrics(inst, rep))
                print(f"  {name:13s} {rep.total_time:.4f} s  hit {rep.hit_rate:.3f}")
            tuned, _ = anneal(inst, iters=anneal_iters, windows=(0, 8))
            rep = replay(inst, tuned)
            res["oracle-sa"] = (rep, metrics(inst, rep))
            print(f"  oracle-sa     {rep.total_time:.4f} s  hit {rep.hit_rate:.3f} ({tuned.name})")
            static = res["static"][0].total_time
            for name, (rep, m) in res.items():
                rows.append(
                    {
                        "kv_sizing": "paper (4x, one K/V per query head)"
                        if kv_scale == 4
                        else "GQA-correct",
                        "pattern": kind,
                        "policy": rep.policy if name == "oracle-sa" else name,
                        "total_time_s": rep.total_time,
                        "hit_rate": m["hit_rate"],
                        "speedup_vs_static": static / rep.total_time,
                        "ratio_to_bound": rep.total_time / b["capacity"],
                        "utilization": m["utilization"],
                        "migration_gb": m["migration_bytes"] / 1e9,
                        "decision_us_per_step": m["decision_us_per_step"],
                        "bound_ceiling_s": b["ceiling"],
                        "bound_capacity_s": b["capacity"],
                        "unlimited_hbm_s": ref,
                        "unlimited_speedup_vs_static": static / ref,
                        "hbm_share_of_final_kv": inst.tiers[0].capacity
                        / (inst.unit_bytes * inst.units_total),
                        "layers": inst.layers,
                        "prompt": inst.prompt,
                        "decode": inst.decode,
                    }
                )
            bound_bars(
                [(n, r[0].total_time) for n, r in res.items()],
                [("capacity bound", b["capacity"]), ("unlimited HBM", ref)],
                RESULTS / f"gh200_{kind}_kv{kv_scale:g}x.png",
                title=f"GH200, LLaMA-3.1-8B, {kind}, KV x{kv_scale:g}",
            )
    write_csv("gh200.csv", rows)


def drift(decode: int, layers: int) -> None:
    rows = []
    for kind in ("heavy-hitter", "page"):
        for d in (0.0, 0.02, 0.05, 0.1, 0.25):
            inst = gh200(4.0, Pattern(kind, sparsity=0.6, drift=d), decode, layers)
            for name in ("static", "reactive", "page", "heavy-hitter"):
                rep = replay(inst, make(name))
                rows.append(
                    {
                        "pattern": kind,
                        "drift": d,
                        "policy": name,
                        "hit_rate": rep.hit_rate,
                        "total_time_s": rep.total_time,
                    }
                )
                print(kind, d, name, f"{rep.hit_rate:.3f}")
    write_csv("drift.csv", rows)


def perf(full_decode: int) -> None:
    rows = []
    inst = gh200(4.0, Pattern("heavy-hitter", sparsity=0.6), full_decode, 32)
    t0 = time.perf_counter()
    n = sum(1 for _ in inst.trace.steps())
    gen = time.perf_counter() - t0
    rep = replay(inst, make("reactive"))
    rows.append(
        {
            "what": "replay reactive",
            "steps": n,
            "wall_s": rep.wall_s,
            "trace_generation_s": gen,
            "decision_us_per_step": 1e6 * rep.decision_s / n,
            "hit_rate": rep.hit_rate,
        }
    )
    print(rows[-1])
    small = gh200(4.0, Pattern("heavy-hitter", sparsity=0.6), 200, 8)
    small = dataclasses.replace(small, trace=small.trace.materialize())
    for name in (*POLICIES, "oracle"):
        rep = replay(small, make(name))
        rows.append(
            {
                "what": f"decision {name}",
                "steps": len(rep.times),
                "wall_s": rep.wall_s,
                "trace_generation_s": 0.0,
                "decision_us_per_step": 1e6 * rep.decision_s / len(rep.times),
                "hit_rate": rep.hit_rate,
            }
        )
        print(rows[-1])
    write_csv("perf.csv", rows)


def lp(limit_s: float) -> None:
    rows = []
    for layers, prompt, decode in (
        (2, 32, 8),
        (2, 64, 16),
        (4, 64, 16),
        (4, 128, 16),
        (4, 128, 32),
        (8, 128, 32),
        (8, 256, 32),
        (8, 256, 64),
    ):
        tr = PatternTrace(
            Pattern("heavy-hitter", sparsity=0.6, window=8, sinks=2, drift=0.1),
            layers,
            prompt,
            decode,
        ).materialize()
        # HBM holds 40% of the final KV; link and external tier as GH200 (ratios).
        inst = make_instance(
            tr, hbm_bytes=0.4 * layers * (prompt + decode), hbm_bw=4900, ext_bw=500, link=450
        )
        out = lp_bound(inst, limit_s)
        best = min(replay(inst, make(n)).total_time for n in POLICIES)
        cap = max(b.value for b in bounds(inst, "cheap"))
        rows.append(
            {
                "layers": layers,
                "prompt": prompt,
                "decode": decode,
                "columns": out.columns,
                "rows": out.rows,
                "build_s": out.build_s,
                "solve_s": out.solve_s,
                "status": out.status,
                "lp_bound": out.value,
                "capacity_bound": cap,
                "best_policy": best,
                "gap_best_policy_to_lp": None if out.value is None else (best - out.value) / best,
            }
        )
        print(rows[-1])
        if out.value is None or out.build_s + out.solve_s > limit_s:
            break
    write_csv("lp.csv", rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("gh200", "drift", "perf", "lp", "all"))
    ap.add_argument("--decode", type=int, default=500, help="decode tokens of the table runs")
    ap.add_argument("--layers", type=int, default=8, help="layers of the table runs")
    ap.add_argument("--full-decode", type=int, default=10_000)
    ap.add_argument("--anneal", type=int, default=8)
    a = ap.parse_args()
    if a.what in ("gh200", "all"):
        table(a.decode, a.layers, a.anneal)
    if a.what in ("drift", "all"):
        drift(200, 4)
    if a.what in ("lp", "all"):
        lp(60.0)
    if a.what in ("perf", "all"):
        perf(a.full_decode)


if __name__ == "__main__":
    main()
