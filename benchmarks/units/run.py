"""Honesty in real units: wrong OPTIMAL claims and bounds above verified plans.

python benchmarks/units/run.py kv [--n 50]       # 50 random real-unit KV instances
python benchmarks/units/run.py makespan          # bundled makespan instances x 1e-6, 1, 1e6

For each KV instance (``optkit.kvcache.generate.small_random``: GH200 tiers, 16 KiB
units, objectives about 1e-6 s) it runs ``solve`` with auto, milp/HiGHS and milp/CBC
and the LP bound, then counts, against the best objective any method verified:
a wrong claim (OPTIMAL above it by more than 1e-6 relative), a bound above it, and
internal errors. Results in ``benchmarks/units/results/``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from optkit.io import read_instance, write_csv  # noqa: E402
from optkit.solvers import SolverOptions  # noqa: E402

RUNS = (("auto", "highs"), ("milp", "highs"), ("milp", "cbc"))


def kv(n: int, out: Path | None) -> list[dict[str, Any]]:
    from optkit.kvcache import bounds, solve
    from optkit.kvcache.generate import small_random

    rows = []
    for seed in range(n):
        inst = small_random(seed)
        row: dict[str, Any] = {"seed": seed}
        verified: list[float] = []
        claims: list[tuple[str, float, float]] = []
        errors = 0
        for method, backend in RUNS:
            tag = f"{method}_{backend}"
            row.update({f"{tag}_objective": None, f"{tag}_bound": None})
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = solve(inst, method, SolverOptions(time_limit_s=20), backend=backend)
            except Exception as e:  # an internal error is what we count
                errors += 1
                row[f"{tag}_status"] = f"error: {e}"[:60]
                continue
            row[f"{tag}_status"] = r.status.value
            row[f"{tag}_objective"] = r.objective
            row[f"{tag}_bound"] = r.bound
            if r.objective is not None:
                verified.append(r.objective)
            if r.bound is not None:
                claims.append(
                    (tag, r.bound, r.objective if r.status.value == "OPTIMAL" else math.nan)
                )
        lp = {b.kind: b.value for b in bounds(inst, "lp", 20)}.get("lp")
        row["lp_bound"] = lp
        best = min(verified) if verified else math.inf
        tol = 1e-6 * best
        wrong_opt = sum(1 for _, _, o in claims if not math.isnan(o) and o > best + tol)
        bad_bounds = sum(1 for _, b, _ in claims if b > best + tol)
        bad_bounds += int(lp is not None and (lp > best + tol or lp < 0))
        row.update(best=best, wrong_optimal=wrong_opt, bad_bounds=bad_bounds, errors=errors)
        rows.append(row)
        print(
            f"seed {seed}: best {best:.6g} wrong OPTIMAL {wrong_opt} bad bounds {bad_bounds} "
            f"errors {errors}",
            flush=True,
        )
    total = {k: sum(r[k] for r in rows) for k in ("wrong_optimal", "bad_bounds", "errors")}
    print(f"{n} instances: {total}")
    if out is not None:
        write_csv(out, rows)
        print(f"wrote {out}")
    return rows


def makespan(out: Path | None) -> list[dict[str, Any]]:
    from optkit.packing import solve

    rows = []
    root = HERE.parents[1] / "instances" / "packing"
    for name in ("uniform-3speeds", "azure-conv-200x8", "class4-n40-m20"):
        base = read_instance(root / f"{name}.json")
        for factor in (1e-6, 1.0, 1e6):
            d = base.durations * factor if base.durations is not None else None
            inst = base.replace(durations=d)
            t0 = time.perf_counter()
            r = solve(inst, "auto", options=SolverOptions(time_limit_s=10))
            rows.append(
                {
                    "instance": name,
                    "factor": factor,
                    "status": r.status.value,
                    "objective_unscaled": r.objective / factor if r.objective else None,
                    "bound_unscaled": r.bound / factor if r.bound else None,
                    "gap": r.gap,
                    "runtime_s": round(time.perf_counter() - t0, 3),
                }
            )
            print(rows[-1], flush=True)
    if out is not None:
        write_csv(out, rows)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("kv", "makespan", "all"))
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--out", type=Path, default=None, help="CSV path (default: results/)")
    a = ap.parse_args()
    res = HERE / "results"
    if a.what in ("kv", "all"):
        kv(a.n, a.out or res / "kv_claims.csv")
    if a.what in ("makespan", "all"):
        makespan(a.out or res / "makespan_scaling.csv")


if __name__ == "__main__":
    main()
