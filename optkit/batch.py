"""Solving many instances: in this process, a local process pool, or a Dask cluster.

Results come back in input order, so tables and JSON Lines are reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from optkit.io import Refused
from optkit.result import Result, Status
from optkit.solvers import SolverOptions


@dataclass(frozen=True)
class Job:
    """One solve: an instance object and how to solve it."""

    instance: Any
    method: str = "auto"
    solver: str | None = None
    options: SolverOptions = field(default_factory=SolverOptions)


def solve_job(job: Job) -> Result:
    """Solve one job through the registry (picklable for pools and Dask). A failure of
    one instance becomes an ERROR result with the reason, so a batch goes on; a refusal
    (:class:`~optkit.io.Refused`: a method that does not apply, a model too large) is
    raised: it is the caller's input, and ``Problem.unsupported`` tells it in advance."""
    import time

    from optkit import problems

    t0 = time.perf_counter()
    try:
        return problems.of(job.instance).solve(job.instance, job.method, job.options, job.solver)
    except Refused:
        raise
    except Exception as e:
        return Result(
            Status.ERROR,
            None,
            None,
            time.perf_counter() - t0,
            job.solver or "none",
            job.method,
            reason=f"{e.__class__.__name__}: {e}",
        )


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
            yield from _on_dask(jobs, scheduler, bar)
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


#: Seconds to wait for a Dask scheduler to answer before refusing the address.
CONNECT_S = 10.0


def _on_dask(jobs: Sequence[Job], scheduler: str, bar: Any) -> Iterator[tuple[int, Result]]:
    """Jobs on a Dask cluster: a lost worker's job is retried once, then recorded as an
    ERROR row; results come back in input order."""
    from dask.distributed import Client

    limits = [j.options.time_limit_s for j in jobs if j.options.time_limit_s is not None]
    wait = min([CONNECT_S, *limits]) if limits else CONNECT_S  # never longer than a solve
    try:
        client = Client(scheduler, timeout=max(1.0, wait))
    except (OSError, TimeoutError) as e:
        raise Refused(f"cannot reach the Dask scheduler at {scheduler} ({e})") from None
    with client:
        futures = client.map(solve_job, list(jobs), pure=False, retries=1)
        for i, fut in enumerate(futures):
            try:
                res = fut.result()
            except Refused:
                raise
            except Exception as e:  # a lost worker, twice: record it, go on
                job = jobs[i]
                res = Result(
                    Status.ERROR,
                    None,
                    None,
                    0.0,
                    job.solver or "none",
                    job.method,
                    reason=f"{e.__class__.__name__}: {e}",
                )
            yield i, res
            _advance(bar)


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
