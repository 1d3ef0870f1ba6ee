"""Arc-flow model of 1-D bin packing (Valério de Carvalho), with graph compression.

Graph (formulations/binpacking.md, "Arc-flow"): nodes are positions 0..W in a
bin; an item arc (u, u + w_t) of type t packs one item of size w_t; loss arcs
(u, W) close a bin. Item types are added in non-increasing size and only from
positions reachable with larger items (the symmetry reduction of Valério de
Carvalho). Then each node u is relabelled phi(u) = min(W, min over its item
arcs (u, v, t) of phi(v) - w_t) and nodes with the same label merge (the main
compression step of Brandão & Pedroso); every path still packs at most W.

The LP relaxation equals the Gilmore–Gomory bound. The model is built with
numpy/scipy.sparse and solved by HiGHS through highspy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix

from optkit.solvers import CHILD_REPLY_S, call_with_deadline, highs_threads, new_highs

#: Graphs with more positions than this are not built (memory and time).
MAX_CAPACITY = 400_000
MAX_ARCS = 3_000_000
#: LPs of graphs with more arcs than this are solved from scratch by the interior-point
#: method rather than simplex (with crossover where the dive needs a basis, without it
#: where only the value is used).
IPM_ARCS = 5_000
#: Rounds of fixings a failed dive undoes (one MILP on the rest after each).
DIVE_BACKTRACKS = 3


class GraphTooLarge(ValueError):
    """The arc-flow graph of this instance is too large to build here."""


@dataclass(frozen=True)
class ArcFlowGraph:
    capacity: int
    type_sizes: np.ndarray  # w_t, non-increasing
    demand: np.ndarray  # d_t
    tail: np.ndarray  # arc tail node index
    head: np.ndarray  # arc head node index
    arc_type: np.ndarray  # item type, or -1 for a loss arc
    n_nodes: int
    source: int
    sink: int

    @property
    def n_arcs(self) -> int:
        return len(self.tail)


def build_graph(sizes: np.ndarray, capacity: float, compress: bool = True) -> ArcFlowGraph:
    """Build the (compressed) arc-flow graph for integral ``sizes`` and ``capacity``."""
    W = int(capacity)
    if capacity != W or np.any(sizes != np.round(sizes)):
        raise ValueError("the arc-flow model needs integral sizes and capacity")
    if W > MAX_CAPACITY:
        raise GraphTooLarge(f"capacity {W} exceeds the arc-flow limit {MAX_CAPACITY}")
    s = np.asarray(sizes, dtype=np.int64)
    if np.any(s > W):
        raise ValueError("an item is larger than the capacity")
    ws, counts = np.unique(s, return_counts=True)
    ws, counts = ws[::-1], counts[::-1]
    reach = np.zeros(W + 1, dtype=bool)
    reach[0] = True
    tails_by_type: list[np.ndarray] = []
    n_arcs = 0
    for w, d in zip(ws.tolist(), counts.tolist(), strict=True):
        cur = reach.copy()
        for _ in range(min(d, W // w)):
            shifted = np.zeros_like(cur)
            shifted[w:] = cur[: W + 1 - w]
            shifted &= ~reach
            if not shifted.any():
                break
            reach |= shifted
            cur = shifted
        u = np.flatnonzero(reach[: W + 1 - w])
        u = u[reach[u + w]]
        tails_by_type.append(u)
        n_arcs += len(u)
        if n_arcs > MAX_ARCS:
            raise GraphTooLarge(f"more than {MAX_ARCS} arcs before compression")
    phi = np.full(W + 1, W, dtype=np.int64)
    if compress:
        # Bellman–Ford rounds on a DAG: converges in (longest path length) rounds.
        while True:
            changed = False
            for w, u in zip(ws.tolist(), tails_by_type, strict=True):
                cand = phi[u + w] - w
                better = cand < phi[u]
                if better.any():
                    phi[u[better]] = cand[better]
                    changed = True
            if not changed:
                break
    else:
        phi = np.arange(W + 1, dtype=np.int64)
    tails, heads, types = [], [], []
    for t, (w, u) in enumerate(zip(ws.tolist(), tails_by_type, strict=True)):
        tails.append(phi[u])
        heads.append(phi[u + w])
        types.append(np.full(len(u), t, dtype=np.int64))
    tl = np.concatenate(tails) if tails else np.zeros(0, np.int64)
    hd = np.concatenate(heads) if heads else np.zeros(0, np.int64)
    ty = np.concatenate(types) if types else np.zeros(0, np.int64)
    # Deduplicate item arcs.
    key = (
        np.unique(np.stack([tl, hd, ty], axis=1), axis=0) if len(tl) else np.zeros((0, 3), np.int64)
    )
    labels = np.unique(np.concatenate([phi[reach], [W]]))
    index = {int(v): i for i, v in enumerate(labels.tolist())}
    lab = np.searchsorted(labels, key[:, 0]), np.searchsorted(labels, key[:, 1])
    sink = index[W]
    loss_tails = np.array([i for i in range(len(labels)) if i != sink], dtype=np.int64)
    tail = np.concatenate([lab[0], loss_tails])
    head = np.concatenate([lab[1], np.full(len(loss_tails), sink, dtype=np.int64)])
    arc_type = np.concatenate([key[:, 2], np.full(len(loss_tails), -1, dtype=np.int64)])
    source = index[int(phi[0])]
    return ArcFlowGraph(W, ws, counts, tail, head, arc_type, len(labels), source, sink)


@dataclass(frozen=True)
class ArcFlowSolution:
    status: str  # "optimal", "feasible", "infeasible", "time_limit", "error"
    bins: int | None  # number of bins of the plan found (None without one)
    bound: float  # proven lower bound on the number of bins (within max_bins, if given)
    plan: np.ndarray | None  # bin of each item
    lp_value: float | None = None
    runtime_s: float = 0.0


def build_model(g: ArcFlowGraph, *, relax: bool = False, max_bins: int | None = None) -> Any:
    """The arc-flow model of ``g`` as a ``highspy.Highs`` object (min bins; at most ``max_bins``).

    Variables f_a (one per arc); rows: flow conservation at inner nodes, demand
    of every item type, and optionally the bin limit on the flow out of the source.
    """
    import highspy

    A = g.n_arcs
    # Variables: f_a for every arc. Objective: flow out of the source (= bins).
    c = (g.tail == g.source).astype(np.float64)
    inner = np.array([i for i in range(g.n_nodes) if i not in (g.source, g.sink)], dtype=np.int64)
    row_of = np.full(g.n_nodes, -1, dtype=np.int64)
    row_of[inner] = np.arange(len(inner))
    # Conservation: inflow - outflow = 0 at inner nodes.
    r_in, r_out = row_of[g.head], row_of[g.tail]
    keep_in, keep_out = r_in >= 0, r_out >= 0
    rows = [r_in[keep_in], r_out[keep_out]]
    cols = [np.flatnonzero(keep_in), np.flatnonzero(keep_out)]
    vals = [np.ones(int(keep_in.sum())), -np.ones(int(keep_out.sum()))]
    n_cons = len(inner)
    # Demand: sum of arcs of type t >= d_t.
    item = np.flatnonzero(g.arc_type >= 0)
    rows.append(n_cons + g.arc_type[item])
    cols.append(item)
    vals.append(np.ones(len(item)))
    n_types = len(g.type_sizes)
    inf = highspy.kHighsInf
    lo = [np.zeros(n_cons), g.demand.astype(np.float64)]
    hi = [np.zeros(n_cons), np.full(n_types, inf)]
    n_rows = n_cons + n_types
    if max_bins is not None:
        src = np.flatnonzero(c > 0)
        rows.append(np.full(len(src), n_rows))
        cols.append(src)
        vals.append(np.ones(len(src)))
        lo.append(np.zeros(1))
        hi.append(np.array([float(max_bins)]))
        n_rows += 1
    mat = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, A)
    ).tocsc()
    lp = highspy.HighsLp()
    lp.num_col_ = A
    lp.num_row_ = n_rows
    lp.col_cost_ = c
    lp.col_lower_ = np.zeros(A)
    lp.col_upper_ = np.full(A, inf)
    lp.row_lower_ = np.concatenate(lo)
    lp.row_upper_ = np.concatenate(hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = mat.indptr
    lp.a_matrix_.index_ = mat.indices
    lp.a_matrix_.value_ = mat.data
    if not relax:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * A
    h = new_highs()
    h.passModel(lp)
    return h


def solve(
    sizes: np.ndarray,
    capacity: float,
    *,
    relax: bool = False,
    max_bins: int | None = None,
    time_limit_s: float | None = 60.0,
    threads: int = 1,
    graph: ArcFlowGraph | None = None,
    in_process: bool = False,
) -> ArcFlowSolution:
    """Minimise the number of bins with the arc-flow model (LP relaxation if ``relax``).

    With ``max_bins`` the model only looks for packings into at most that many
    bins: status "infeasible" then proves that no such packing exists.
    Solved by HiGHS through highspy; a MILP runs in a forked child that is
    stopped at the deadline unless ``in_process`` (for tiny models).
    """
    import highspy

    t0 = time.perf_counter()
    g = graph or build_graph(sizes, capacity)
    h = build_model(g, relax=relax, max_bins=max_bins)
    if relax and g.n_arcs > IPM_ARCS:
        # only the value is used: interior point without crossover (1.5-6x faster than
        # simplex here; crossover alone took 5 s of 6.4 on P||Cmax NU_2 at C = 9440)
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "off")
    highs_threads(h, threads)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1 - 1e-6)
    rem = None if time_limit_s is None else time_limit_s - (time.perf_counter() - t0)
    if rem is not None:  # the graph and the model were built on the same clock
        # a MILP child needs a moment to send its incumbent back before the deadline
        h.setOptionValue("time_limit", float(max(0.01, rem - (0 if relax else CHILD_REPLY_S))))
    MS = highspy.HighsModelStatus

    def run() -> tuple[Any, float, float, int, np.ndarray | None]:
        h.run()
        info = h.getInfo()
        sol = h.getSolution().col_value if info.primal_solution_status == 2 else None
        return (
            int(h.getModelStatus()),
            float(info.objective_function_value),
            float(info.mip_dual_bound),
            int(info.primal_solution_status),
            None if sol is None else np.asarray(sol),
        )

    # HiGHS can overrun its MIP time limit (root cut loop): a forked child is stopped for sure.
    deadline = None if relax or in_process or rem is None else max(0.05, rem) + CHILD_REPLY_S
    got = call_with_deadline(run, deadline)
    dt = time.perf_counter() - t0
    if got is None:
        return ArcFlowSolution("time_limit", None, 0.0, None, None, dt)
    status, objective, dual, primal_status, x = got
    if status == int(MS.kInfeasible):
        floor = float(max_bins + 1) if max_bins is not None else math.inf
        return ArcFlowSolution("infeasible", None, floor, None, None, dt)
    if relax:
        if status != int(MS.kOptimal):
            return ArcFlowSolution("time_limit", None, 0.0, None, None, dt)
        return ArcFlowSolution(
            "optimal", None, float(math.ceil(objective - 1e-6)), None, objective, dt
        )
    bound = float(math.ceil(dual - 1e-6)) if math.isfinite(dual) else 0.0
    if primal_status != 2 or x is None:  # no feasible solution
        return ArcFlowSolution("time_limit", None, bound, None, None, dt)
    flow = np.rint(x).astype(np.int64)
    plan = decompose(g, flow, sizes)
    bins = int(plan.max() + 1) if len(plan) else 0
    st = "optimal" if status == int(MS.kOptimal) else "feasible"
    if st == "optimal":
        bound = max(bound, float(bins))
    return ArcFlowSolution(st, bins, min(bound, float(bins)), plan, None, dt)


def decompose(g: ArcFlowGraph, flow: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Split an integral flow into source-sink paths (bins) and give each item a bin."""
    out_arcs: dict[int, list[int]] = {}
    for a in np.flatnonzero(flow > 0).tolist():
        out_arcs.setdefault(int(g.tail[a]), []).append(a)
    remaining = flow.copy()
    s = np.asarray(sizes, dtype=np.int64)
    pools = {int(w): list(np.flatnonzero(s == w)[::-1]) for w in g.type_sizes.tolist()}
    plan = np.full(len(s), -1, dtype=np.int64)
    b = 0
    while True:
        node = g.source
        arcs_src = out_arcs.get(node, [])
        while arcs_src and remaining[arcs_src[-1]] == 0:
            arcs_src.pop()
        if not arcs_src:
            break
        used_any = False
        while node != g.sink:
            lst = out_arcs[node]
            while remaining[lst[-1]] == 0:
                lst.pop()
            a = lst[-1]
            remaining[a] -= 1
            t = int(g.arc_type[a])
            if t >= 0:
                pool = pools[int(g.type_sizes[t])]
                if pool:
                    plan[pool.pop()] = b
                    used_any = True
            node = int(g.head[a])
        if used_any:
            b += 1
    if np.any(plan < 0):
        raise RuntimeError("arc-flow decomposition left items unassigned")
    return plan


