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
from optkit.solvers import MILP_BACKENDS, Deadline, SolverOptions

METHODS = ("auto", "plan", "fcfs", "sarathi", "hybrid", "mip")
PLAN_ORDERS = ("output-desc", "prompt")  # the plan's hybrid runs with each order
IMPROVE_S = 10.0  # local search on the assignment without a time limit
CHECK_SHARE = 0.5  # check() of a schedule takes at most about this share of its simulation


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
    if all(c.schedule or not c.iterations for c in res.clients):  # recorded: where time goes
        from optkit.serving.report import breakdown

        out |= breakdown(inst, res.schedule)
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
    runs: list[tuple[str, Callable[[int], Scheduler], str]] = []  # label, factory, assignment
    if method in ("auto", "plan", "mip"):
        runs.append(
            (f"plan:hybrid-{PLAN_ORDERS[0]}", _factory(Hybrid, order=PLAN_ORDERS[0]), "plan")
        )
    if method != "plan":
        names = (method,) if method in SCHEDULERS else tuple(SCHEDULERS)
        runs += [(n, _factory(SCHEDULERS[n]), "online") for n in names]
        if "hybrid" in names:  # offline, every request is known: pacing may pay
            runs.append(("hybrid:paced", _factory(Hybrid, pace=True), "online"))
    if method in ("auto", "plan", "mip"):
        runs += [(f"plan:hybrid-{o}", _factory(Hybrid, order=o), "plan") for o in PLAN_ORDERS[1:]]
        if method != "plan":
            runs.append(("plan:sarathi", _factory(Sarathi), "plan"))
    assign: np.ndarray | None = None
    for label, make, where in runs:
        # each candidate costs about one simulation; the winner is checked at the end
        est = 1.5 * max((r.runtime_s for _, r, _ in candidates), default=0.0)
        if candidates and not clock.fits(est + CHECK_SHARE * est):
            break
        if where == "plan" and assign is None:
            left = clock.left()
            limit = 20.0 if left is None else left
            assign, _ = packing_assignment(inst, max(0.05, min(5.0, limit / 4)))
        res = simulate(inst, make, assign if where == "plan" else None, record=True)
        candidates.append((label, res, make))
    name, best, make = min(candidates, key=lambda c: c[1].makespan)
    log: list[str] = []
    if method in ("auto", "plan") and not meets(best.makespan, lb.value):
        # the time left, up to IMPROVE_S without a limit, or half of it before a MIP
        share = 0.5 if method == "auto" and model_size(inst) <= MIP_MAX_VARIABLES else 1.0
        left = clock.left()
        # the schedule found is simulated again, recorded and checked after the search
        final_s = 3 * max(r.runtime_s for _, r, _ in candidates)
        ls_clock = Deadline(IMPROVE_S if left is None else max(0.0, share * left - final_s))
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
