"""solve / bound / simulate entry points with the shared Result and the CLI contracts."""

from __future__ import annotations

import dataclasses
import time
from typing import Any


from optkit.kvcache.bounds import bounds, unlimited_hbm
from optkit.kvcache.check import check
from optkit.kvcache.exact import MILP_MAX_VARIABLES, milp, model_size
from optkit.kvcache.instance import KvInstance
from optkit.kvcache.plan import KvPlan
from optkit.kvcache.policies import make
from optkit.kvcache.simulate import Replay, metrics, replay
from optkit.kvcache.trace import CsrTrace
from optkit.result import Bound, Result, best_bound, finalize
from optkit.solvers import SolverOptions

#: ``solve --method``: auto, milp, or one online policy replayed.
POLICY_METHODS = ("static", "reactive", "page", "heavy-hitter", "balanced", "belady", "oracle")
ORACLES = ("belady", "oracle")  # need the future: an explicit (CSR) trace
METHODS = ("auto", "milp", *POLICY_METHODS)


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
        return f"--method: expected {', '.join(METHODS)} for kv_placement, got {method!r}"
    if method in ORACLES and not isinstance(inst.trace, CsrTrace):
        return (
            f"--method {method}: the oracle needs the whole trace in memory; "
            "this instance generates its trace (use a .npz or inline trace)"
        )
    return ""


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
        raise ValueError(
            f"unknown method {method!r} for kv_placement; expected {', '.join(METHODS)}"
        )
    opts = options or SolverOptions()
    t0 = time.perf_counter()
    generated = not isinstance(inst.trace, CsrTrace)
    if generated and inst.trace.counts().sum() <= MATERIALIZE_READS:
        # every candidate is replayed and checked: generate the trace once, not twice
        # per candidate
        inst = dataclasses.replace(inst, trace=inst.trace.materialize())
    bound = best_bound(bounds(inst, "auto", opts.time_limit_s or 60.0))
    candidates: list[tuple[str, KvPlan]] = []
    log: list[str] = [f"bound {bound.kind} = {bound.value:.6g}"]
    milp_bound = None
    if method == "milp" or (method == "auto" and model_size(inst) <= MILP_MAX_VARIABLES):
        # the time limit covers the whole call: the MILP gets what the bounds left
        out = milp(
            inst,
            dataclasses.replace(opts, time_limit_s=opts.remaining(time.perf_counter() - t0)),
            backend,
        )
        milp_bound = out.bound
        log.append(f"milp {out.status}, bound {out.bound:.6g}")
        if out.moves is not None:
            candidates.append(("milp", KvPlan.of(out.moves)))
    if method != "milp":
        names = [method] if method != "auto" else list(POLICY_METHODS)
        if method == "auto" and generated:
            names = [n for n in names if n not in ORACLES]
        for name in names:
            rep = replay(inst, make(name), record=True)
            candidates.append((name, replay_plan(inst, rep)))
    scored: list[tuple[float, str, KvPlan, tuple[str, ...]]] = []
    for cand, moves in candidates:
        v = check(inst, moves)
        errs = v.violations
        log.append(f"{cand}: {v.objective:.6g}" + (f" ({errs[0]})" if errs else ""))
        scored.append((v.objective if not errs else float("inf"), cand, moves, errs))
    obj: float | None = None
    name, plan = method, None
    violations: tuple[str, ...] = ()
    if scored:
        obj, name, plan, violations = min(scored, key=lambda x: x[0])
    return finalize(
        objective=obj,
        bound=bound.value,
        more_bounds=[] if milp_bound is None else [(f"{backend} dual bound", milp_bound)],
        plan=plan,
        violations=violations,
        runtime_s=time.perf_counter() - t0,
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


def bound_report(
    inst: KvInstance, method: str = "auto", time_limit_s: float = 60.0
) -> tuple[Bound, list[Bound], float]:
    """(best bound, every bound, unlimited-HBM reference)."""
    bs = bounds(inst, method, time_limit_s)
    return best_bound(bs), bs, unlimited_hbm(inst)


def simulate_report(
    inst: KvInstance, policy: str, progress: Any = None, snapshot_bins: int = 0
) -> tuple[Replay, dict[str, Any]]:
    """The ``optkit simulate`` contract for one policy (bounds 1-2: they are cheap);
    ``snapshot_bins`` records placement snapshots for a heat map in the same replay."""
    t0 = time.perf_counter()
    rep = replay(inst, make(policy), progress=progress, snapshot_bins=snapshot_bins)
    b = best_bound(bounds(inst, "cheap"))
    m = metrics(inst, rep)
    m["unlimited_hbm_s"] = unlimited_hbm(inst)
    return rep, {
        "instance": inst.name,
        "problem": inst.problem,
        "policy": rep.policy,
        "objective": rep.total_time,
        "bound": b.value,
        "bound_kind": b.kind,
        "ratio_to_bound": rep.total_time / b.value if b.value > 0 else float("inf"),
        "metrics": m,
        "runtime_s": round(time.perf_counter() - t0, 6),
    }
