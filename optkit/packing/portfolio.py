"""``solve`` for makespan scheduling and bin packing: single methods and ``auto``.

``auto`` runs the bounds and heuristics first and stops as soon as they meet;
otherwise it runs the strongest exact method for the instance class with the
time that is left, warm-started with the best heuristic plan, and returns the
best verified plan with the best proven bound. It is never worse than the
heuristic it started from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from optkit.io import Refused
from optkit.packing import arcflow, exact, heuristics
from optkit.packing.dive import DiveOutcome, dive
from optkit.packing.driver import Instance, all_bounds, lp_bound, raw_check, unsupported
from optkit.packing.instance import BinPackingInstance, MakespanInstance
from optkit.packing.mbs import bins_to_machines, perturbed_mbs
from optkit.packing.patterns import pattern_packing
from optkit.result import Result, best_bound, finalize, meets
from optkit.solvers import (
    CHILD_REPLY_S,
    MILP_BACKENDS,
    Deadline,
    SolverOptions,
    call_with_deadline,
    require,
)

EXACT_METHODS = ("milp", "cpsat", "arcflow", "bnp")


def _heuristic_plans(
    inst: Instance, method: str, budget_s: float, target: float, seed: int
) -> list[tuple[str, np.ndarray, float]]:
    """(name, plan, checked objective) of the heuristic ``method`` asks for; for
    ``auto``, ``local`` and the exact methods (warm starts), every heuristic that
    scales, plus local search on the best."""
    portfolio = method in ("auto", "local", *EXACT_METHODS)

    def wanted(name: str, scales: bool = True) -> bool:
        return method == name or (portfolio and scales)

    out: list[tuple[str, np.ndarray, float]] = []

    def add(name: str, plan: np.ndarray) -> None:
        out.append((name, plan, _objective(inst, plan)))

    def open_gap() -> bool:  # no plan so far meets the bound
        return method == "mbs" or not any(meets(obj, target) for _, _, obj in out)

    if isinstance(inst, BinPackingInstance):
        if wanted("ffd"):
            add("ffd", heuristics.first_fit_decreasing(inst))
        if wanted("bfd"):
            add("bfd", heuristics.best_fit_decreasing(inst))
        if wanted("mbs", inst.integral and inst.n <= 20_000) and open_gap():
            sizes = np.asarray(inst.sizes, dtype=np.int64)
            goal = math.ceil(target - 1e-9)
            add("mbs", perturbed_mbs(sizes, int(inst.capacity), goal, budget_s, seed))
        return out
    identical = inst.kind == "identical"
    if wanted("lpt"):
        add("lpt", heuristics.lpt(inst))
    if identical and wanted("multifit", inst.n * inst.m <= 5_000_000):
        add("multifit", heuristics.multifit(inst))
    if identical and wanted("kk", inst.n <= 20_000 and inst.m <= 200):
        add("kk", heuristics.karmarkar_karp(inst))
    if identical and inst.integral and wanted("mbs", inst.n <= 20_000) and open_gap():
        # a packing of the jobs into m bins of capacity ceil(bound) is an optimal plan
        p = np.asarray(inst.durations, dtype=np.int64)
        plan = perturbed_mbs(p, math.ceil(target - 1e-9), inst.m, budget_s, seed)
        if plan.max() < inst.m:
            add("mbs", plan)
        elif method == "mbs":  # asked for by name: the best of it, bins folded onto m
            add("mbs", bins_to_machines(p, plan, inst.m))
    if portfolio and inst.n * inst.m <= 50_000_000:
        name, plan, _ = min(out, key=lambda c: c[2])
        add(f"{name}+ls", heuristics.local_search(inst, plan, budget_s, target, seed))
    return out


def _objective(inst: Instance, plan: np.ndarray) -> float:
    return raw_check(inst, plan)[0]


def solve(
    inst: Instance,
    method: str = "auto",
    options: SolverOptions | None = None,
    backend: str | None = None,
    warm_start: Sequence[int] | None = None,
    log: Callable[[str], None] | None = None,
) -> Result:
    """Solve a makespan or bin-packing instance; the plan is verified by ``check``.

    ``method``: see :data:`MAKESPAN_METHODS` / :data:`BINPACKING_METHODS`.
    ``backend``: back-end for ``milp`` (highs, cbc, scip) or the exact stage of
    ``auto`` (highs, cbc, scip, cpsat). The time limit covers the whole call.
    """
    opts = options or SolverOptions()
    solver = backend
    why = unsupported(inst, method)
    if why:
        raise Refused(why)
    factor, norm = inst.normal_form() if inst.n else (1.0, inst)
    if factor != 1.0:
        return _solve_scaled(inst, norm, factor, method, solver, opts, warm_start, log)
    if solver is not None:
        require(solver)
    clock = opts.deadline()  # one budget for the whole call; each stage takes a slice
    elapsed = clock.elapsed
    lines: list[str] = []

    def say(msg: str) -> None:
        lines.append(msg)
        if log is not None:
            log(msg)

    reason = inst.infeasibility()
    if reason:
        return finalize(
            objective=None,
            bound=None,
            plan=None,
            violations=[],
            runtime_s=elapsed(),
            solver="none",
            method=method,
            infeasible_reason=reason,
        )
    whole = clock.limit_s  # shares of the whole budget, at the start
    bnds = all_bounds(inst, min(5.0, 0.2 * whole) if whole else 5.0)
    lb = best_bound(bnds)
    say("bounds: " + ", ".join(f"{b.kind}={b.value:g}" for b in bnds))

    # Heuristics (and the warm start the user gave).
    ls_budget = min(2.0, 0.1 * whole) if whole else 2.0
    cands = _heuristic_plans(inst, method, ls_budget, lb.value, opts.seed)
    if warm_start is not None:
        ws = np.asarray(warm_start, dtype=np.int64)
        obj, viol = raw_check(inst, ws)
        if viol:
            raise Refused("warm start fails check(): " + "; ".join(viol[:3]))
        cands.append(("warm", ws, obj))
    for name, _, obj in cands:
        say(f"heuristic {name}: {obj:g}")
    best_name, best_plan, best_obj = min(cands, key=lambda x: x[2])
    lower = lb.value
    used_solver, used_method = "heuristic", f"{method}:{best_name}" if method == "auto" else method

    if method == "auto" and not meets(best_obj, lower) and not _by_bnp(inst, solver):
        found, proven = _packing_at_bound(inst, best_obj, lower, clock.slice(0.7), say)
        lower = max(lower, proven)
        if found is not None:
            best_name, best_plan = found
            best_obj = _objective(inst, best_plan)
            used_method = f"auto:{best_name}"
    need_exact = method in EXACT_METHODS or (method == "auto" and not meets(best_obj, lower))
    if need_exact and method == "auto" and _too_large(inst, best_obj):
        say("exact stage skipped: the model would be too large for this machine")
        need_exact = False
    if need_exact:
        stage = method if method != "auto" else _auto_exact(inst, solver, best_obj)
        backend = solver if stage == "milp" else ("cpsat" if stage == "cpsat" else "highs")
        if stage == "bnp":
            backend = "highs"
        if stage == "milp" and backend is None:
            backend = "highs"
        stage_opts = clock.options(opts)
        left = stage_opts.time_limit_s
        say(f"exact stage: {stage} ({backend}), {left if left is not None else 'no'} s left")
        out = _bounded_exact(
            inst, stage, backend or "highs", stage_opts, best_plan, lower, best_obj, say, method
        )
        lower = max(lower, out.bound)
        used_solver = out.solver
        used_method = f"auto:{stage}" if method == "auto" else stage
        if out.plan is not None:
            obj = _objective(inst, out.plan)
            say(f"exact {stage}: status {out.status}, objective {obj:g}, bound {out.bound:g}")
            if obj < best_obj - 1e-12:
                best_plan, best_obj = out.plan, obj
        else:
            say(f"exact {stage}: status {out.status}, bound {out.bound:g} {out.note}".rstrip())

    obj, viol = raw_check(inst, best_plan)
    return finalize(
        objective=obj,
        bound=lower,
        plan=tuple(int(v) for v in best_plan),
        violations=viol,
        runtime_s=elapsed(),
        solver=used_solver,
        method=used_method,
        log=tuple(lines),
    )


def _packing_at_bound(
    inst: Instance,
    best_obj: float,
    bound: float,
    clock: Deadline,
    say: Callable[[str], None],
) -> tuple[tuple[str, np.ndarray] | None, float]:
    """((name, plan) meeting the raised bound or None, proven bound) within ``clock``
    (the caller gives 70% of the time left; integral bin packing and identical P||Cmax).

    The LP raises the bound (P||Cmax: the search on C; bin packing: the dive's first
    LP); then, at the bound, the LP dive looks for a packing (up to 70% of what is
    left; an LP above the bound there raises it) and the low-waste pattern model
    looks for one or proves there is none, which raises the bound by one."""
    # a plan of value C: C bins of capacity W (bin packing), or m bins of capacity C
    if isinstance(inst, BinPackingInstance):
        if not inst.integral or inst.n > 20_000:
            return None, bound
        sizes, W = np.asarray(inst.sizes, dtype=np.int64), int(inst.capacity)
        search = W > arcflow.MAX_CAPACITY  # no dive, so no LP from it: column generation

        def shape(C: int) -> tuple[int, int]:
            return W, C
    else:
        if inst.kind != "identical" or not inst.integral or inst.n > 20_000:
            return None, bound
        sizes, m = np.asarray(inst.durations, dtype=np.int64), inst.m
        search = True  # the dive's LP at one C does not say which C to try next

        def shape(C: int) -> tuple[int, int]:
            return C, m

    budget = clock.part

    # start from the LP bound (up to 80% of the stage; one LP when the bound stands):
    # the dive and the pattern model are the tools at the bound, not for walking up to it
    lp = lp_bound(inst, bound, budget(0.8), best_obj) if search else None
    if lp is not None and lp.obtained and lp.value > bound:
        say(f"LP bound: {lp.value:g}")
        bound = lp.value
    target = math.ceil(bound - 1e-9)
    while target < best_obj - 1e-9:
        rem = budget(1.0)
        if rem is not None and rem <= 0.05:
            break
        capacity, bins = shape(target)
        try:
            dived = dive(sizes, capacity, bins, time_limit_s=budget(0.7))
            said = "found" if dived.plan is not None else "none"
        except arcflow.GraphTooLarge as e:
            dived, said = DiveOutcome(None), f"not run ({e})"
        if dived.refuted and dived.lp_value is not None:  # the LP exceeds the target
            if isinstance(inst, BinPackingInstance):  # its value is the bound
                target = math.ceil(dived.lp_value - 1e-6)
            else:  # the search on C above stopped short of the LP bound: go on with it
                lp = lp_bound(inst, target + 1, budget(0.5), best_obj)
                target = max(target + 1, math.ceil(lp.value - 1e-9) if lp.obtained else 0)
            say(f"LP bound: {target:g}")
            continue
        say(f"arc-flow LP dive at {target:g}: {said}")
        if dived.plan is not None:
            return ("dive", dived.plan), float(target)
        out = pattern_packing(sizes, capacity, bins, budget(1.0))
        say(f"low-waste patterns at {target:g}: {out.status} ({out.patterns:,} patterns)")
        if out.plan is not None:
            return ("patterns", out.plan), float(target)
        if not out.infeasible:
            break
        target += 1  # proven: no plan of value target
    return None, float(max(bound, target))


def _solve_scaled(
    inst: Instance,
    norm: Instance,
    factor: float,
    method: str,
    solver: str | None,
    opts: SolverOptions,
    warm_start: Sequence[int] | None,
    log: Callable[[str], None] | None,
) -> Result:
    """Solve ``norm`` (``inst`` times ``factor``: see ``unit_scale``), then scale back.

    The plan is re-checked on the original instance; a makespan bound is divided by
    the factor (a number of bins is unit-free). A bound that the rounding into the
    normal form moved above the verified objective is dropped by ``finalize``.
    """
    t0 = time.perf_counter()
    res = solve(norm, method, opts, solver, warm_start, log)
    per = factor if isinstance(inst, MakespanInstance) else 1.0
    bound = None if res.bound is None else res.bound / per
    if res.plan is None:
        return res.replace(bound=bound)
    obj, viol = raw_check(inst, res.plan)
    return finalize(
        objective=obj,
        bound=bound,
        plan=res.plan,
        violations=viol,
        runtime_s=time.perf_counter() - t0,
        solver=res.solver,
        method=res.method,
        log=(*res.log, f"solved in units of 1/{factor:g} of the instance's"),
    )


#: Largest assignment model (variables) the auto mode builds for CP-SAT or a MILP.
MAX_ASSIGNMENT_VARS = 300_000


def _by_bnp(inst: Instance, solver: str | None) -> bool:
    """``auto`` closes a bin-packing gap by branch-and-price (its root LP and dive
    replace the at-bound stage): integral sizes, at most 20,000 items, no back-end asked for."""
    return (
        isinstance(inst, BinPackingInstance)
        and inst.integral
        and inst.n <= 20_000
        and solver is None
    )


def _too_large(inst: Instance, ub: float) -> bool:
    """True when no exact method of ``auto`` fits: no arc-flow graph and a huge assignment model."""
    if _by_bnp(inst, None):
        return False
    if isinstance(inst, BinPackingInstance):
        if inst.integral and inst.capacity <= arcflow.MAX_CAPACITY:
            return False
        return inst.n * ub > MAX_ASSIGNMENT_VARS
    if inst.kind == "identical" and inst.integral and ub <= arcflow.MAX_CAPACITY // 4:
        return False
    return inst.n * inst.m > MAX_ASSIGNMENT_VARS


def _auto_exact(inst: Instance, solver: str | None, ub: float) -> str:
    """Pick the exact method ``auto`` falls back on for this instance class."""
    if solver in MILP_BACKENDS:
        return "milp"
    if solver == "cpsat":
        return "cpsat"
    if isinstance(inst, BinPackingInstance):
        if _by_bnp(inst, solver):
            return "bnp"
        if inst.integral and inst.capacity <= arcflow.MAX_CAPACITY:
            return "arcflow"
        return "cpsat" if inst.integral else "milp"
    if inst.kind == "identical" and inst.integral and ub <= arcflow.MAX_CAPACITY // 4:
        return "arcflow"
    if inst.integral:
        return "cpsat"
    return "milp"


#: Assignment models with more cells (jobs x machines or bins) than this take a second or more
#: to build in Python: with a time limit they are built and solved in a child.
BIG_MODEL_CELLS = 10_000


def _bounded_exact(
    inst: Instance,
    stage: str,
    backend: str,
    opts: SolverOptions,
    warm: np.ndarray,
    lb: float,
    ub: float,
    say: Callable[[str], None],
    method: str,
) -> exact.ExactOutcome:
    """:func:`_run_exact` held to its limit. The back-end gets the limit minus the time
    the model took to build (``exact.after_build``); a stage on an instance so big that
    building its model (assignment MILP, CP-SAT model, arc-flow graph) may outlast the
    limit runs in a forked child stopped at the limit (the stage then proves nothing;
    its progress lines are not kept). Small instances are not forked."""
    at_bound = method != "auto"
    limit = opts.time_limit_s
    bins = int(round(ub)) if isinstance(inst, BinPackingInstance) else inst.m
    big = inst.n * bins > BIG_MODEL_CELLS  # its MILP, CP-SAT model or arc-flow graph
    big &= stage != "bnp"  # it keeps to the clock itself (and a stopped child proves nothing)
    if not big or limit is None:
        return _run_exact(inst, stage, backend, opts, warm, lb, ub, say, at_bound)
    inner = replace(opts, time_limit_s=max(0.05, limit - CHILD_REPLY_S))  # time to answer
    got = call_with_deadline(
        lambda: _run_exact(inst, stage, backend, inner, warm, lb, ub, say, at_bound), limit
    )
    if got is None:
        say(f"exact {stage}: stopped at the time limit before it answered")
        return exact.ExactOutcome(None, lb, "time_limit", backend)
    return got


def _run_exact(
    inst: Instance,
    stage: str,
    backend: str,
    opts: SolverOptions,
    warm: np.ndarray,
    lb: float,
    ub: float,
    say: Callable[[str], None],
    at_bound: bool = True,
) -> exact.ExactOutcome:
    """Run exact method ``stage``; ``at_bound=False`` when ``auto``'s at-bound stage has
    already searched the arc-flow LP bound and dived at it (arc-flow skips both)."""
    if isinstance(inst, BinPackingInstance):
        upper = int(round(ub))
        if stage == "arcflow":
            if not inst.integral:
                raise ValueError("arc-flow needs integral sizes and capacity")
            progress: list[str] = []
            out = exact.arcflow_binpacking(inst, opts, upper, lb, warm, progress, at_bound)
            for line in progress:
                say(line)
            return out
        if stage == "bnp":
            if not inst.integral:
                raise ValueError("branch-and-price needs integral sizes and capacity")
            progress = []
            out = exact.bnp_binpacking(inst, opts, lb, warm, progress)
            for line in progress:
                say(line)
            return out
        if stage == "cpsat":
            return exact.cpsat_binpacking(inst, opts, upper, warm, lb)
        return exact.milp_binpacking(inst, backend, opts, upper, warm, lb)
    if stage == "arcflow":
        if not (inst.kind == "identical" and inst.integral):
            raise ValueError("arc-flow needs identical machines and integral durations")
        progress = []
        out = exact.arcflow_makespan(inst, opts, lb, ub, progress, warm, at_bound)
        for line in progress:
            say(line)
        if out.status == "too_large" and inst.integral:
            say(f"arc-flow: {out.note}; falling back to CP-SAT")
            return exact.cpsat_makespan(inst, opts, warm, out.bound, ub)
        return out
    if stage == "cpsat":
        return exact.cpsat_makespan(inst, opts, warm, lb, ub)
    return exact.milp_makespan(inst, backend, opts, warm, lb)
