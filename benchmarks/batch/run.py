"""Many solves: 200 instances on a Dask LocalCluster of 2 worker processes vs the local
process pool of 2 workers. Same results expected (status, objective, bound), and the
overhead per instance.

python benchmarks/batch/run.py [--n 200]

Instances: P||Cmax, 12-40 jobs on 2-6 machines (durations 1..100), and bin packing,
20-60 items of sizes 10..60 in bins of 100, generated with seeds 0..n-1, solved with
`auto` and a 5 s limit. Results: benchmarks/batch/results/batch.csv.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from optkit import batch  # noqa: E402
from optkit.io import write_csv  # noqa: E402
from optkit.packing import BinPackingInstance, MakespanInstance  # noqa: E402
from optkit.solvers import SolverOptions  # noqa: E402


def jobs(n: int) -> list[batch.Job]:
    out = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        if seed % 2:
            inst = BinPackingInstance(
                100, rng.integers(10, 61, rng.integers(20, 61)).astype(float), name=f"bpp{seed}"
            )
        else:
            p = rng.integers(1, 101, rng.integers(12, 41))
            inst = MakespanInstance.identical(p, int(rng.integers(2, 7)), name=f"pcmax{seed}")
        out.append(batch.Job(inst, options=SolverOptions(5)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    n = ap.parse_args().n
    from dask.distributed import LocalCluster

    t0 = time.perf_counter()
    pool = [r for _, r in batch.run(jobs(n), workers=2)]
    t_pool = time.perf_counter() - t0
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        t0 = time.perf_counter()
        dask = [r for _, r in batch.run(jobs(n), scheduler=cluster.scheduler_address)]
        t_dask = time.perf_counter() - t0
    same = sum(
        (a.status, a.objective, a.bound) == (b.status, b.objective, b.bound)
        for a, b in zip(pool, dask, strict=True)
    )
    solve_s = sum(r.runtime_s for r in pool)
    rows = [
        {
            "instances": n,
            "pool_wall_s": round(t_pool, 3),
            "dask_wall_s": round(t_dask, 3),
            "sum_solve_s": round(solve_s, 3),
            "dask_overhead_ms_per_instance": round(1e3 * (t_dask - t_pool) / n, 2),
            "same_results": same,
            "errors_dask": sum(r.status.value == "ERROR" for r in dask),
        }
    ]
    print(rows[0])
    write_csv(HERE / "results" / "batch.csv", rows)


if __name__ == "__main__":
    main()
