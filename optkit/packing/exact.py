"""Exact methods: the assignment MILP (PuLP), a CP-SAT model, and arc-flow.

Each returns an :class:`ExactOutcome`: the best plan found (or None), the best
lower bound proven by the back-end, and a short status. Whether a plan is
optimal is decided later, by ``finalize`` after ``check()`` — never from a
solver's status string alone.
"""

from __future__ import annotations

import math
import time
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from optkit.packing import arcflow, lns
from optkit.packing.dive import dive
from optkit.packing.heuristics import machine_loads
from optkit.packing.instance import BinPackingInstance, MakespanInstance
from optkit.packing.lpbound import makespan_lp_bound
from optkit.solvers import Deadline, SolverOptions, cpsat_parameters, require, solve_pulp


@dataclass(frozen=True)
class ExactOutcome:
    plan: np.ndarray | None
    bound: float  # proven lower bound (0 when the back-end proved nothing)
    status: str  # optimal | feasible | infeasible | time_limit | too_large
    solver: str
    note: str = ""


def _canonical_identical(plan: np.ndarray, order: np.ndarray, m: int) -> np.ndarray:
    """Relabel machines by their first job in ``order`` (so job order[k] sits on machine <= k)."""
    label = -np.ones(m, dtype=np.int64)
    nxt = 0
    out = np.empty_like(plan)
    for j in order.tolist():
        i = int(plan[j])
        if label[i] < 0:
            label[i] = nxt
            nxt += 1
        out[j] = label[i]
    return out


# ----------------------------------------------------------------------------------------
# Assignment MILP (PuLP)
# ----------------------------------------------------------------------------------------


