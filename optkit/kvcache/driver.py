"""solve / bound / simulate entry points with the shared Result and the CLI contracts."""

from __future__ import annotations

import dataclasses
import time
from contextlib import suppress

from optkit.io import Refused
from optkit.kvcache.bounds import bounds
from optkit.kvcache.check import check
from optkit.kvcache.exact import MILP_MAX_VARIABLES, check_size, milp, model_size
from optkit.kvcache.instance import KvInstance
from optkit.kvcache.plan import KvPlan
from optkit.kvcache.policies import make
from optkit.kvcache.simulate import Replay, replay
from optkit.kvcache.trace import CsrTrace
from optkit.result import Result, Verdict, best_bound, finalize
from optkit.solvers import OutOfTime, SolverOptions, TooLarge

#: ``solve --method``: auto, milp, or one online policy replayed.
POLICY_METHODS = ("static", "reactive", "page", "heavy-hitter", "balanced", "belady", "oracle")
ORACLES = ("belady", "oracle")  # need the future: an explicit (CSR) trace
METHODS = ("auto", "milp", *POLICY_METHODS)
#: the order ``auto`` tries the policies in under a time limit: the usually best first
AUTO_ORDER = ("heavy-hitter", "reactive", "balanced", "belady", "oracle", "page", "static")


def replay_plan(inst: KvInstance, rep: Replay) -> KvPlan:
    """A replay's recorded moves with unit ids (the plan ``check`` reads)."""
    assert rep.moves is not None
    L = inst.layers
    return KvPlan.of(
        [
            (inst.creation_index(t % L, pro), inst.creation_index(t % L, dem), new)
            for t, (pro, dem, new) in enumerate(rep.moves)
        ]
    )


def unsupported(inst: KvInstance, method: str) -> str:
    """Why ``method`` cannot solve ``inst`` ('' when it can)."""
    if method not in METHODS:
        return f"method {method!r} does not apply to kv_placement; expected one of " + ", ".join(
            METHODS
        )
    if method == "milp":
        try:
            check_size(inst)
        except TooLarge as e:
            return f"method 'milp': {e}"
    if method in ORACLES and not isinstance(inst.trace, CsrTrace):
        return (
            f"method {method!r}: the oracle needs the whole trace in memory; "
            "this instance generates its trace (use a .npz or inline trace)"
        )
    return ""


#: Without a time limit ``auto`` runs the MILP only on models this small (it may take long).
AUTO_MILP_UNTIMED = 20_000
#: Generated traces up to this many reads are held in memory by ``solve`` (int32: 4 B each).
MATERIALIZE_READS = 20_000_000


