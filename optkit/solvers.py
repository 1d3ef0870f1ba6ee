"""Solver back-ends: which are available, and how time limits, threads and seeds reach them.

Back-end names used everywhere in optkit (CLI ``--solver``, ``Result.solver``):

- ``highs``  — HiGHS through PuLP (MILP default) or directly through highspy/scipy;
- ``cbc``    — COIN-OR CBC through PuLP (bundled with PuLP);
- ``scip``   — SCIP through PuLP's ``SCIP_PY`` (needs the optional ``pyscipopt``);
- ``cpsat``  — OR-Tools CP-SAT.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeVar

from optkit.io import Refused

T = TypeVar("T")

MILP_BACKENDS = ("highs", "cbc", "scip")
ALL_BACKENDS = (*MILP_BACKENDS, "cpsat")


class SolverUnavailable(Refused):
    """Raised when a requested back-end is not installed."""


class TooLarge(Refused):
    """A model is larger than the exact method accepts."""


def refuse_above(size: int, limit: int, model: str, hint: str) -> None:
    """Raise :class:`TooLarge` naming the size, the limit and what to do instead."""
    if size > limit:
        raise TooLarge(
            f"the {model} would have {size:,} variables, more than the limit of {limit:,} ({hint})"
        )


@dataclass(frozen=True)
class SolverOptions:
    """Limits shared by every back-end. ``time_limit_s=None`` means no limit."""

    time_limit_s: float | None = 60.0
    threads: int = 1
    seed: int = 0
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not 0 < self.time_limit_s < math.inf:
            raise ValueError(
                f"time limit: expected a finite number of seconds > 0, got {self.time_limit_s}"
            )
        if self.threads < 1:
            raise ValueError(f"threads: expected at least 1, got {self.threads}")
        if not 0 <= self.seed < 2**31:
            raise ValueError(f"seed: expected an integer in [0, 2^31), got {self.seed}")

    def remaining(self, elapsed_s: float) -> float | None:
        """Time left after ``elapsed_s`` seconds (at least 0.01 s), or None without a limit."""
        if self.time_limit_s is None:
            return None
        return max(0.01, self.time_limit_s - elapsed_s)

    def deadline(self) -> Deadline:
        """A deadline starting now, ``time_limit_s`` from now."""
        return Deadline(self.time_limit_s)


_IMPORTED = time.monotonic()


def process_age() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere: since optkit
    was imported). Time limits are promises from process start to the answer, so the
    command line takes this off the first limit."""
    import os

    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


class OutOfTime(Exception):
    """Raised by :meth:`Deadline.check` inside long loops (a replay, a check) to stop
    them at the limit; the caller keeps what it had verified before."""


class Deadline:
    """One wall-clock budget, passed down whole: a stage asks what is ``left()``, takes
    a ``slice`` of it, or turns it into the ``options`` of a back-end call."""

    def __init__(self, limit_s: float | None, start: float | None = None) -> None:
        self.limit_s = limit_s
        self.start = time.perf_counter() if start is None else start

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float | None:
        """Seconds left (>= 0), or None without a limit."""
        if self.limit_s is None:
            return None
        return max(0.0, self.limit_s - self.elapsed())

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0.0

    def check(self, *_: object) -> None:
        """Raise :class:`OutOfTime` when the deadline has passed (a progress callback)."""
        if self.expired():
            raise OutOfTime

    def fits(self, seconds: float) -> bool:
        """True when ``seconds`` more work ends before the deadline."""
        left = self.left()
        return left is None or seconds <= left

    def part(self, share: float) -> float | None:
        """``share`` of the time left, in seconds (None without a limit)."""
        left = self.left()
        return None if left is None else share * left

    def portion(self, share: float) -> float | None:
        """``share`` of the whole budget, but no more than is left (a stage's slice)."""
        left = self.left()
        return None if left is None or self.limit_s is None else min(left, share * self.limit_s)

    def slice(self, share: float, cap_s: float | None = None) -> Deadline:
        """A sub-deadline: ``share`` of what is left (at most ``cap_s``), never beyond this one."""
        left = self.left()
        limit = None if left is None else left * share
        if cap_s is not None:
            limit = cap_s if limit is None else min(limit, cap_s)
        return Deadline(limit)

    def options(self, opts: SolverOptions) -> SolverOptions:
        """``opts`` with the time left (at least 0.01 s) as its limit."""
        left = self.left()
        return replace(opts, time_limit_s=None if left is None else max(0.01, left))