def build_makespan_milp(inst: MakespanInstance, lower: float = 0.0, symmetry: bool = True):
    """PuLP model: min C s.t. sum_i x_ij = 1, sum_j t_ij x_ij <= C, x binary.

    Symmetry breaking on identical machines: with jobs in non-increasing order,
    job of rank k may only use machines 0..k. Returns (problem, x dict, C, order).
    """
    import pulp

    t = inst.time_matrix()
    n, m = inst.n, inst.m
    prob = pulp.LpProblem(inst.name or "makespan", pulp.LpMinimize)
    C = pulp.LpVariable("C", lowBound=lower)
    order = np.argsort(-inst.min_times(), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    x: dict[tuple[int, int], pulp.LpVariable] = {}
    for j in range(n):
        for i in range(m):
            if not math.isfinite(t[i, j]):
                continue
            if symmetry and inst.kind == "identical" and i > rank[j]:
                continue
            x[i, j] = pulp.LpVariable(f"x_{i}_{j}", cat="Binary")
    prob += C
    by_job: dict[int, list] = {j: [] for j in range(n)}
    by_mach: dict[int, list] = {i: [] for i in range(m)}
    for (i, j), v in x.items():
        by_job[j].append(v)
        by_mach[i].append(float(t[i, j]) * v)
    for j in range(n):
        prob += pulp.lpSum(by_job[j]) == 1, f"assign_{j}"
    for i in range(m):
        prob += pulp.lpSum(by_mach[i]) <= C, f"load_{i}"
    return prob, x, C, order


def milp_makespan(
    inst: MakespanInstance,
    backend: str,
    opts: SolverOptions,
    warm: np.ndarray | None = None,
    lower: float = 0.0,
    symmetry: bool = True,
) -> ExactOutcome:
    t0 = time.perf_counter()
    prob, x, C, order = build_makespan_milp(inst, lower, symmetry)
    if warm is not None:
        w = (
            _canonical_identical(warm, order, inst.m)
            if inst.kind == "identical" and symmetry
            else warm
        )
        for (i, j), v in x.items():
            v.setInitialValue(1 if w[j] == i else 0)
        C.setInitialValue(float(machine_loads(inst, w).max()))
    ans = solve_pulp(
        prob,
        backend,
        after_build(opts, t0),
        lower=lower,
        integral=inst.integral,
        warm_start=warm is not None,
    )
    plan = _plan_of(x, inst.n) if ans.objective is not None else None
    return ExactOutcome(plan, ans.bound, ans.status, backend)


def build_binpacking_milp(inst: BinPackingInstance, upper: int, lower: float = 0.0):
    """PuLP model over ``upper`` candidate bins: min sum y_b, item j in one bin b <= rank(j).

    Returns (problem, x dict, y list, order).
    """
    import pulp

    n, W = inst.n, inst.capacity
    order = np.argsort(-inst.sizes, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    prob = pulp.LpProblem(inst.name or "binpacking", pulp.LpMinimize)
    y = [pulp.LpVariable(f"y_{b}", cat="Binary") for b in range(upper)]
    x = {
        (b, j): pulp.LpVariable(f"x_{b}_{j}", cat="Binary")
        for j in range(n)
        for b in range(min(upper, rank[j] + 1))
    }
    prob += pulp.lpSum(y)
    in_bin: dict[int, list] = {b: [] for b in range(upper)}
    for (b, j), v in x.items():
        in_bin[b].append(float(inst.sizes[j]) * v)
    for j in range(n):
        prob += pulp.lpSum(x[b, j] for b in range(min(upper, rank[j] + 1))) == 1, f"assign_{j}"
    for b in range(upper):
        prob += pulp.lpSum(in_bin[b]) <= W * y[b], f"capacity_{b}"
        if b + 1 < upper:
            prob += y[b] >= y[b + 1], f"order_{b}"
    if lower > 0:
        prob += pulp.lpSum(y) >= lower, "lower_bound"
    return prob, x, y, order


def milp_binpacking(
    inst: BinPackingInstance,
    backend: str,
    opts: SolverOptions,
    upper: int,
    warm: np.ndarray | None = None,
    lower: float = 0.0,
) -> ExactOutcome:
    """Assignment MILP for bin packing over ``upper`` candidate bins (y_b used, x_bj)."""
    t0 = time.perf_counter()
    prob, x, y, order = build_binpacking_milp(inst, upper, lower)
    if warm is not None:
        w = _canonical_identical(warm, order, upper)
        for (b, j), v in x.items():
            v.setInitialValue(1 if w[j] == b else 0)
        used = set(w.tolist())
        for b in range(upper):
            y[b].setInitialValue(1 if b in used else 0)
    ans = solve_pulp(
        prob,
        backend,
        after_build(opts, t0),
        lower=lower,
        integral=True,
        warm_start=warm is not None,
    )
    plan = _plan_of(x, inst.n) if ans.objective is not None else None
    return ExactOutcome(plan, ans.bound, ans.status, backend)


def after_build(opts: SolverOptions, t0: float) -> SolverOptions:
    """``opts`` with the time building the model took (since ``t0``) taken off its
    limit: the limit covers the whole method, not only the back-end's search."""
    if opts.time_limit_s is None:
        return opts
    return replace(opts, time_limit_s=max(0.05, opts.time_limit_s - (time.perf_counter() - t0)))


def _plan_of(x: dict[tuple[int, int], Any], n: int) -> np.ndarray | None:
    """The plan of a solved assignment model: job j on the i of its x_ij = 1."""
    plan = np.full(n, -1, dtype=np.int64)
    for (i, j), v in x.items():
        if (v.value() or 0) > 0.5:
            plan[j] = i
    return None if np.any(plan < 0) else plan


# ----------------------------------------------------------------------------------------
# CP-SAT
# ----------------------------------------------------------------------------------------


def cpsat_makespan(
    inst: MakespanInstance,
    opts: SolverOptions,
    warm: np.ndarray | None = None,
    lower: float = 0.0,
    upper: float | None = None,
) -> ExactOutcome:
    """CP-SAT: boolean x_ij, integer loads, min C. Integral identical or unrelated data only."""
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    require("cpsat")
    if not inst.integral:
        raise ValueError("CP-SAT needs integral processing times (uniform machines are not)")
    t = inst.time_matrix()
    n, m = inst.n, inst.m
    model = cp_model.CpModel()
    finite = t[np.isfinite(t)]
    horizon = int(upper if upper is not None else finite.sum() if len(finite) else 0)
    horizon = max(horizon, int(math.ceil(lower - 1e-9)))
    C = model.new_int_var(int(math.ceil(lower - 1e-9)), horizon, "C")
    order = np.argsort(-inst.min_times(), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for j in range(n):
        for i in range(m):
            if not math.isfinite(t[i, j]):
                continue
            if inst.kind == "identical" and i > rank[j]:
                continue
            x[i, j] = model.new_bool_var(f"x_{i}_{j}")
    for j in range(n):
        model.add_exactly_one([x[i, j] for i in range(m) if (i, j) in x])
    for i in range(m):
        terms = [(int(t[i, j]), v) for (ii, j), v in x.items() if ii == i]
        if terms:
            model.add(sum(c * v for c, v in terms) <= C)
    model.minimize(C)
    if warm is not None:
        w = _canonical_identical(warm, order, m) if inst.kind == "identical" else warm
        for (i, j), v in x.items():
            model.add_hint(v, 1 if w[j] == i else 0)
    # Infeasible within C <= horizon: every makespan up to the horizon is refuted.
    return _run_cpsat(model, x, n, after_build(opts, t0), lower, float(horizon + 1))


def cpsat_binpacking(
    inst: BinPackingInstance,
    opts: SolverOptions,
    upper: int,
    warm: np.ndarray | None = None,
    lower: float = 0.0,
) -> ExactOutcome:
    """CP-SAT bin packing over ``upper`` candidate bins; integral sizes only."""
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    require("cpsat")
    if not inst.integral:
        raise ValueError("CP-SAT needs integral sizes and capacity")
    n, W = inst.n, int(inst.capacity)
    w = inst.sizes.astype(np.int64)
    order = np.argsort(-w, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    model = cp_model.CpModel()
    x = {
        (b, j): model.new_bool_var(f"x_{b}_{j}")
        for j in range(n)
        for b in range(min(upper, rank[j] + 1))
    }
    y = [model.new_bool_var(f"y_{b}") for b in range(upper)]
    for j in range(n):
        model.add_exactly_one([x[b, j] for b in range(min(upper, rank[j] + 1))])
    for b in range(upper):
        items = [(int(w[j]), v) for (bb, j), v in x.items() if bb == b]
        model.add(sum(c * v for c, v in items) <= W * y[b])
        if b + 1 < upper:
            model.add_implication(y[b + 1], y[b])
    model.add(sum(y) >= int(math.ceil(lower - 1e-9)))
    model.minimize(sum(y))
    if warm is not None:
        wc = _canonical_identical(warm, order, upper)
        for (b, j), v in x.items():
            model.add_hint(v, 1 if wc[j] == b else 0)
    # Infeasible within ``upper`` bins: at least upper + 1 are needed.
    return _run_cpsat(model, x, n, after_build(opts, t0), lower, float(upper + 1))


def _run_cpsat(
    model: Any,
    x: dict[tuple[int, int], Any],
    n: int,
    opts: SolverOptions,
    lower: float,
    infeasible_bound: float,
) -> ExactOutcome:
    """Solve a CP-SAT assignment model; job j goes to the i of its true x_ij."""
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    cpsat_parameters(solver, opts)  # the callers give what building the model left
    st = solver.solve(model)
    if st == cp_model.INFEASIBLE:
        return ExactOutcome(None, infeasible_bound, "infeasible", "cpsat")
    plan = None
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        plan = np.full(n, -1, dtype=np.int64)
        for (i, j), v in x.items():
            if solver.boolean_value(v):
                plan[j] = i
    status = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible"}.get(st, "time_limit")
    return ExactOutcome(plan, max(float(solver.best_objective_bound), lower), status, "cpsat")


# ----------------------------------------------------------------------------------------
# Arc-flow
# ----------------------------------------------------------------------------------------


def arcflow_binpacking(
    inst: BinPackingInstance,
    opts: SolverOptions,
    upper: int,
    lower: float = 0.0,
    warm: np.ndarray | None = None,
    progress: list[str] | None = None,
    at_bound: bool = True,
) -> ExactOutcome:
    """Find a packing into fewer than ``upper`` bins, or prove there is none.

    A portfolio within the time limit, each stage stopping the search once the
    incumbent meets the bound:

    1. the LP dive (:func:`dive.dive`): its first LP, the arc-flow LP, raises the
       bound, and it aims at a packing into that many bins, up to 50% of the time
       (``at_bound=False`` skips it: ``auto`` has done it);
    2. LNS with arc-flow repair (:mod:`optkit.packing.lns`), 15%;
    3. the assignment MILP (HiGHS), when small, 5% — its primal heuristics
       find some tight packings that arc-flow misses;
    4. the arc-flow MILP for packings into ``upper - 1`` bins with the rest —
       "infeasible" proves the incumbent optimal.
    """
    t0 = time.perf_counter()
    try:
        g = arcflow.build_graph(inst.sizes, inst.capacity)
    except arcflow.GraphTooLarge as e:
        return ExactOutcome(None, lower, "too_large", "highs", str(e))
    note = f"graph {g.n_nodes} nodes, {g.n_arcs} arcs"
    clock = Deadline(opts.time_limit_s, t0)
    best, ub, lb = warm, upper, float(lower)

    def say(stage: str) -> None:
        if progress is not None:
            dt = time.perf_counter() - t0
            progress.append(f"{dt:6.2f}s {stage}: bins {ub}, bound {lb:g}")

    stages = [("dive", 0.5)] if at_bound else []
    stages += [("lns", 0.15), ("assignment", 0.05), ("milp", 1.0)]
    for stage, share in stages:
        rem = clock.portion(share)
        if rem is not None and rem < 0.05:
            break
        if stage == "dive":  # its first LP is the arc-flow LP bound
            K = int(math.ceil(lb - 1e-9))
            dived = dive(inst.sizes, inst.capacity, K, graph=g, time_limit_s=rem)
            if dived.lp_value is not None:
                lb = max(lb, float(math.ceil(dived.lp_value - 1e-6)))
            if dived.plan is not None and len(np.unique(dived.plan)) < ub:
                best, ub = dived.plan, len(np.unique(dived.plan))
        elif stage == "lns" and best is not None:
            better = lns.binpacking(
                inst.sizes,
                int(inst.capacity),
                best,
                int(math.ceil(lb)),
                rem if rem is not None else 30.0,
                seed=opts.seed,
            )
            if len(np.unique(better)) < ub:
                best, ub = better, len(np.unique(better))
        elif stage == "assignment" and inst.n * ub <= 20_000:
            out = milp_binpacking(inst, "highs", replace(opts, time_limit_s=rem), ub, best, lb)
            lb = max(lb, out.bound)
            if out.plan is not None and len(np.unique(out.plan)) < ub:
                best, ub = out.plan, len(np.unique(out.plan))
        elif stage == "milp":
            sol = arcflow.solve(
                inst.sizes,
                inst.capacity,
                graph=g,
                max_bins=ub - 1,
                time_limit_s=rem,
                threads=opts.threads,
            )
            if sol.status == "infeasible":
                lb = float(ub)  # nothing fits in ub - 1 bins
            else:
                lb = max(lb, sol.bound)
                if sol.plan is not None and sol.bins is not None and sol.bins < ub:
                    best, ub = sol.plan, sol.bins
        say(stage)
        if lb >= ub:
            return ExactOutcome(best, lb, "optimal", "highs", note)
    return ExactOutcome(best, lb, "time_limit", "highs", note)


#: Share of the time the low-waste pattern model may take before branch-and-price, and
#: at least this many seconds (half of it for the enumeration: Falkenauer T501 needs
#: about 2 s of it, more than 15% of a 10 s limit leaves).
PATTERN_SHARE = 0.15
PATTERN_MIN_S = 5.0
#: Share of the time left that bnp's arc-flow LP dive may take, on compressed graphs of
#: at most ``ARCFLOW_DIVE_ARCS`` arcs (its LPs re-solve in well under 0.1 s there):
#: Falkenauer T501 (17-22k arcs) gets its packing in 1-3 s; on AI-style n = 202
#: (41-48k arcs) the dive took 4 s of a 10 s limit and found none (7 -> 2 of 20 solved).
ARCFLOW_DIVE_SHARE = 0.4
ARCFLOW_DIVE_ARCS = 30_000


def bnp_binpacking(
    inst: BinPackingInstance,
    opts: SolverOptions,
    lower: float = 0.0,
    warm: np.ndarray | None = None,
    progress: list[str] | None = None,
) -> ExactOutcome:
    """Branch-and-price (:mod:`optkit.packing.bnp`) with the whole time limit: the
    root LP, the dive at its bound, then the tree while a gap remains. First, with
    ``PATTERN_SHARE`` of the time (at least ``PATTERN_MIN_S``), the low-waste pattern
    model at the bound (it settles perfect packings, Falkenauer T, faster than the
    dive); then, where the compressed arc-flow graph is small, the arc-flow LP dive at
    the bound (``ARCFLOW_DIVE_SHARE`` of what is left: it finds Falkenauer T501's
    packings that the pattern model and the master's dive miss)."""
    from optkit.packing import colgen
    from optkit.packing.bnp import branch_and_price
    from optkit.packing.patterns import pattern_packing

    clock = opts.deadline()
    sizes, W = np.asarray(inst.sizes, dtype=np.int64), int(inst.capacity)
    K = int(math.ceil(lower - 1e-9))
    say = (lambda _m: None) if progress is None else progress.append
    if warm is None or len(np.unique(warm)) > K:
        left = clock.left()
        budget = None if left is None else min(left, max(PATTERN_SHARE * left, PATTERN_MIN_S))
        pat = pattern_packing(sizes, W, K, budget)
        say(f"low-waste patterns at {K}: {pat.status} ({pat.patterns:,} patterns)")
        if pat.plan is not None:
            return ExactOutcome(pat.plan, float(K), "optimal", "highs", "low-waste patterns")
        if pat.infeasible:
            K += 1
        graph = None
        if len(np.unique(sizes)) * W <= colgen.ARCFLOW_BUILD_CELLS:
            with suppress(arcflow.GraphTooLarge):
                graph = arcflow.build_graph(sizes, W)
        if graph is not None and graph.n_arcs <= ARCFLOW_DIVE_ARCS and not clock.expired():
            left = clock.left()
            got = dive(
                sizes,
                W,
                K,
                graph=graph,
                time_limit_s=None if left is None else ARCFLOW_DIVE_SHARE * left,
            )
            say(f"arc-flow LP dive at {K}: {'found' if got.plan is not None else 'none'}")
            if got.plan is not None:
                return ExactOutcome(got.plan, float(K), "optimal", "highs", "arc-flow LP dive")
            if got.refuted and got.lp_value is not None:  # its LP is above K: a bound
                K = max(K, colgen.ceil_bins(got.lp_value))
    out = branch_and_price(sizes, W, clock.left(), incumbent=warm, lower=K, log=say)
    note = f"{out.nodes} nodes" + (f"; {out.note}" if out.note else "")
    return ExactOutcome(out.plan, float(out.bound), out.status, "highs", note)


def arcflow_makespan(
    inst: MakespanInstance,
    opts: SolverOptions,
    lower: float,
    upper: float,
    progress: list[str] | None = None,
    warm: np.ndarray | None = None,
    at_bound: bool = True,
) -> ExactOutcome:
    """P||Cmax by arc-flow: can the jobs fit in m bins of capacity C?

    1. The arc-flow LP raises the bound by search on [lower, upper): LP > m
       proves C, and every smaller C, infeasible.
    2. The LP dive (:func:`dive.dive`) at C = bound, up to 30% of the time.
       (``at_bound=False`` skips 1 and 2: ``auto`` has done them already.)
    3. Then, in time slices: the arc-flow MILP at C = incumbent - 1 ("top": a
       packing lowers the incumbent, "infeasible" proves it optimal), up to 50%;
       LNS with arc-flow repair (:mod:`optkit.packing.lns`) from the incumbent,
       15%; the MILP at C = bound ("bottom": a packing is optimal, "infeasible"
       raises the bound by one) with the rest. The dive has already looked at the
       bound, so the other side comes first.
    Integral identical machines only.
    """
    assert inst.kind == "identical" and inst.durations is not None and inst.integral
    p, m = inst.durations, inst.m
    t0 = time.perf_counter()
    clock = opts.deadline()

    graphs: dict[int, arcflow.ArcFlowGraph] = {}

    def graph(C: int) -> arcflow.ArcFlowGraph:
        if C not in graphs:
            graphs[C] = arcflow.build_graph(p, C)
        return graphs[C]

    def say(msg: str) -> None:
        if progress is not None:
            progress.append(f"{time.perf_counter() - t0:6.2f}s {msg}")

    lo = int(math.ceil(lower - 1e-9))
    hi = int(math.ceil(upper - 1e-9))
    best = warm
    try:
        if at_bound:
            lo = makespan_lp_bound(p, m, lo, hi, clock.left(), graph)
            say(f"arc-flow LP search: every C < {lo} is infeasible")
            if lo < hi:
                dived = dive(p, lo, m, graph=graph(lo), time_limit_s=clock.portion(0.3))
                if dived.plan is not None:
                    say(f"C={lo}: LP dive packs into {int(dived.plan.max()) + 1} machines")
                    best, hi = dived.plan, lo
        for stage, share in (("top", 0.5), ("lns", 0.15), ("bottom", 1.0)):
            part = clock.portion(share)  # None: no limit; 0.0: none left
            stop = time.perf_counter() + (3600.0 if part is None else part)
            while lo < hi and time.perf_counter() < stop - 0.05:
                rem = stop - time.perf_counter()
                if stage == "lns":
                    if best is None:
                        break
                    better = lns.makespan(p, m, best, lo, rem, seed=opts.seed)
                    cm = int(np.bincount(better, weights=p, minlength=m).max())
                    if cm < hi:
                        best, hi = better, cm
                    say(f"arc-flow LNS: makespan {hi}")
                    break
                C = hi - 1 if stage == "top" else lo
                sol = arcflow.solve(
                    p, C, graph=graph(C), max_bins=m, time_limit_s=rem, threads=opts.threads
                )
                if sol.status == "infeasible":
                    say(f"C={C}: arc-flow MILP proves no packing into {m} machines")
                    lo = C + 1  # and no smaller C either
                    continue
                if sol.plan is None:
                    break
                best = sol.plan
                hi = int(np.bincount(best, weights=p, minlength=m).max())
                say(f"C={C}: arc-flow packing, makespan {hi}")
            if lo >= hi:
                return ExactOutcome(best, float(lo), "optimal", "highs")
    except arcflow.GraphTooLarge as e:
        return ExactOutcome(best, float(lo), "too_large", "highs", str(e))
    return ExactOutcome(best, float(lo), "time_limit", "highs")
