"""solve / simulate entry points returning the shared Result and the simulate contract."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from optkit.io import Refused
from optkit.result import Result, finalize, meets
from optkit.serving.bounds import lower_bound
from optkit.serving.check import check
from optkit.serving.heuristics import packing_assignment
from optkit.serving.improve import local_search
from optkit.serving.instance import ServingInstance
from optkit.serving.mip import MIP_MAX_VARIABLES, check_size, model_size, solve_mip
from optkit.serving.policies import SCHEDULERS, FixedPlan, Hybrid, Sarathi, Scheduler
from optkit.serving.simulate import SimResult, simulate
from optkit.solvers import MILP_BACKENDS, SolverOptions

METHODS = ("auto", "plan", "fcfs", "sarathi", "hybrid", "mip")
PLAN_ORDERS = ("output-desc", "prompt")  # the plan's hybrid runs with each order
IMPROVE_S = 10.0  # local search on the assignment without a time limit


def metrics(inst: ServingInstance, res: SimResult) -> dict[str, float]:
    """The measures of formulations/serving.md, as a flat dict."""
    T = res.makespan
    m = inst.clients
    ttft = res.first_token - inst.arrival
    steps = inst.output - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(steps > 0, (res.finish - res.first_token) / np.maximum(steps, 1), np.nan)
    tpot = tpot[~np.isnan(tpot)]
    out = {
        "makespan_s": T,
        "utilization_busy": sum(c.busy_s for c in res.clients) / (m * T) if T else 0.0,
        "utilization_slots": sum(c.slot_s for c in res.clients) / (m * inst.max_batch * T)
        if T
        else 0.0,
        "throughput_tok_s": float(inst.output.sum()) / T if T else 0.0,
        "iterations": float(sum(c.iterations for c in res.clients)),
    }
    for name, arr in (("ttft", ttft), ("tpot", tpot)):
        if len(arr):
            out[f"{name}_mean_s"] = float(np.mean(arr))
            for q in (50, 90, 99):
                out[f"{name}_p{q}_s"] = float(np.percentile(arr, q))
    return out


def _finalize(
    inst: ServingInstance,
    res: SimResult,
    bound: float,
    method: str,
    t0: float,
    solver: str = "simulator",
    log: tuple[str, ...] = (),
    more_bounds: tuple[tuple[str, float], ...] = (),
) -> Result:
    schedule = res.schedule
    verdict = check(inst, schedule)
    return finalize(
        objective=verdict.objective,
        bound=bound,
        more_bounds=more_bounds,
        plan=schedule,
        violations=verdict.violations,
        runtime_s=time.perf_counter() - t0,
        solver=solver,
        method=method,
        log=log,
    )


def _factory(cls: Callable[..., Scheduler], **kwargs: object) -> Callable[[int], Scheduler]:
    """A scheduler per client, all alike."""
    return lambda i: cls(**kwargs)


def solve(
    inst: ServingInstance,
    method: str = "auto",
    options: SolverOptions | None = None,
    backend: str = "highs",
) -> Result:
    """A schedule and its makespan, with T^LB and the gap.

    ``plan``: packing assignment of the workloads, then the hybrid scheduler (longest
    output first and shortest prompt first), then local search on the assignment of
    the better one (``improve.local_search``) for the time left (IMPROVE_S without a
    limit); ``fcfs`` / ``sarathi`` / ``hybrid``: online dispatch and that scheduler;
    ``mip``: the exact MIP (small instances), started from the best schedule;
    ``auto``: the best of all of these (every candidate simulated and checked) and
    its local search, then the MIP with the time left when the gap is open and the
    model is small enough.
    """
    if method not in METHODS:
        raise Refused(f"unknown method {method!r} for serving; expected {', '.join(METHODS)}")
    if backend not in MILP_BACKENDS:
        raise Refused(
            f"solver: expected one of {', '.join(MILP_BACKENDS)} for the serving MIP, "
            f"got {backend!r}"
        )
    opts = options or SolverOptions()
    clock = opts.deadline()
    t0 = clock.start
    lb = lower_bound(inst)
    if method == "mip":
        check_size(inst)  # refuse before any work
    candidates: list[tuple[str, SimResult, Callable[[int], Scheduler]]] = []

    def run(label: str, make: Callable[[int], Scheduler], assign: np.ndarray | None) -> None:
        candidates.append((label, simulate(inst, make, assign, record=True), make))

    if method in ("auto", "plan", "mip"):
        limit = opts.time_limit_s if opts.time_limit_s is not None else 20.0
        assign, _ = packing_assignment(inst, max(1.0, limit / 4))
        for order in PLAN_ORDERS:
            run(f"plan:hybrid-{order}", _factory(Hybrid, order=order), assign)
        if method != "plan":
            run("plan:sarathi", _factory(Sarathi), assign)
    if method != "plan":
        names = (method,) if method in SCHEDULERS else tuple(SCHEDULERS)
        for n in names:
            run(n, _factory(SCHEDULERS[n]), None)
    name, best, make = min(candidates, key=lambda c: c[1].makespan)
    log: list[str] = []
    if method in ("auto", "plan") and not meets(best.makespan, lb.value):
        # the time left, up to IMPROVE_S without a limit, or half of it before a MIP
        share = 0.5 if method == "auto" and model_size(inst) <= MIP_MAX_VARIABLES else 1.0
        ls_clock = clock.slice(share, None if opts.time_limit_s is not None else IMPROVE_S)
        assign, moves = local_search(inst, best.assignment, make, ls_clock)
        if moves:
            res = simulate(inst, make, assign, record=True)
            if res.makespan < best.makespan:
                log.append(
                    f"local search: {moves} moves, {best.makespan:.6g} -> {res.makespan:.6g}"
                )
                best, name = res, f"{name}+ls"
    label = name if method in ("plan", *SCHEDULERS) else f"{method}:{name}"
    exact = method == "mip" or (method == "auto" and model_size(inst) <= MIP_MAX_VARIABLES)
    if not exact or meets(best.makespan, lb.value):
        return _finalize(inst, best, lb.value, label, t0, log=tuple(log))
    out = solve_mip(
        inst,
        clock.options(opts),
        backend,
        lower=lb.value,
        upper=best.makespan,
    )
    note = (*log, f"mip: {out.status}, dual bound {out.bound:.6g}")
    if out.plans is not None and out.assignment is not None:
        plans, assign = out.plans, out.assignment
        res = simulate(inst, lambda i: FixedPlan(plans.get(i, [])), assign, record=True)
        if res.makespan <= best.makespan:  # never worse than the schedule it started from
            best, label = res, "mip" if method == "mip" else "auto:mip"
    dual = ((f"{out.solver} dual bound", out.bound),)
    return _finalize(inst, best, lb.value, label, t0, out.solver, note, dual)