def fractional_paths(g: ArcFlowGraph, flow: np.ndarray) -> list[tuple[list[int], float]]:
    """Split a (fractional) flow into source-sink paths: (item types on the path, flow value)."""
    f = np.where(flow > 1e-9, flow, 0.0)
    out: dict[int, list[int]] = {}
    for a in np.flatnonzero(f > 0).tolist():
        out.setdefault(int(g.tail[a]), []).append(a)
    paths = []
    while True:
        node, path = g.source, []
        while node != g.sink:
            arcs = [a for a in out.get(node, []) if f[a] > 1e-9]
            if not arcs:
                break
            a = max(arcs, key=lambda k: f[k])
            path.append(a)
            node = int(g.head[a])
        if node != g.sink or not path:
            break
        v = float(min(f[a] for a in path))
        f[path] -= v
        paths.append(([int(g.arc_type[a]) for a in path if g.arc_type[a] >= 0], v))
    return paths


@dataclass(frozen=True)
class DiveOutcome:
    plan: np.ndarray | None  # a packing into at most max_bins bins, when found
    lp_value: float | None = None  # the arc-flow LP of all items (the first solve)
    refuted: bool = False  # lp_value > max_bins: no packing into max_bins bins exists


def dive(
    sizes: np.ndarray,
    capacity: float,
    max_bins: int,
    *,
    graph: ArcFlowGraph | None = None,
    time_limit_s: float | None = 10.0,
) -> DiveOutcome:
    """Primal heuristic: a packing into at most ``max_bins`` bins, if it finds one.

    Dive on the arc-flow LP (formulations/binpacking.md, "LP dive"): solve the LP
    of what is left, fix floor(v) bins of every path of value v (the largest path
    once if none reaches 1), re-solve from the previous basis; the graph is rebuilt
    for the rest once half of its items are packed. When the LP of the rest is
    infeasible, undo the last round and pack the rest with the arc-flow MILP,
    undoing up to ``DIVE_BACKTRACKS`` rounds.
    """
    t0 = time.perf_counter()

    def left() -> float | None:
        return None if time_limit_s is None else time_limit_s - (time.perf_counter() - t0)

    s = np.asarray(sizes, dtype=np.int64)
    values, need = np.unique(s, return_counts=True)  # the rest, by size
    rounds: list[list[np.ndarray]] = []  # each round's bins, as arrays of sizes
    lp: _DiveLP | None = None
    value: float | None = None  # the LP of all items (the first solve)
    while need.any():
        rem = left()
        if rem is not None and rem <= 0.05:
            return DiveOutcome(None, value)
        if lp is None or 2 * int(need.sum()) <= lp.items:
            rest = np.repeat(values, need)
            g = graph if lp is None and graph is not None else build_graph(rest, capacity)
            lp = _DiveLP(g, values)
        fixed_bins = sum(len(r) for r in rounds)
        paths = lp.paths(need, max_bins - fixed_bins, rem)
        if value is None:  # the first solve: the LP bound of all items
            if lp.infeasible:  # above max_bins: its value, from a warm solve without the limit
                lp.paths(need, None, left())
                over = lp.value if math.isfinite(lp.value) else None
                return DiveOutcome(None, over, over is not None)
            value = lp.value if paths is not None else None
        if paths is None:
            break
        fixed: list[np.ndarray] = []
        for path, v in paths:
            for _ in range(int(math.floor(v + 1e-9))):
                if not _take(path, need, values, fixed):
                    break
        if not fixed and paths:
            _take(paths[0][0], need, values, fixed)
        if not fixed:
            break
        rounds.append(fixed)
    if not need.any():
        return DiveOutcome(_plan_of_bins(s, [b for r in rounds for b in r], None), value)
    # The LP of the rest is infeasible (or stopped): undo rounds, the MILP packs the rest.
    for _ in range(DIVE_BACKTRACKS):
        if not rounds:
            break
        for b in rounds.pop():
            np.add.at(need, np.searchsorted(values, b), 1)
        rem = left()
        if rem is not None and rem <= 0.05:
            break
        kept_bins = [b for r in rounds for b in r]
        rest = np.repeat(values, need)
        sol = solve(rest, capacity, max_bins=max_bins - len(kept_bins), time_limit_s=rem)
        if sol.plan is not None and sol.bins is not None and sol.bins <= max_bins - len(kept_bins):
            return DiveOutcome(_plan_of_bins(s, kept_bins, (rest, sol.plan)), value)
    return DiveOutcome(None, value)


