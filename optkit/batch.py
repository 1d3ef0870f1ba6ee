"""Solving many instances: in this process, a local process pool, or a Dask cluster.

Results come back in input order, so tables and JSON Lines are reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from optkit.result import Result
from optkit.solvers import SolverOptions


@dataclass(frozen=True)
class Job:
    """One solve: an instance object and how to solve it."""

    instance: Any
    method: str = "auto"
    solver: str | None = None
    options: SolverOptions = field(default_factory=SolverOptions)


def solve_job(job: Job) -> Result:
    """Solve one job with the instance's problem package (picklable for pools and Dask)."""
    problem = job.instance.problem
    if problem in ("makespan", "binpacking"):
        from optkit.packing import solve

        return solve(job.instance, job.method, job.solver, job.options)
    if problem == "serving":
        from optkit.serving import solve as serving_solve

        return serving_solve(job.instance, job.method, job.options, job.solver or "highs")
    if problem == "kv_placement":
        from optkit.kvcache import solve as kv_solve

        return kv_solve(job.instance, job.method, job.options, job.solver or "highs")
    raise ValueError(f"no solver for problem {problem!r}")


def run(
    jobs: Sequence[Job],
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
) -> Iterator[tuple[int, Result]]:
    """Yield ``(index, result)`` for every job, in input order.

    ``scheduler`` (a Dask scheduler address) sends the jobs to that cluster;
    otherwise ``workers > 1`` uses a local process pool.
    """
    bar = _progress(len(jobs)) if progress else None
    try:
        if scheduler is not None:
            from dask.distributed import Client

            with Client(scheduler) as client:
                futures = client.map(solve_job, list(jobs), pure=False)
                for i, fut in enumerate(futures):
                    yield i, fut.result()
                    _advance(bar)
        elif workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for i, res in enumerate(pool.map(solve_job, jobs)):
                    yield i, res
                    _advance(bar)
        else:
            for i, job in enumerate(jobs):
                yield i, solve_job(job)
                _advance(bar)
    finally:
        if bar is not None:
            bar.stop()


def _progress(total: int) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "solving",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    bar.start()
    bar.add_task("solve", total=total)
    return bar


def _advance(bar: Any) -> None:
    if bar is not None:
        bar.advance(bar.task_ids[0])
