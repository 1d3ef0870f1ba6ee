"""CP-SAT model of formulations/realtime.md, "Exact" (no interference): optional
intervals per job and backend, NoOverlap per backend, drops for perception frames
(WLOG a frame runs on time or not at all), late literals for LLM jobs.

``rounding="plan"`` rounds times so its schedules are feasible (p, r up; d down);
``rounding="bound"`` so its optimum and best bound are ≤ the true optimum (p, r down;
d up)."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def intervals(inst: RealtimeInstance) -> int:
    return int(np.sum(np.isfinite(inst.jobs.p)))


def solve_cpsat(
    inst: RealtimeInstance,
    opts: SolverOptions,
    rounding: str = "plan",
    hint: tuple[np.ndarray, np.ndarray] | None = None,
) -> CpAnswer:
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
    dur = [[tick(float(jt.p[j, b]), rnd_up) if fin[j, b] else -1 for b in range(B)] for j in range(n)]
    llm = jt.kind == LLM
    horizon = max(max(dl), max(rel)) + sum(max(x for x in dur[j] if x >= 0) for j in np.nonzero(llm)[0]) + 1
    m = cp_model.CpModel()
    S, C, run, miss = [], [], [], []
    per_b: list[list[object]] = [[] for _ in range(B)]
    lits: list[list[object]] = []
    for j in range(n):
        hi = dl[j] if not llm[j] else horizon
        s = m.NewIntVar(rel[j], max(rel[j], hi), f"S{j}")
        e = m.NewIntVar(rel[j], max(rel[j], hi), f"C{j}")
        x_j = []
        for b in range(B):
            if dur[j][b] < 0:
                x_j.append(None)
                continue
            x = m.NewBoolVar(f"x{j}_{b}")
            iv = m.NewOptionalIntervalVar(s, dur[j][b], e, x, f"I{j}_{b}")
            per_b[b].append(iv)
            x_j.append(x)
        present = [x for x in x_j if x is not None]
        if llm[j]:
            m.AddExactlyOne(present)
            late = m.NewBoolVar(f"late{j}")
            m.Add(e <= dl[j]).OnlyEnforceIf(late.Not())
            miss.append(late)
            run.append(None)
        else:
            r = m.NewBoolVar(f"run{j}")
            m.Add(sum(present) == r)
            if rel[j] > dl[j] or not present:
                m.Add(r == 0)
            miss.append(r.Not())
            run.append(r)
        S.append(s)
        C.append(e)
        lits.append(x_j)
    for j in np.nonzero(jt.pred >= 0)[0]:
        q = int(jt.pred[j])
        if run[j] is not None:
            if run[q] is not None:
                m.AddImplication(run[j], run[q])
            m.Add(S[j] >= C[q]).OnlyEnforceIf(run[j])
        else:
            m.Add(S[j] >= C[q])
    for b in range(B):
        m.AddNoOverlap(per_b[b])
    w = jt.weight.tolist()
    m.Minimize(sum(wj * x for wj, x in zip(w, miss, strict=True)))
    if hint is not None:
        hb, hs = hint
        for j in range(n):
            for b in range(B):
                if lits[j][b] is not None:
                    m.AddHint(lits[j][b], int(hb[j] == b))
            if hb[j] >= 0:
                m.AddHint(S[j], min(max(rel[j], tick(float(hs[j]), math.ceil) - t0), horizon))
    solver = cp_model.CpSolver()
    cpsat_parameters(solver, opts)
    st = solver.Solve(m)
    bound = float(math.ceil(solver.BestObjectiveBound() - 1e-9)) if st in (
        cp_model.OPTIMAL,
        cp_model.FEASIBLE,
    ) else 0.0
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return CpAnswer("NO_SOLUTION", None, None, None, bound)
    backend = np.full(n, -1, dtype=np.int64)
    start = np.full(n, np.nan)
    for j in range(n):
        for b in range(B):
            if lits[j][b] is not None and solver.BooleanValue(lits[j][b]):
                backend[j] = b
                start[j] = (solver.Value(S[j]) + t0) * TICK_S
    name = "OPTIMAL" if st == cp_model.OPTIMAL else "FEASIBLE"
    return CpAnswer(name, backend, start, float(solver.ObjectiveValue()), bound)
