"""Benchmarks of optkit.packing (not tests: they never gate CI).

    python benchmarks/packing/run.py [scale|classic|online|all] [--time-limit S] [--limit N]

Writes CSV files under benchmarks/packing/results/ and prints a summary.
- scale:   LPT, L1 and pigeonhole at n = 1,000,000, m = 1,000; OnlineAssigner µs/job.
- classic: ``auto`` and the plain assignment MILP with CBC, side by side, on the
           BPPLIB and P||Cmax samples in ../shared/data (known optima).
- online:  online rules vs the offline bound on trace-derived instances.
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from optkit.io import read_instance, write_csv
from optkit.packing import MakespanInstance, OnlineAssigner, bounds, exact, heuristics, solve
from optkit.packing.check import check_binpacking, check_makespan
from optkit.solvers import SolverOptions

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE.parents[1].parent / "shared" / "data"


def _write(name: str, rows: list[dict]) -> Path:
    return write_csv(RESULTS / name, rows)


def _median_time(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def scale() -> None:
    rng = np.random.default_rng(0)
    n, m = 1_000_000, 1000
    rows = []
    for kind, p in (
        ("integer", rng.integers(1, 1000, n).astype(float)),
        ("float", rng.uniform(1, 1000, n)),
    ):
        inst = MakespanInstance.identical(p, m, name=f"random-{kind}")
        integral = inst.integral
        rows.append(
            {
                "what": "lpt",
                "data": kind,
                "n": n,
                "m": m,
                "median_s": _median_time(lambda inst=inst: heuristics.lpt(inst), 3),
            }
        )
        rows.append(
            {
                "what": "L1 (McNaughton)",
                "data": kind,
                "n": n,
                "m": m,
                "median_s": _median_time(
                    lambda p=p, integral=integral: bounds.mcnaughton(p, m, integral)
                ),
            }
        )
        rows.append(
            {
                "what": "pigeonhole",
                "data": kind,
                "n": n,
                "m": m,
                "median_s": _median_time(
                    lambda p=p, integral=integral: bounds.pigeonhole(p, m, integral)
                ),
            }
        )
    jobs = rng.uniform(1, 1000, 200_000).tolist()
    for rule, kw in (("least-loaded", {}), ("target", {"target": sum(jobs) / m * 1.02})):

        def run(rule: str = rule, kw: dict = kw) -> None:
            a = OnlineAssigner(m, rule=rule, **kw)
            assign = a.assign
            for x in jobs:
                assign(x)

        t = _median_time(run, 3)
        rows.append(
            {
                "what": f"OnlineAssigner[{rule}] per job",
                "data": "float",
                "n": len(jobs),
                "m": m,
                "median_s": t / len(jobs),
            }
        )
    path = _write("scale.csv", rows)
    for r in rows:
        unit = (
            f"{r['median_s'] * 1e6:.2f} µs" if "per job" in r["what"] else f"{r['median_s']:.3f} s"
        )
        print(f"{r['what']:40s} {r['data']:8s} n={r['n']:>9} m={r['m']:>5}  {unit}")
    print(f"-> {path}  ({platform.machine()}, python {sys.version.split()[0]})")


def _classic_instances(limit: int | None) -> list[tuple[Path, str, float]]:
    out: list[tuple[Path, str, float]] = []
    with (DATA / "pcmax_public" / "optima.csv").open() as f:
        for r in csv.DictReader(f):
            out.append(
                (DATA / "pcmax_public" / r["instance"], "pcmax:" + r["family"], float(r["optimum"]))
            )
    with (DATA / "bpplib_public" / "optima.csv").open() as f:
        for r in csv.DictReader(f):
            opt = float(r["optimum"]) if r["optimum"] else float("nan")
            out.append((DATA / "bpplib_public" / r["file"], "bpp:" + r["set"], opt))
    return out[:limit] if limit else out


def _auto_row(task: tuple[Path, str, float, float]) -> dict:
    path, family, known, time_limit = task
    inst = read_instance(path)
    res = solve(inst, "auto", options=SolverOptions(time_limit))
    if known == known:  # a known optimum (not NaN): the result must bracket it
        assert res.objective is None or res.objective >= known - 1e-6, "objective below optimum"
        assert res.bound is None or res.bound <= known + 1e-6, "bound above the known optimum"
    return {
        "instance": path.name,
        "family": family,
        "n": inst.n,
        "known_optimum": known,
        "auto_status": res.status.value,
        "auto_objective": res.objective,
        "auto_bound": res.bound,
        "auto_runtime_s": round(res.runtime_s, 3),
        "auto_method": res.method,
    }


def _cbc_row(task: tuple[Path, str, float, float]) -> dict:
    path, _, _, time_limit = task
    return _plain_cbc(read_instance(path), time_limit)


def _either(job: tuple[str, tuple[Path, str, float, float]]) -> dict:
    kind, task = job
    return _auto_row(task) if kind == "auto" else _cbc_row(task)


def classic(
    time_limit: float, limit: int | None, with_cbc: bool, workers: int = 2, offset: int = 0
) -> None:
    """auto and (optionally) plain CBC on every instance; two single-threaded solves at a time."""
    from concurrent.futures import ProcessPoolExecutor

    tasks = [(p, fam, known, time_limit) for p, fam, known in _classic_instances(limit)]
    tasks = tasks[offset:]
    kinds = ("auto", "cbc") if with_cbc else ("auto",)
    jobs = [(k, t) for t in tasks for k in kinds]  # interleaved: rows complete in order
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_either, jobs)
        for _ in tasks:
            row = next(results)
            cb = next(results) if with_cbc else {}
            row.update(cb)
            rows.append(row)
            print(
                f"{row['instance'][:44]:44s} {row['family']:18s} auto {row['auto_status']:8s} "
                f"{row['auto_objective']!s:>8} bound {row['auto_bound']!s:>8} "
                f"{row['auto_runtime_s']:6.2f}s"
                + (f" | cbc {cb['cbc_status']:10s} {cb['cbc_runtime_s']:6.2f}s" if cb else ""),
                flush=True,
            )
            _write("classic.csv", rows)  # rewritten each time: a crash keeps what was done
    _summary(rows, time_limit, with_cbc)
    print(f"-> {RESULTS / 'classic.csv'}")


def _plain_cbc(inst, time_limit: float) -> dict:  # type: ignore[no-untyped-def]
    """The assignment MILP a user writes first: no bounds, no symmetry breaking, no warm start."""
    t0 = time.perf_counter()
    opts = SolverOptions(time_limit)
    size = inst.n * (inst.m if inst.problem == "makespan" else inst.n)
    if size > 2_000_000:  # the model alone would not fit this machine's memory and time
        return {"cbc_status": "too_large", "cbc_objective": None, "cbc_runtime_s": 0.0}
    if inst.problem == "makespan":
        out = exact.milp_makespan(inst, "cbc", opts, symmetry=False)
        obj = check_makespan(inst, out.plan)[0] if out.plan is not None else None
    else:
        upper = int(heuristics.first_fit_decreasing(inst).max() + 1)
        out = exact.milp_binpacking(inst, "cbc", opts, upper)
        obj = check_binpacking(inst, out.plan)[0] if out.plan is not None else None
    dt = time.perf_counter() - t0
    return {"cbc_status": out.status, "cbc_objective": obj, "cbc_runtime_s": round(dt, 3)}


def _summary(rows: list[dict], time_limit: float, with_cbc: bool) -> None:
    n = len(rows)
    opt = [r for r in rows if r["auto_status"] == "OPTIMAL"]
    print(
        f"\nauto: proved optimality on {len(opt)}/{n} = {len(opt) / n:.1%} within {time_limit:g} s"
    )
    # The families the packing issue names (BPPLIB's AI, ANI, GI and random sets are extra).
    listed = (
        "bpp:Falkenauer_U",
        "bpp:Falkenauer_T",
        "bpp:Scholl_1",
        "bpp:Scholl_2",
        "bpp:Scholl_3",
        "bpp:Schwerin",
        "bpp:Waescher",
        "bpp:Hard28",
    )
    named = [r for r in rows if r["family"].startswith("pcmax:") or r["family"] in listed]
    if named:
        k = sum(r["auto_status"] == "OPTIMAL" for r in named)
        print(f"  classical families named in the issue: {k}/{len(named)} = {k / len(named):.1%}")
    fams = sorted({r["family"] for r in rows})
    for fam in fams:
        rs = [r for r in rows if r["family"] == fam]
        k = sum(r["auto_status"] == "OPTIMAL" for r in rs)
        print(
            f"  {fam:20s} {k:3d}/{len(rs):3d}  "
            f"median {statistics.median(r['auto_runtime_s'] for r in rs):.2f} s"
        )
    if with_cbc:
        cb = [r for r in rows if r["cbc_status"] == "optimal"]
        ratios = [r["cbc_runtime_s"] / max(r["auto_runtime_s"], 1e-3) for r in rows]
        print(
            f"plain CBC MILP: optimal on {len(cb)}/{n} = {len(cb) / n:.1%}; "
            f"median time ratio cbc/auto = {statistics.median(ratios):.1f}"
        )


def _pooled(fn, tasks: list, workers: int, line, each=None) -> list[dict]:  # type: ignore[no-untyped-def]
    """``fn`` over ``tasks`` in ``workers`` processes, in order: each row printed by
    ``line(row)`` as it comes, then ``each(rows so far)`` (e.g. a CSV kept current)."""
    from concurrent.futures import ProcessPoolExecutor

    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for row in pool.map(fn, tasks):
            rows.append(row)
            print(line(row), flush=True)
            if each is not None:
                each(rows)
    return rows


def _class_row(task: tuple[str, int, float]) -> dict:
    from optkit.packing import BinPackingInstance, classes

    name, seed, time_limit = task
    g = classes.generate(name, seed)
    inst = BinPackingInstance(float(g.capacity), g.sizes.astype(float))
    t0 = time.perf_counter()
    res = solve(inst, "auto", options=SolverOptions(time_limit))
    wall = time.perf_counter() - t0
    if g.optimum is not None:  # known by construction: the result must bracket it
        assert res.objective is None or res.objective >= g.optimum - 1e-6, "objective below optimum"
        assert res.bound is None or res.bound <= g.optimum + 1e-6, "bound above the optimum"
    return {
        "class": name,
        "seed": seed,
        "params": g.params,
        "n": inst.n,
        "capacity": g.capacity,
        "known_optimum": g.optimum,
        "status": res.status.value,
        "objective": res.objective,
        "bound": res.bound,
        "runtime_s": round(res.runtime_s, 3),
        "wall_s": round(wall, 3),
        "method": res.method,
    }


def generated(
    time_limit: float, per_class: int, workers: int = 2, only: list[str] | None = None
) -> None:
    """auto on ``per_class`` fresh instances of every class of optkit.packing.classes
    (seeds 0..per_class-1, parameters cycling with the seed)."""
    from optkit.packing import classes

    names = only or list(classes.CLASSES)
    out_name = f"classes_{time_limit:g}s.csv"
    tasks = [(c, s, time_limit) for c in names for s in range(per_class)]
    rows = _pooled(
        _class_row,
        tasks,
        workers,
        lambda row: (
            f"{row['class']:13s} seed {row['seed']:3d} n {row['n']:5d} {row['status']:8s} "
            f"{row['objective']!s:>7} bound {row['bound']!s:>7} {row['wall_s']:6.2f}s"
        ),
        lambda done: _write(out_name, done),
    )
    print(f"\nauto, {time_limit:g} s, {per_class} per class:")
    for c in names:
        rs = [r for r in rows if r["class"] == c]
        k = sum(r["status"] == "OPTIMAL" for r in rs)
        ts = [r["wall_s"] for r in rs]
        print(
            f"  {c:13s} optimal {k:3d}/{len(rs):3d}  median {statistics.median(ts):6.2f} s  "
            f"worst {max(ts):6.2f} s"
        )
    print(f"-> {RESULTS / out_name}")


def online() -> None:
    """Online rules vs the offline bound on instances from real request lengths."""
    rows = []
    for path in sorted((HERE.parents[1] / "instances" / "packing").glob("*.json")):
        inst = read_instance(path)
        if inst.problem != "makespan" or inst.kind != "identical":
            continue
        lb = bounds.best(bounds.makespan_bounds(inst)).value
        rng = np.random.default_rng(0)
        for trial in range(5):
            order = rng.permutation(inst.n)
            p = inst.durations[order]
            for rule, kw in (("least-loaded", {}), ("target", {"target": lb * 1.02})):
                a = OnlineAssigner(inst.m, rule=rule, **kw)
                a.assign_many(p)
                rows.append(
                    {
                        "instance": path.name,
                        "trial": trial,
                        "rule": rule,
                        "n": inst.n,
                        "m": inst.m,
                        "makespan": a.makespan,
                        "lower_bound": lb,
                        "ratio_to_bound": a.makespan / lb,
                    }
                )
    # The real arrival order of the Azure conversation trace (first 2,000 requests),
    # durations from the stand-in linear time model of instances/packing/make_instances.py.
    trace = DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_conv_until_1855.csv"
    with trace.open() as f:
        reqs = list(csv.DictReader(f))[:2000]
    p = np.array(
        [0.020 + 0.0002 * int(r["ContextTokens"]) + 0.025 * int(r["GeneratedTokens"]) for r in reqs]
    )
    for m in (8, 16, 64):
        inst = MakespanInstance.identical(p, m, name=f"azure-conv-2000x{m}")
        lb = bounds.best(bounds.makespan_bounds(inst)).value
        for rule, kw in (("least-loaded", {}), ("target", {"target": lb * 1.02})):
            a = OnlineAssigner(m, rule=rule, **kw)
            a.assign_many(p)
            rows.append(
                {
                    "instance": inst.name,
                    "trial": "arrival-order",
                    "rule": rule,
                    "n": inst.n,
                    "m": m,
                    "makespan": a.makespan,
                    "lower_bound": lb,
                    "ratio_to_bound": a.makespan / lb,
                }
            )
    path = _write("online.csv", rows)
    for rule in ("least-loaded", "target"):
        rs = [r["ratio_to_bound"] for r in rows if r["rule"] == rule]
        print(
            f"{rule:14s} ratio to offline bound: "
            f"median {statistics.median(rs):.4f}, max {max(rs):.4f}"
        )
    print(f"-> {path}")


def _plain_row(task: tuple[str, int, str, float]) -> dict:
    """One generated instance solved by a plain model: ``cbc`` (the assignment MILP of
    ``_plain_cbc``) or ``cpsat`` (``exact.cpsat_binpacking`` over FFD's bins, one
    worker, no bound and no warm start)."""
    from optkit.packing import BinPackingInstance, classes

    name, seed, model, time_limit = task
    g = classes.generate(name, seed)
    inst = BinPackingInstance(float(g.capacity), g.sizes.astype(float))
    if model == "cbc":
        got = _plain_cbc(inst, time_limit)
        status, obj, dt = got["cbc_status"], got["cbc_objective"], got["cbc_runtime_s"]
    else:
        upper = int(heuristics.first_fit_decreasing(inst).max() + 1)
        t0 = time.perf_counter()
        if inst.n * upper > 2_000_000:
            status, obj = "too_large", None
        else:
            out = exact.cpsat_binpacking(inst, SolverOptions(time_limit), upper)
            status = out.status
            obj = check_binpacking(inst, out.plan)[0] if out.plan is not None else None
        dt = round(time.perf_counter() - t0, 3)
    if g.optimum is not None and obj is not None:
        assert obj >= g.optimum - 1e-6, "objective below the optimum"
    return {
        "class": name,
        "seed": seed,
        "model": model,
        "status": status,
        "objective": obj,
        "runtime_s": dt,
    }


def curves(
    time_limit: float, per_class: int, workers: int, only: list[str] | None, reuse: bool = False
) -> None:
    """Time-to-optimality per class: ``auto`` (from classes_<limit>s.csv, the same seeds)
    beside the plain CBC and CP-SAT models run here (``reuse``: read from the last
    curves_<limit>s.csv instead); CSV and one panel per class."""
    from optkit.packing import classes
    from optkit.plot import share_solved

    names = only or list(classes.CLASSES)
    with open(RESULTS / f"classes_{time_limit:g}s.csv") as f:
        auto = [r for r in csv.DictReader(f) if int(r["seed"]) < per_class]
    tasks = [
        (c, s, m, time_limit) for c in names for s in range(per_class) for m in ("cbc", "cpsat")
    ]
    if reuse:
        with open(RESULTS / f"curves_{time_limit:g}s.csv") as f:
            rows = [
                {**r, "seed": int(r["seed"]), "runtime_s": float(r["runtime_s"])}
                for r in csv.DictReader(f)
            ]
    else:
        rows = _pooled(
            _plain_row,
            tasks,
            workers,
            lambda row: (
                f"{row['class']:13s} seed {row['seed']:3d} {row['model']:6s} "
                f"{row['status']:10s} {row['objective']!s:>7} {row['runtime_s']:6.2f}s"
            ),
        )
        _write(f"curves_{time_limit:g}s.csv", rows)
    panels: dict[str, dict[str, list[float | None]]] = {}
    for c in names:
        a = [
            float(r["wall_s"]) if r["status"] == "OPTIMAL" else None
            for r in auto
            if r["class"] == c
        ]
        panels[c] = {"optkit auto": a}
        for m, label in (("cbc", "PuLP + CBC"), ("cpsat", "CP-SAT")):
            panels[c][label] = [
                r["runtime_s"] if r["status"] == "optimal" else None
                for r in rows
                if r["class"] == c and r["model"] == m and r["seed"] < per_class
            ]
        print(c, {k: f"{sum(t is not None for t in v)}/{len(v)}" for k, v in panels[c].items()})
    share_solved(
        panels,
        time_limit,
        RESULTS / f"curves_{time_limit:g}s.png",
        f"proven optimal within t s (limit {time_limit:g} s, {per_class} per class)",
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["scale", "classic", "classes", "curves", "online", "all"],
    )
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N classic instances")
    ap.add_argument("--no-cbc", action="store_true", help="skip the plain CBC MILP comparison")
    ap.add_argument("--workers", type=int, default=2, help="solves run at the same time")
    ap.add_argument("--offset", type=int, default=0, help="skip the first N classic instances")
    ap.add_argument("--per-class", type=int, default=20, help="generated instances per class")
    ap.add_argument("--classes", nargs="*", default=None, help="only these generated classes")
    ap.add_argument("--reuse", action="store_true", help="curves: plot the last CBC/CP-SAT runs")
    a = ap.parse_args()
    if a.what in ("scale", "all"):
        scale()
    if a.what in ("online", "all"):
        online()
    if a.what in ("classic", "all"):
        classic(a.time_limit, a.limit, not a.no_cbc, a.workers, a.offset)
    if a.what in ("classes", "all"):
        generated(a.time_limit, a.per_class, a.workers, a.classes)
    if a.what in ("curves", "all"):
        curves(a.time_limit, min(a.per_class, 10), a.workers, a.classes, a.reuse)


if __name__ == "__main__":
    main()