def _take(path: np.ndarray, need: np.ndarray, values: np.ndarray, into: list[np.ndarray]) -> bool:
    """Fix one bin of ``path`` (indices into ``values``): its items still in ``need`` (a
    path may carry more copies than are left) leave ``need``; the bin goes to ``into``."""
    kept = []
    for k in path.tolist():
        if need[k] > 0:
            need[k] -= 1
            kept.append(k)
    if kept:
        into.append(values[np.asarray(kept)])
    return bool(kept)


class _DiveLP:
    """The arc-flow LP of a dive on graph ``g``; only row bounds change between solves."""

    def __init__(self, g: ArcFlowGraph, values: np.ndarray) -> None:
        self.g = g
        self.items = int(g.demand.sum())
        self.h = build_model(g, relax=True, max_bins=self.items)  # the row; bound set per solve
        self.h.setOptionValue("solver", "ipm" if g.n_arcs > IPM_ARCS else "simplex")
        # rows: inner nodes, then one per type, then the bin limit
        self.demand_row = g.n_nodes - 2
        self.bins_row = self.demand_row + len(g.type_sizes)
        self.type_of = np.searchsorted(values, g.type_sizes)  # graph type -> index in values
        self.value = math.nan  # of the last LP solved to optimality
        self.infeasible = False  # the last LP was proven infeasible

    def paths(
        self, need: np.ndarray, bins: int | None, time_limit_s: float | None
    ) -> list[tuple[np.ndarray, float]] | None:
        """Paths (as indices into ``values``, with flow values, largest first) of the LP
        with demands ``need`` and at most ``bins`` bins (None: no limit); None when it
        is infeasible or stopped."""
        import highspy

        for t, k in enumerate(self.type_of.tolist()):
            self.h.changeRowBounds(self.demand_row + t, float(need[k]), highspy.kHighsInf)
        self.h.changeRowBounds(
            self.bins_row, 0.0, highspy.kHighsInf if bins is None else float(bins)
        )
        if time_limit_s is not None:  # HiGHS's clock runs on across re-solves
            self.h.setOptionValue("time_limit", self.h.getRunTime() + float(time_limit_s))
        self.h.run()
        self.h.setOptionValue("solver", "simplex")  # warm re-solves from here on
        status = self.h.getModelStatus()
        self.infeasible = status == highspy.HighsModelStatus.kInfeasible
        self.value = math.nan
        if status != highspy.HighsModelStatus.kOptimal:
            return None
        self.value = float(self.h.getInfo().objective_function_value)
        flow = np.asarray(self.h.getSolution().col_value)
        out = [
            (self.type_of[np.asarray(types, dtype=np.int64)], v)
            for types, v in fractional_paths(self.g, flow)
        ]
        return sorted(out, key=lambda tv: -tv[1])


