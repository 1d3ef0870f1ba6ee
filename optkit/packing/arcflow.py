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