@cache
def available() -> tuple[str, ...]:
    """Back-ends that can be used on this machine, in preference order."""
    found = []
    if importlib.util.find_spec("highspy") is not None:
        found.append("highs")
    try:
        import pulp

        if pulp.PULP_CBC_CMD(msg=False).available():
            found.append("cbc")
    except Exception:  # pragma: no cover - a broken PuLP install
        pass
    if importlib.util.find_spec("pyscipopt") is not None:
        found.append("scip")
    if importlib.util.find_spec("ortools") is not None:
        found.append("cpsat")
    return tuple(found)


def require(name: str) -> None:
    """Raise :class:`SolverUnavailable` with an install hint when ``name`` is missing."""
    if name not in ALL_BACKENDS:
        raise ValueError(f"unknown solver {name!r}; expected one of {', '.join(ALL_BACKENDS)}")
    if name not in available():
        hint = {"scip": "pip install 'optkit[scip]'"}.get(name, f"install the {name} back-end")
        raise SolverUnavailable(f"solver {name!r} is not available here ({hint}).")


def pulp_solver(
    name: str, opts: SolverOptions, time_limit_s: float | None = None, warm_start: bool = False
) -> Any:
    """A configured PuLP solver object for ``name`` in :data:`MILP_BACKENDS`.

    The relative gap is set to 1e-9, so an "optimal" status means proven optimal.
    ``warm_start`` passes the variables' initial values as a MIP start.
    """
    import pulp

    require(name)
    limit = opts.time_limit_s if time_limit_s is None else time_limit_s
    kw: dict[str, Any] = {"msg": opts.verbose, "threads": opts.threads, "gapRel": 1e-9}
    if limit is not None:
        kw["timeLimit"] = limit
    if name == "highs":
        new_highs()  # swallow the version banner before PuLP creates its own Highs
        solver = pulp.HiGHS(**_known_kwargs(pulp.HiGHS, {**kw, "random_seed": opts.seed}))
        solver.optionsDict["warmStart"] = warm_start
        return solver
    if name == "cbc":
        kw["options"] = [f"randomSeed {opts.seed + 1}"]
        return pulp.PULP_CBC_CMD(**kw, warmStart=warm_start)
    if name == "scip":
        return pulp.SCIP_PY(**_known_kwargs(pulp.SCIP_PY, {**kw, "warmStart": warm_start}))
    raise ValueError(f"{name!r} is not a MILP back-end; expected one of {MILP_BACKENDS}")