def _plan_of_bins(
    s: np.ndarray, bins: list[np.ndarray], rest: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """The plan: ``bins`` (arrays of sizes) first, then the items of sizes ``rest[0]`` in
    their bins ``rest[1]`` after them."""
    plan = np.full(len(s), -1, dtype=np.int64)
    pools = {int(w): np.flatnonzero(s == w).tolist() for w in np.unique(s).tolist()}
    for b, sizes in enumerate(bins):
        for w in sizes.tolist():
            plan[pools[w].pop()] = b
    if rest is not None:
        for w, b in zip(rest[0].tolist(), rest[1].tolist(), strict=True):
            plan[pools[w].pop()] = b + len(bins)
    return plan


def lp_range(
    sizes: np.ndarray,
    capacity: int,
    time_limit_s: float | None = None,
    pool: list[np.ndarray] | None = None,
    graph: ArcFlowGraph | None = None,
) -> tuple[float, float] | None:
    """(proven lower, upper) on the value of a bin-packing LP relaxation (so the lower
    one bounds the number of bins); None when it was not solved.

    Column generation (:mod:`optkit.packing.colgen`) for few distinct sizes and a
    large capacity (at most ``COLGEN_MAX_TYPES`` sizes, at least ``COLGEN_MIN_CELLS``
    sizes x capacity, its pricing table permitting); else the arc-flow LP (then
    lower == upper), which is faster on small graphs. ``pool``: column generation's
    patterns, shared across calls on the same sizes.
    """
    from optkit.packing import colgen

    types = len(np.unique(sizes))
    if types <= colgen.COLGEN_MAX_TYPES and types * capacity >= colgen.COLGEN_MIN_CELLS:
        try:
            gg = colgen.lp_bound(sizes, capacity, time_limit_s=time_limit_s, pool=pool)
        except colgen.TooLarge:
            pass
        else:
            return gg.lower, gg.upper
    sol = solve(sizes, capacity, graph=graph, relax=True, time_limit_s=time_limit_s)
    if sol.status != "optimal" or sol.lp_value is None:
        return None
    return sol.lp_value, sol.lp_value


def makespan_lp_bound(
    p: np.ndarray,
    m: int,
    lo: int,
    hi: int,
    time_limit_s: float | None = None,
    graph_of: Callable[[int], ArcFlowGraph] | None = None,
) -> int:
    """Raise a P||Cmax bound ``lo`` by search on C in [lo, hi] with the bin-packing LP.

    LP(C) > m proves that the jobs do not fit in m bins of capacity C (nor, by
    monotonicity, in any smaller one); see ``bounds.raise_by_search``. The LP is
    solved by :func:`lp_range`. ``graph_of`` lets the caller cache the graphs it
    will reuse.
    """
    from optkit.packing.bounds import raise_by_search

    t0 = time.perf_counter()
    pool: list[np.ndarray] = []  # column generation's patterns at one C start the next

    def excess(C: int) -> float:
        """LP(C) - m - 1e-6: > 0 exactly when it proves C infeasible (bound > m);
        0 when the LP was not solved."""
        left = None if time_limit_s is None else max(0.1, time_limit_s - (time.perf_counter() - t0))
        got = lp_range(p, C, left, pool, None if graph_of is None else graph_of(C))
        if got is None:
            return 0.0
        lower, upper = got  # the proven side when it refutes, else the value's estimate
        return lower - m - 1e-6 if lower > m + 1e-6 else min(0.0, upper - m - 1e-6)

    return raise_by_search(lo, hi, excess, time_limit_s)