def solve(
    inst: KvInstance,
    method: str = "auto",
    options: SolverOptions | None = None,
    backend: str = "highs",
) -> Result:
    """The best verified plan with the best proven bound.

    ``auto``: every online policy (and Belady when the trace is explicit), plus the
    MILP when it is small enough; ``milp``: the MILP alone (refused above
    :data:`~optkit.kvcache.exact.MILP_MAX_VARIABLES`); a policy name: that policy.
    A generated trace of at most :data:`MATERIALIZE_READS` reads is generated once.
    """
    if method not in METHODS:
        raise Refused(f"unknown method {method!r} for kv_placement; expected {', '.join(METHODS)}")
    opts = options or SolverOptions()
    clock = opts.deadline()
    generated = not isinstance(inst.trace, CsrTrace)
    many = method == "auto" or method in ORACLES  # several replays, or one that reads ahead
    if many and generated and inst.trace.counts().sum() <= MATERIALIZE_READS:
        # every candidate is replayed: generate the trace once, not once per candidate
        # (within a fifth of the limit; else the candidates generate it as they go)
        with suppress(OutOfTime):
            stop = clock.slice(0.2)
            inst = dataclasses.replace(inst, trace=inst.trace.materialize(stop.check))
    lp_s = clock.part(0.3)  # None: no limit given
    bound = best_bound(bounds(inst, "auto", 60.0 if lp_s is None else max(0.01, lp_s)))
    log: list[str] = [f"bound {bound.kind} = {bound.value:.6g}"]
    # Policies first (fast incumbents), ranked by their replay's total; the checker then
    # verifies the winner. The first is checked at once, which measures what a check
    # costs: a further policy runs only while its replay and the final check fit.
    ranked: list[tuple[float, str, KvPlan]] = []
    verdicts: dict[str, Verdict] = {}
    check_s = replay_s = 0.0
    if method != "milp":
        names = [method] if method != "auto" else list(AUTO_ORDER)
        if method == "auto" and generated:
            names = [n for n in names if n not in ORACLES]
        for name in names:
            if ranked and not clock.fits(replay_s + check_s):
                log.append(f"{name}: skipped (time limit)")
                continue
            t = time.perf_counter()
            try:  # a replay or check still running at the limit is stopped
                rep = replay(inst, make(name), record=True, progress=clock.check)
                plan = replay_plan(inst, rep)
                replay_s = time.perf_counter() - t
                if not ranked:
                    verdicts[name] = check(inst, plan, progress=clock.check)
                    check_s = time.perf_counter() - t - replay_s
            except OutOfTime:
                log.append(f"{name}: stopped at the time limit")
                break
            ranked.append((rep.total_time, name, plan))
    # the best policy plan that verifies, before the MILP spends the time left
    obj: float | None = None
    name, best = method, None
    violations: tuple[str, ...] = ()
    for _, cand, plan in sorted(ranked, key=lambda x: x[0]):
        try:
            v = verdicts.get(cand) or check(inst, plan, progress=clock.check)
        except OutOfTime:  # no time to verify it: the next verified candidate stands
            log.append(f"{cand}: not verified (time limit)")
            continue
        log.append(f"{cand}: {v.objective:.6g}" + (f" ({v.violations[0]})" if not v.valid else ""))
        if v.valid or best is None:
            obj, name, best, violations = v.objective, cand, plan, v.violations
        if v.valid:
            break
    milp_bound = None
    most = MILP_MAX_VARIABLES if opts.time_limit_s is not None else AUTO_MILP_UNTIMED
    if method == "milp" or (method == "auto" and model_size(inst) <= most and clock.fits(0.5)):
        # the time left, less its plan's check; the verified policy plan is the MILP's
        # first incumbent, so the MILP can only improve on it
        left = clock.options(opts)
        if left.time_limit_s is not None:
            left = dataclasses.replace(
                left, time_limit_s=max(0.05, left.time_limit_s - check_s - 0.1)
            )
        out = milp(inst, left, backend, start=best if not violations else None)
        milp_bound = out.bound
        log.append(f"milp {out.status}, bound {out.bound:.6g}")
        if out.moves is not None:
            plan = KvPlan.of(out.moves)
            v = check(inst, plan)
            log.append(
                f"milp: {v.objective:.6g}" + (f" ({v.violations[0]})" if not v.valid else "")
            )
            if v.valid and (obj is None or violations or v.objective < obj):
                obj, name, best, violations = v.objective, "milp", plan, ()
    return finalize(
        objective=obj,
        bound=bound.value,
        more_bounds=[] if milp_bound is None else [(f"{backend} dual bound", milp_bound)],
        plan=best,
        violations=violations,
        runtime_s=clock.elapsed(),
        solver=backend if name == "milp" else "replay",
        method=f"auto:{name}" if method == "auto" else method,
        log=tuple(log),
        atol=time_floor(inst),
    )


def time_floor(inst: KvInstance) -> float:
    """The absolute floor of the optimality test (``result.tolerance``): a millionth of
    the shortest time one unit's transfer can take (over HBM plus every link at once),
    so no change of the objective a plan can make is ever below it."""
    rate = inst.tiers[0].bandwidth + inst.external_rate
    return 1e-6 * inst.unit_bytes / rate