def _known_kwargs(cls: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """Keep keyword arguments the installed PuLP solver class accepts (versions differ)."""
    import inspect

    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kw
    return {k: v for k, v in kw.items() if k in params}


def cpsat_parameters(solver: Any, opts: SolverOptions, time_limit_s: float | None = None) -> None:
    """Apply limits to an ``ortools.sat.python.cp_model.CpSolver``."""
    limit = opts.time_limit_s if time_limit_s is None else time_limit_s
    if limit is not None:
        solver.parameters.max_time_in_seconds = float(limit)
    solver.parameters.num_workers = max(1, opts.threads)
    solver.parameters.random_seed = opts.seed
    solver.parameters.log_search_progress = opts.verbose


#: A back-end run by ``call_with_deadline`` is given its time limit minus this, and the
#: child is stopped at the limit plus this: time to send its incumbent back.
CHILD_REPLY_S = 0.25


def call_with_deadline(fn: Callable[[], T], deadline_s: float | None) -> T | None:
    """Run ``fn()`` in a forked child and return its result, or None if it overran.

    Some back-ends do not check their time limit in every phase (HiGHS' root
    cut loop can run for tens of seconds past it); a child process can be
    stopped for sure. The child is made with ``os.fork`` and answers through a
    pipe, not with ``multiprocessing``, so it also works where a process may not
    have ``multiprocessing`` children: Dask workers, daemonic pool workers.
    Without a deadline, or where fork is unavailable, ``fn`` runs in this process.
    """
    import os
    import pickle
    import select
    import sys

    if deadline_s is None or not hasattr(os, "fork"):
        return fn()
    if "highspy" in sys.modules:
        # HiGHS keeps a global thread pool; a child forked while it exists deadlocks.
        global _SCHEDULER_THREADS
        sys.modules["highspy"].Highs.resetGlobalScheduler(True)
        _SCHEDULER_THREADS = None
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer, then leave without running the parent's cleanup
        code = 0
        try:
            os.close(rfd)
            try:
                payload = pickle.dumps(("ok", fn()))
            except BaseException as e:  # report, never hang the parent
                payload = pickle.dumps(("error", f"{e.__class__.__name__}: {e}"))
            view = memoryview(payload)
            while view:
                view = view[os.write(wfd, view) :]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    stop = time.monotonic() + max(0.0, deadline_s)
    chunks: list[bytes] = []
    try:
        while True:
            left = stop - time.monotonic()
            if left <= 0 or not select.select([rfd], [], [], left)[0]:
                return None  # overran: the child is killed below
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        with suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    if not chunks:
        raise RuntimeError("solver process died without an answer")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise RuntimeError(f"solver process failed: {value}")
    return value


#: What an "optimal" CBC answer proves, relative to its objective (PuLP gives no dual
#: bound for CBC): its tolerances, not its 1e-9 gap, decide how close the optimum is.
CBC_CERTIFIED = 1e-5


def dual_bound(
    prob,
    backend: str,
    lower: float,
    integral: bool,
    optimal: bool,
    objective: float | None,
) -> float:
    """The best bound a back-end proved, read from the back-end itself.

    HiGHS and SCIP report their dual bound; CBC through PuLP does not, so for
    CBC only an optimal status (relative gap 1e-9) yields a bound.
    """
    bound = lower
    model = getattr(prob, "solverModel", None)
    try:
        if backend == "highs" and model is not None:
            b = float(model.getInfo().mip_dual_bound)
            # PuLP does not hand HiGHS the objective's constant: add it back
            b += float(getattr(getattr(prob, "objective", None), "constant", 0.0) or 0.0)
            if math.isfinite(b):
                bound = max(bound, b)
        elif backend == "scip" and model is not None:
            b = float(model.getDualbound())
            if math.isfinite(b):
                bound = max(bound, b)
    except Exception:  # a back-end version without the call: prove nothing extra
        pass
    if optimal and objective is not None and backend == "cbc":
        # CBC runs with a relative gap of 1e-9 (pulp_solver), but its "optimal" rests on
        # its feasibility and integrality tolerances too: on a serving MIP it stopped
        # 3e-6 (relative) above HiGHS's verified optimum. Only CBC_CERTIFIED is claimed.
        bound = max(bound, objective - CBC_CERTIFIED * abs(objective))
    if integral:
        bound = float(math.ceil(bound - 1e-6))
    return bound


@dataclass(frozen=True)
class PulpAnswer:
    status: str  # optimal | feasible | infeasible | time_limit
    objective: float | None  # of the solution found, when one was
    bound: float  # proven by the back-end (see dual_bound), at least ``lower``


def solve_pulp(
    prob: Any,
    backend: str,
    opts: SolverOptions,
    *,
    lower: float = 0.0,
    integral: bool = False,
    warm_start: bool = False,
    options: dict[str, Any] | None = None,
) -> PulpAnswer:
    """Solve a PuLP problem with ``backend``; its variables then hold the solution.

    HiGHS and SCIP run inside this process through PuLP and can overrun their
    time limit (HiGHS' root cut loop); with a limit they run in a forked child
    (:func:`call_with_deadline`) given the limit minus ``CHILD_REPLY_S`` and
    stopped that long after it; status, values (by name) and the dual bound come
    back. CBC is its own process with its own limit and runs directly.
    ``options``: extra back-end options (PuLP's ``optionsDict``).
    """
    import pulp

    limit = opts.time_limit_s
    deadline = None if limit is None or backend == "cbc" else limit + CHILD_REPLY_S
    in_child = deadline is not None
    own_limit = limit if deadline is None else max(0.05, deadline - 2 * CHILD_REPLY_S)
    solver = pulp_solver(backend, opts, time_limit_s=own_limit, warm_start=warm_start)
    solver.optionsDict.update(options or {})

    def run() -> tuple[int, int, float | None, float, dict[str, float | None]]:
        prob.solve(solver)
        feasible = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
        optimal = prob.sol_status == pulp.LpSolutionOptimal
        obj = pulp.value(prob.objective) if feasible else None
        bound = dual_bound(prob, backend, lower, integral, optimal, obj)
        values = {v.name: v.varValue for v in prob.variables()} if feasible else {}
        return prob.status, prob.sol_status, obj, bound, values

    if backend == "highs" and not in_child:
        highs_threads(None, opts.threads)  # PuLP's Highs runs in this process
    got = call_with_deadline(run, deadline) if in_child else run()
    if got is None:  # stopped: nothing came back, nothing is proven beyond ``lower``
        floor = dual_bound(None, backend, lower, integral, False, None)
        return PulpAnswer("time_limit", None, floor)
    status, sol_status, obj, bound, values = got
    if in_child:
        prob.status, prob.sol_status = status, sol_status
        for v in prob.variables():
            v.varValue = values.get(v.name)
    if status == pulp.LpStatusInfeasible:
        word = "infeasible"
    elif sol_status == pulp.LpSolutionOptimal:
        word = "optimal"
    elif sol_status == pulp.LpSolutionIntegerFeasible:
        word = "feasible"
    else:
        word = "time_limit"
    return PulpAnswer(word, None if obj is None else float(obj), bound)


def new_highs(threads: int = 1) -> Any:
    """A silent ``highspy.Highs`` on ``threads`` threads (the version banner is printed
    on the first construction)."""
    import highspy

    global _BANNER_DONE
    if not _BANNER_DONE:
        with _quiet_stdout():
            h = highspy.Highs()
        _BANNER_DONE = True
    else:
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    highs_threads(h, threads)
    return h


def highs_threads(h: Any, threads: int) -> None:
    """Give ``h`` (a ``highspy.Highs``, or None for one PuLP is about to make) ``threads``.

    HiGHS keeps one global thread scheduler, sized by the first run in the process;
    a later run whose ``threads`` option differs fails at once ("the scheduler has
    already been initialized") and reports no solution. Every Highs optkit runs in
    process goes through here, and the scheduler is reset when the count changes.
    """
    import highspy

    global _SCHEDULER_THREADS
    if _SCHEDULER_THREADS is not None and threads != _SCHEDULER_THREADS:
        highspy.Highs.resetGlobalScheduler(True)
    _SCHEDULER_THREADS = threads
    if h is not None:
        h.setOptionValue("threads", int(threads))


_BANNER_DONE = False
_SCHEDULER_THREADS: int | None = None  # the thread count HiGHS' global scheduler was sized for


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence fd 1 (C-level output) for the duration of the block."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def write_pulp(prob: Any, fmt: str, path: Any, note: str = "") -> str:
    """Write a PuLP problem as LP or MPS, atomically; returns ``note`` (or the model's size)."""
    from optkit.io import atomic_path

    with atomic_path(path, f".{fmt}") as tmp:
        if fmt == "lp":
            prob.writeLP(str(tmp))
        else:
            prob.writeMPS(str(tmp))
    return note or f"{len(prob.variables()):,} variables, {len(prob.constraints):,} constraints"
