"""solve / bound / simulate entry points with the shared Result and the CLI contracts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from optkit.kvcache.bounds import KvBound, best, bounds, unlimited_hbm
from optkit.kvcache.check import Plan, check
from optkit.kvcache.exact import MILP_MAX_VARIABLES, milp, model_size
from optkit.kvcache.instance import KvInstance
from optkit.kvcache.policies import make
from optkit.kvcache.simulate import Replay, metrics, replay
from optkit.kvcache.trace import CsrTrace
from optkit.result import Result, finalize
from optkit.solvers import SolverOptions

#: ``solve --method``: auto, milp, or one online policy replayed.
POLICY_METHODS = ("static", "reactive", "page", "heavy-hitter", "balanced", "belady", "oracle")
ORACLES = ("belady", "oracle")  # need the future: an explicit (CSR) trace
METHODS = ("auto", "milp", *POLICY_METHODS)


def replay_plan(inst: KvInstance, rep: Replay) -> Plan:
    """A replay's recorded moves with unit ids (the form ``check`` reads)."""
    assert rep.moves is not None
    L = inst.layers
    out = []
    for t, (pro, dem, new) in enumerate(rep.moves):
        layer = t % L
        out.append(
            (
                np.asarray(inst.creation_index(layer, pro), dtype=np.int64),
                np.asarray(inst.creation_index(layer, dem), dtype=np.int64),
                new,
            )
        )
    return out


def encode(plan: Plan) -> tuple[int, ...]:
    """Flat plan for ``Result.plan``: triples (step, op, unit), op 1 promote, 0 demote,
    2 new unit to HBM."""
    flat: list[int] = []
    for t, (pro, dem, new) in enumerate(plan):
        for u in pro:
            flat += [t, 1, int(u)]
        for u in dem:
            flat += [t, 0, int(u)]
        if new:
            flat += [t, 2, -1]
    return tuple(flat)


def decode_plan(inst: KvInstance, flat: Sequence[int]) -> Plan:
    """The inverse of :func:`encode`: per-step (promoted, demoted, new unit to HBM)."""
    if len(flat) % 3:
        raise ValueError(
            f"a KV plan is a list of (step, op, unit) triples; got {len(flat)} numbers"
        )
    pro: list[list[int]] = [[] for _ in range(inst.steps)]
    dem: list[list[int]] = [[] for _ in range(inst.steps)]
    new = [False] * inst.steps
    for i in range(0, len(flat), 3):
        t, op, u = (int(x) for x in flat[i : i + 3])
        if not 0 <= t < inst.steps or op not in (0, 1, 2):
            raise ValueError(f"plan[{i}:{i + 3}]: expected (step < {inst.steps}, op 0|1|2, unit)")
        if op == 2:
            new[t] = True
        else:
            (pro if op == 1 else dem)[t].append(u)
    return [
        (np.asarray(p, dtype=np.int64), np.asarray(d, dtype=np.int64), w)
        for p, d, w in zip(pro, dem, new, strict=True)
    ]


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
    bound = best(bounds(inst, "auto", opts.time_limit_s or 60.0))
    candidates: list[tuple[str, Plan]] = []
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
            candidates.append(("milp", out.moves))
    if method != "milp":
        names = [method] if method != "auto" else list(POLICY_METHODS)
        if method == "auto" and generated:
            names = [n for n in names if n not in ORACLES]
        for name in names:
            rep = replay(inst, make(name), record=True)
            candidates.append((name, replay_plan(inst, rep)))
    scored: list[tuple[float, str, Plan, list[str]]] = []
    for cand, moves in candidates:
        value, errs, _ = check(inst, moves)
        log.append(f"{cand}: {value:.6g}" + (f" ({errs[0]})" if errs else ""))
        scored.append((value if not errs else float("inf"), cand, moves, errs))
    obj: float | None = None
    name, plan = method, None
    violations: list[str] = []
    if scored:
        obj, name, plan, violations = min(scored, key=lambda x: x[0])
    return finalize(
        objective=obj,
        bound=bound.value,
        more_bounds=[] if milp_bound is None else [(f"{backend} dual bound", milp_bound)],
        plan=encode(plan) if plan is not None else None,
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
) -> tuple[KvBound, list[KvBound], float]:
    """(best bound, every bound, unlimited-HBM reference)."""
    bs = bounds(inst, method, time_limit_s)
    return best(bs), bs, unlimited_hbm(inst)


def simulate_report(
    inst: KvInstance, policy: str, progress: Any = None, snapshot_bins: int = 0
) -> tuple[Replay, dict[str, Any]]:
    """The ``optkit simulate`` contract for one policy (bounds 1-2: they are cheap);
    ``snapshot_bins`` records placement snapshots for a heat map in the same replay."""
    t0 = time.perf_counter()
    rep = replay(inst, make(policy), progress=progress, snapshot_bins=snapshot_bins)
    b = best(bounds(inst, "cheap"))
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
