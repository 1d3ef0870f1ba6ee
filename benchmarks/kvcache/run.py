"""KV-placement benchmarks (results in benchmarks/kvcache/results/).

python benchmarks/kvcache/run.py gh200   # the GH200 reproduction table (both KV sizings, patterns)
python benchmarks/kvcache/run.py drift   # Reactive/Page hit rate against the trace's drift
python benchmarks/kvcache/run.py perf    # full-size Reactive replay, per-policy decision cost
python benchmarks/kvcache/run.py lp      # largest LP bound within 60 s, its gap to the best policy
python benchmarks/kvcache/run.py grid    # issue 20's grid: best online policy / best bound
python benchmarks/kvcache/run.py all
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

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
from optkit.kvcache.policies import _KeepBest
from optkit.kvcache.simulate import StepView
from optkit.plot import bound_bars
from optkit.solvers import SolverOptions

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


#: issue 20's grid: (name, hardware, host tiers); every host tier behind the GPU's link
PLATFORMS = (
    ("gh200", "gh200", ()),
    ("h100+ddr5", "h100-sxm", ("ddr5-4800-8ch",)),
    ("a100+ddr4", "a100-80gb", ("ddr4-3200-8ch",)),
    ("h100+ddr5+nvme", "h100-sxm", ("ddr5-4800-8ch", "nvme-pcie4")),
)
GRID_MODELS = (("mha", "llama-2-7b"), ("gqa", "llama-3.1-8b"))
ONLINE = ("static", "reactive", "page", "heavy-hitter", "balanced")


class PopularityOracle(_KeepBest):
    """A reference, not a policy a user can run: keeps this step's reads first, then
    the units of highest *true* popularity (``PatternTrace.popularity``: the
    generator's Zipf law over its ranking), never the future draws. Any online policy
    that estimates popularity from what it has seen is at best this good, so the gap
    from it to Belady is what online placement cannot know."""

    name = "popularity-oracle"

    def __init__(self, trace: PatternTrace) -> None:
        self.trace = trace

    def reset(self, inst: KvInstance) -> None:
        tokens = np.arange(inst.tokens) // self.trace.pattern.block
        self.pop = self.trace.popularity()[:, tokens]
        self.now = np.full((inst.layers, inst.tokens), -1, dtype=np.int64)

    def on_step(self, view: StepView) -> Any:
        self.now[view.layer, view.reads] = view.t
        self.now[view.layer, view.context] = view.t
        return super().on_step(view)

    def keys(self, view: StepView, units: np.ndarray) -> np.ndarray:
        read = self.now[view.layer, units] == view.t
        # reads first (popularity <= 1), then popularity; a resident wins a tie by a
        # relative margin far below the gap between two ranks
        pop = self.pop[view.layer, units] * (1.0 + 1e-12 * view.hbm[units])
        return -pop - 2.0 * read


def grid_pattern(sparsity: float, drift: float, seed: int) -> Pattern:
    """The grid's trace pattern: heavy-hitter, sinks 2, window 8."""
    return Pattern("heavy-hitter", sparsity=sparsity, sinks=2, window=8, drift=drift, seed=seed)


def popularity_oracle(inst: KvInstance, sparsity: float, drift: float, seed: int) -> Any:
    """The popularity reference for a grid instance (its trace is materialised)."""
    return PopularityOracle(
        PatternTrace(grid_pattern(sparsity, drift, seed), inst.layers, inst.prompt, inst.decode)
    )


def grid_instance(
    platform: str,
    model: str,
    sparsity: float,
    drift: float,
    share: float,
    seed: int,
    layers: int = 4,
    prompt: int = 64,
    decode: int = 16,
) -> KvInstance:
    """The model's KV unit on the platform's tiers (datasheet bandwidths), ``layers`` of
    its layers, HBM holding ``share`` of the final KV, a heavy-hitter trace (sinks 2,
    window 8) of the given sparsity and drift, materialised."""
    _, hw, host = next(p for p in PLATFORMS if p[0] == platform)
    pattern = grid_pattern(sparsity, drift, seed)
    full = kv_instance(
        CAT.get_model(model),
        CAT.get_hardware(hw),
        prompt,
        decode,
        pattern,
        Setup(),
        host_tiers=tuple(CAT.get_tier(k) for k in host),
        efficiency="roofline",
    )
    cap = share * layers * (prompt + decode) * full.unit_bytes
    return dataclasses.replace(
        full,
        tiers=(dataclasses.replace(full.tiers[0], capacity=cap), *full.tiers[1:]),
        layers=layers,
        trace=PatternTrace(pattern, layers, prompt, decode).materialize(),
        name=f"{platform}-{model}-s{sparsity}-d{drift}-h{share}",
    )


def grid_case(case: tuple[Any, ...]) -> dict[str, Any]:
    """One grid point: every policy's replay time, the bounds (LP within 60 s)."""
    platform, kind, model, sparsity, drift, share, seed = case
    inst = grid_instance(platform, model, sparsity, drift, share, seed)
    times = {n: replay(inst, make(n)).total_time for n in POLICIES}
    popularity = replay(inst, popularity_oracle(inst, sparsity, drift, seed)).total_time
    t0 = time.perf_counter()
    b = {x.kind: x for x in bounds(inst, "lp", 60.0)}
    bound_s = time.perf_counter() - t0
    got = [x.value for x in b.values() if x.obtained]
    best_bound = max(got)
    online = min(ONLINE, key=lambda n: times[n])
    row: dict[str, Any] = {
        "platform": platform,
        "attention": kind,
        "model": model,
        "sparsity": sparsity,
        "drift": drift,
        "hbm_share": share,
        "seed": seed,
        "tiers": len(inst.tiers),
        "unit_bytes": inst.unit_bytes,
        **{f"{n}_s": times[n] for n in POLICIES},
        "popularity_oracle_s": popularity,
        **{f"{k}_bound_s": (x.value if x.obtained else None) for k, x in b.items()},
        "bound_wall_s": round(bound_s, 2),
        "best_bound_s": best_bound,
        "best_bound_kind": max((x for x in b.values() if x.obtained), key=lambda x: x.value).kind,
        "best_online": online,
        "online_over_bound": times[online] / best_bound,
        "belady_over_bound": times["belady"] / best_bound,
        "popularity_over_bound": popularity / best_bound,
    }
    return row


def grid_cases(models: tuple[tuple[str, str], ...]) -> list[tuple[Any, ...]]:
    """platform × model × sparsity {0.4, 0.6, 0.8} × drift {0, 10%, 25%} × HBM share
    {25%, 50%, 75%}; the seed is the case index."""
    cases: list[tuple[Any, ...]] = []
    for platform, _, _ in PLATFORMS:
        for kind, model in models:
            for sp in (0.4, 0.6, 0.8):
                for dr in (0.0, 0.1, 0.25):
                    for sh in (0.25, 0.5, 0.75):
                        cases.append((platform, kind, model, sp, dr, sh, len(cases)))
    return cases


#: the MILP grid's instance size (layers, prompt, decode) and solve limit
MILP_GRID = (2, 32, 8)
MILP_LIMIT_S = 30.0


def milp_case(case: tuple[Any, ...]) -> dict[str, Any]:
    """A small grid point solved by ``solve auto`` (policies, Belady, then the MILP from
    the best verified plan): where the optimum lies between the bound and the policies."""
    from optkit.kvcache import solve

    platform, kind, model, sparsity, drift, share, seed = case
    layers, prompt, decode = MILP_GRID
    inst = grid_instance(platform, model, sparsity, drift, share, seed, layers, prompt, decode)
    times = {n: replay(inst, make(n)).total_time for n in POLICIES}
    popularity = replay(inst, popularity_oracle(inst, sparsity, drift, seed)).total_time
    b = {x.kind: x.value for x in bounds(inst, "lp", 60.0) if x.obtained}
    res = solve(inst, "auto", SolverOptions(time_limit_s=MILP_LIMIT_S))
    assert res.objective is not None and res.verified
    best_bound = max(res.bound or 0.0, *b.values())
    online = min(ONLINE, key=lambda n: times[n])
    opt = res.objective if res.status.value == "OPTIMAL" else None
    return {
        "platform": platform,
        "attention": kind,
        "sparsity": sparsity,
        "drift": drift,
        "hbm_share": share,
        "seed": seed,
        **{f"{n}_s": times[n] for n in POLICIES},
        "popularity_oracle_s": popularity,
        **{f"{k}_bound_s": v for k, v in b.items()},
        "solve_status": res.status.value,
        "solve_s": res.objective,
        "solve_bound_s": best_bound,
        "solve_wall_s": round(res.runtime_s, 2),
        "best_online": online,
        "online_over_solve": times[online] / res.objective,
        "popularity_over_solve": popularity / res.objective,
        "belady_over_solve": times["belady"] / res.objective,
        "lp_over_optimum": (b["lp"] / opt) if opt else None,
        "reuse_over_optimum": (b["reuse"] / opt) if opt else None,
    }


def grid_milp(workers: int) -> None:
    """The grid at MILP size (:data:`MILP_GRID`, one model: MHA and GQA give the same
    ratios on the large grid): the optimum beside the bounds and the policies."""
    from concurrent.futures import ProcessPoolExecutor

    cases = grid_cases(GRID_MODELS[:1])
    rows = []
    with ProcessPoolExecutor(workers) as pool:
        for row in pool.map(milp_case, cases):
            rows.append(row)
            print(
                f"{len(rows):3d}/{len(cases)} {row['platform']:15s} s{row['sparsity']} "
                f"d{row['drift']} h{row['hbm_share']}: {row['solve_status']} "
                f"{row['solve_wall_s']} s, online/solve {row['online_over_solve']:.3f}, "
                f"belady/solve {row['belady_over_solve']:.3f}, lp/opt {row['lp_over_optimum']}",
                flush=True,
            )
    write_csv("grid_milp.csv", rows)


def grid(workers: int) -> None:
    """Issue 20's grid: 4 platforms × {MHA, GQA} × sparsity {0.4, 0.6, 0.8} × drift
    {0, 10%, 25%} × HBM share {25%, 50%, 75%}, 4 layers × (64 prompt + 16 decode tokens),
    seed = case index."""
    from concurrent.futures import ProcessPoolExecutor

    cases = grid_cases(GRID_MODELS)
    with ProcessPoolExecutor(workers) as pool:
        rows = []
        for row in pool.map(grid_case, cases):
            rows.append(row)
            print(
                f"{len(rows):3d}/{len(cases)} {row['platform']:15s} {row['attention']} "
                f"s{row['sparsity']} d{row['drift']} h{row['hbm_share']}: {row['best_online']} "
                f"{row['online_over_bound']:.3f} ({row['best_bound_kind']})",
                flush=True,
            )
    write_csv("grid.csv", rows)
    grid_summary(rows)


def grid_summary(rows: list[dict[str, Any]] | None = None) -> None:
    """The README's grid numbers from grid.csv."""
    import csv
    import statistics

    if rows is None:
        with open(RESULTS / "grid.csv") as f:
            rows = list(csv.DictReader(f))
    r = [float(x["online_over_bound"]) for x in rows]
    b = [float(x["belady_over_bound"]) for x in rows]
    pop = [float(x["popularity_over_bound"]) for x in rows]
    within = sum(v <= 1.10 for v in r)
    print(
        f"best online within 10% of the best bound: {within}/{len(r)}; median ratio "
        f"{statistics.median(r):.3f}, worst {max(r):.3f}; belady median {statistics.median(b):.3f}"
        f"; popularity oracle {sum(v <= 1.10 for v in pop)} within, median "
        f"{statistics.median(pop):.3f}"
    )
    for key in (
        "platform",
        "attention",
        "sparsity",
        "drift",
        "hbm_share",
        "best_bound_kind",
        "best_online",
    ):
        groups: dict[str, list[float]] = {}
        for x, v in zip(rows, r, strict=True):
            groups.setdefault(str(x[key]), []).append(v)
        print(
            key,
            {
                k: (len(v), sum(u <= 1.10 for u in v), round(statistics.median(v), 3))
                for k, v in groups.items()
            },
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "what",
        choices=("gh200", "drift", "perf", "lp", "grid", "grid-milp", "summary", "all"),
    )
    ap.add_argument("--workers", type=int, default=2, help="processes for the grid")
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
    if a.what in ("grid", "all"):
        grid(a.workers)
    if a.what in ("grid-milp", "all"):
        grid_milp(a.workers)
    if a.what == "summary":
        grid_summary()
    if a.what in ("perf", "all"):
        perf(a.full_decode)


if __name__ == "__main__":
    main()
