"""The timed MILP of expert caching (formulations/expert_cache.md, "The timed MILP"):
loads, evictions and the link timeline of every step, exact on tiny instances, and its
LP relaxation as a lower bound. HiGHS (or CBC/SCIP) through PuLP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optkit.experts.instance import ExpertInstance
from optkit.experts.plan import ExpertPlan
from optkit.solvers import SolverOptions, refuse_above, solve_pulp

#: Most variables the MILP (or its LP) is built with: about 40 steps of 16 units. The
#: model has S²/2 timing rows; HiGHS proves optima of ~20 steps in a second and stalls
#: with a 30% gap at 40 (the big-M rows make the LP weak)
MAX_VARIABLES = 3_000


@dataclass(frozen=True)
class MilpOutcome:
    plan: ExpertPlan | None
    objective: float | None  # seconds, the model's (the checker's time is authoritative)
    bound: float  # seconds, a proven lower bound on every plan's total time
    status: str  # optimal | feasible | time_limit | infeasible


def next_use(inst: ExpertInstance) -> np.ndarray:
    """ν[u, m]: the first step ≥ m that uses unit u (S when none)."""
    S, U = inst.steps, inst.units
    nu = np.full((U, S + 1), S, dtype=np.int64)
    need = inst.needed()
    for m in range(S - 1, -1, -1):
        nu[:, m] = nu[:, m + 1]
        nu[need[m], m] = m
    return nu[:, :S]


def size(inst: ExpertInstance) -> int:
    S, U = inst.steps, inst.units
    return 2 * U * S + S * (S + 1) // 2 + 3 * S


def build(
    inst: ExpertInstance, upper: float, m_star: int, integer: bool = True
) -> tuple[Any, dict]:
    """The PuLP model; ``upper`` (s) is the time of a known plan (no optimum is above it)
    and sets the big-M; ``m_star``: Belady's fewest loads (a cut). Returns (problem,
    variables)."""
    import pulp

    refuse_above(
        size(inst), MAX_VARIABLES, "expert-cache MILP", "use the policies and `bound` instead"
    )
    S, U, C = inst.steps, inst.units, inst.capacity
    tau = inst.load_time
    c = inst.step_compute() / tau
    need = inst.needed()
    nu = next_use(inst)
    ub = upper / tau * (1 + 1e-9)  # relative slack: the known plan itself stays feasible
    big = ub + U
    cat = pulp.LpBinary if integer else pulp.LpContinuous
    prob = pulp.LpProblem(inst.name.replace("-", "_") or "expert_cache", pulp.LpMinimize)

    def var(name: str, bounded: bool = True) -> Any:
        if bounded:
            return pulp.LpVariable(name, 0, 1, cat)
        return pulp.LpVariable(name, 0)

    x = {(u, n): var(f"x_{u}_{n}") for u in range(U) for n in range(S)}
    a = {(u, n): var(f"a_{u}_{n}") for u in range(U) for n in range(S) if nu[u, n] < S}
    s = [var(f"s_{n}", False) for n in range(S)]
    f = [var(f"f_{n}", False) for n in range(S)]
    b = [var(f"b_{n}", False) for n in range(S)]
    prob += b[S - 1] + float(c[S - 1])
    prob += b[S - 1] + float(c[S - 1]) <= ub
    for n in range(S):
        for u in need[n].tolist():
            prob += x[u, n] == 1
        prob += pulp.lpSum(x[u, n] for u in range(U)) <= C
        for u in range(U):
            prev = x[u, n - 1] if n else 0
            if (u, n) not in a:
                prob += x[u, n] <= prev  # no load: the unit is never used again
                continue
            prob += a[u, n] >= x[u, n] - prev
            prob += a[u, n] <= x[u, n]
            if n:
                prob += a[u, n] <= 1 - prev
            for t in range(n + 1, int(nu[u, n]) + 1):
                prob += x[u, t] >= a[u, n]  # (i): held until its next use
        end_prev = b[n - 1] + float(c[n - 1]) if n else 0
        prob += s[n] >= end_prev
        if n:
            prob += s[n] >= f[n - 1]
            prob += b[n] >= end_prev
        prob += f[n] == s[n] + pulp.lpSum(a[u, n] for u in range(U) if (u, n) in a)
    for n in range(S):
        for m in range(n + 1):
            batch = [a[u, m] for u in range(U) if (u, m) in a and nu[u, m] <= n]
            if not batch:
                continue
            z = var(f"z_{m}_{n}")
            for v in batch:
                prob += z >= v
            prob += b[n] >= s[m] + pulp.lpSum(batch) - big * (1 - z)
    prob += pulp.lpSum(a.values()) >= m_star
    return prob, {"x": x, "a": a, "nu": nu}


def plan_of(inst: ExpertInstance, v: dict) -> ExpertPlan:
    """Loads (sorted by next use, then id) and evictions of every step."""
    S, U = inst.steps, inst.units
    held = np.array([[round(v["x"][u, n].value() or 0.0) for n in range(S)] for u in range(U)])
    nu = v["nu"]
    steps = []
    for n in range(S):
        prev = held[:, n - 1] if n else np.zeros(U, dtype=int)
        adds = np.flatnonzero((held[:, n] == 1) & (prev == 0))
        adds = adds[np.lexsort((adds, nu[adds, n]))]
        evicts = np.flatnonzero((held[:, n] == 0) & (prev == 1))
        steps.append((adds, evicts))
    return ExpertPlan.of(steps)


def _solve(
    inst: ExpertInstance,
    upper: float,
    m_star: int,
    integer: bool,
    opts: SolverOptions | None,
    backend: str,
) -> tuple[Any, dict]:
    """Build and solve within ``opts.time_limit_s`` (building counts against it)."""
    import time
    from dataclasses import replace

    opts = opts or SolverOptions()
    t0 = time.monotonic()
    prob, v = build(inst, upper, m_star, integer)
    if opts.time_limit_s is not None:
        opts = replace(opts, time_limit_s=max(0.05, opts.time_limit_s - time.monotonic() + t0))
    return solve_pulp(prob, backend, opts), v


def milp(
    inst: ExpertInstance,
    upper: float,
    m_star: int,
    opts: SolverOptions | None = None,
    backend: str = "highs",
) -> MilpOutcome:
    """The exact timed MILP within ``opts.time_limit_s``; ``upper``: a known plan's time,
    ``m_star``: Belady's fewest loads."""
    ans, v = _solve(inst, upper, m_star, True, opts, backend)
    tau = inst.load_time
    bound = max(0.0, ans.bound) * tau
    if ans.objective is None:
        return MilpOutcome(None, None, bound, ans.status)
    return MilpOutcome(plan_of(inst, v), ans.objective * tau, bound, ans.status)


def lp_bound(
    inst: ExpertInstance, upper: float, m_star: int, opts: SolverOptions | None = None
) -> float | None:
    """The LP relaxation's optimum (s): a lower bound on every plan's total time; None
    when the LP did not finish within the limit."""
    ans, _ = _solve(inst, upper, m_star, False, opts, "highs")
    if ans.status != "optimal" or ans.objective is None:
        return None
    return ans.objective * inst.load_time
