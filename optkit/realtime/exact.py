"""CP-SAT model of formulations/realtime.md, "Exact" (no interference): optional
intervals per job and backend, NoOverlap per backend, drops for perception frames
(WLOG a frame runs on time or not at all), late literals for LLM jobs.

``rounding="plan"`` rounds times so its schedules are feasible (p, r up; d down);
``rounding="bound"`` so its optimum and best bound are ≤ the true optimum (p, r down;
d up)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from optkit.realtime.instance import LLM, RealtimeInstance
from optkit.solvers import SolverOptions, cpsat_parameters, refuse_above

#: most optional intervals of one model
MAX_INTERVALS = 20_000
TICK_S = 1e-6


@dataclass(frozen=True)
class CpAnswer:
    status: str  # OPTIMAL, FEASIBLE, NO_SOLUTION
    backend: np.ndarray | None
    start: np.ndarray | None
    objective: float | None
    bound: float


def _StopAt(target: float, cp_model: Any) -> Any:
    """A solution callback that ends the search at an objective <= ``target``."""

    class StopAt(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            if self.objective_value <= target + 1e-9:
                self.stop_search()

    return StopAt()


def intervals(inst: RealtimeInstance) -> int:
    return int(np.sum(np.isfinite(inst.jobs.p)))


def solve_cpsat(
    inst: RealtimeInstance,
    opts: SolverOptions,
    rounding: str = "plan",
    hint: tuple[np.ndarray, np.ndarray] | None = None,
    ttft: bool = False,
    lower: float = 0.0,
) -> CpAnswer:
    """Minimise the weighted misses; with ``ttft`` (plan model), when that is proven
    optimal within the time limit, spend the time left on a second pass that keeps
    that many misses and minimises the sum of the LLM requests' first-token completions
    (lexicographic: misses, then TTFT), from the first pass's schedule. ``lower``: a
    proven bound on the misses (e.g. the window LP's); meeting it proves optimality,
    which CP-SAT's own bound on this model often does not."""
    from ortools.sat.python import cp_model

    refuse_above(intervals(inst), MAX_INTERVALS, "CP-SAT model", "optional intervals")
    jt = inst.jobs
    n, B = len(jt), len(inst.backends)
    up = rounding == "plan"
    rnd_up, rnd_dn = (math.ceil, math.floor) if up else (math.floor, math.ceil)

    def tick(x: float, f: object) -> int:
        return int(f(x / TICK_S - (1e-9 if f is math.ceil else -1e-9)))  # type: ignore[operator]

    t0 = tick(float(np.min(jt.release)), math.floor)
    rel = [tick(x, rnd_up) - t0 for x in jt.release]
    dl = [tick(x, rnd_dn) - t0 for x in jt.deadline]
    fin = np.isfinite(jt.p)
    dur = [
        [tick(float(jt.p[j, b]), rnd_up) if fin[j, b] else -1 for b in range(B)] for j in range(n)
    ]
    llm = jt.kind == LLM
    horizon = (
        max(max(dl), max(rel))
        + sum(max(x for x in dur[j] if x >= 0) for j in np.nonzero(llm)[0])
        + 1
    )
    m = cp_model.CpModel()
    S: list[Any] = []
    C: list[Any] = []
    run: list[Any] = []
    miss: list[Any] = []
    per_b: list[list[Any]] = [[] for _ in range(B)]
    lits: list[list[Any]] = []
    for j in range(n):
        hi = dl[j] if not llm[j] else horizon
        s = m.new_int_var(rel[j], max(rel[j], hi), f"S{j}")
        e = m.new_int_var(rel[j], max(rel[j], hi), f"C{j}")
        x_j: list[Any] = []
        for b in range(B):
            if dur[j][b] < 0:
                x_j.append(None)
                continue
            x = m.new_bool_var(f"x{j}_{b}")
            iv = m.new_optional_interval_var(s, dur[j][b], e, x, f"I{j}_{b}")
            per_b[b].append(iv)
            x_j.append(x)
        present = [x for x in x_j if x is not None]
        if llm[j]:
            m.add_exactly_one(present)
            late = m.new_bool_var(f"late{j}")
            m.add(e <= dl[j]).only_enforce_if(late.negated())
            miss.append(late)
            run.append(None)
        else:
            r = m.new_bool_var(f"run{j}")
            m.add(sum(present) == r)
            if rel[j] > dl[j] or not present:
                m.add(r == 0)
            dropped = m.new_bool_var(f"drop{j}")  # a positive literal: the bound sees >= 0
            m.add(r + dropped == 1)
            miss.append(dropped)
            run.append(r)
        S.append(s)
        C.append(e)
        lits.append(x_j)
    for j in np.nonzero(jt.pred >= 0)[0].tolist():
        q = int(jt.pred[j])
        if run[j] is not None:
            if run[q] is not None:
                m.add_implication(run[j], run[q])
            m.add(S[j] >= C[q]).only_enforce_if(run[j])
        else:
            m.add(S[j] >= C[q])
    for b in range(B):
        m.add_no_overlap(per_b[b])
    w = jt.weight.tolist()
    objective = sum(wj * x for wj, x in zip(w, miss, strict=True))
    m.minimize(objective)
    if hint is not None:
        hb, hs = hint
        for j in range(n):
            for b in range(B):
                if lits[j][b] is not None:
                    m.add_hint(lits[j][b], int(hb[j] == b))
            if hb[j] >= 0:
                m.add_hint(S[j], min(max(rel[j], tick(float(hs[j]), math.ceil) - t0), horizon))
    solver = cp_model.CpSolver()
    limit = opts.time_limit_s
    cpsat_parameters(solver, opts)
    if hint is not None:
        solver.parameters.repair_hint = True  # a replayed plan may overlap by a tick
    # stop as soon as a schedule meets the proven bound: CP-SAT's own bound on this model
    # stays far below it (its presolve leaves the miss count's lower bound negative)
    stop = _StopAt(max(lower, 0.0), cp_model)
    st = solver.solve(m, stop)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return CpAnswer("NO_SOLUTION", None, None, None, 0.0)
    if solver.objective_value <= max(lower, 0.0) + 1e-9:
        st = cp_model.OPTIMAL  # the model's misses are >= lower: nothing better exists
    # integer weights: the objective is integral, so its bound rounds up
    bound = max(0.0, lower, float(math.ceil(solver.best_objective_bound - 1e-9)))
    found = float(solver.objective_value)
    prefills = np.nonzero(llm & (jt.step == 0))[0].tolist()
    left = None if limit is None else limit - solver.wall_time
    if ttft and prefills and st == cp_model.OPTIMAL and (left is None or left > 0.05):
        # second pass: no more misses than found, the earliest first tokens
        m.clear_hints()
        for j in range(n):
            for b in range(B):
                if lits[j][b] is not None:
                    m.add_hint(lits[j][b], solver.boolean_value(lits[j][b]))
            m.add_hint(S[j], solver.value(S[j]))
        m.add(objective <= round(found))
        m.minimize(sum(C[j] for j in prefills))
        second = cp_model.CpSolver()
        cpsat_parameters(second, opts, left)
        if second.solve(m) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            solver = second
    backend = np.full(n, -1, dtype=np.int64)
    start = np.full(n, np.nan)
    for j in range(n):
        for b in range(B):
            if lits[j][b] is not None and solver.boolean_value(lits[j][b]):
                backend[j] = b
                start[j] = (solver.value(S[j]) + t0) * TICK_S
    name = "OPTIMAL" if st == cp_model.OPTIMAL else "FEASIBLE"
    return CpAnswer(name, backend, start, found, bound)
