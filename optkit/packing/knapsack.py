"""Pricing for column generation on the bin-packing master: the bounded knapsack
with arc duals (formulations/binpacking.md, "Branch-and-price", Pricing).

    κ = max Σ_t π_t a_t + Σ_{(t, h) on the path of a} y_(t,h)
        s.t. Σ_t w_t a_t ≤ W,  0 ≤ a_t ≤ d_t,  a integral

by dynamic programming over the heights 0..W, types in non-increasing size (the
height of a state is where the next item starts, so an arc dual is charged on the
transition that places a type-t item at height h). Copies are split in binary.
Exact when the table fits ``MAX_TABLE`` cells. Beyond it (no arc duals: the root
and the dive) a depth-first branch and bound over the types by profit density with
Dantzig's bound (:func:`_bb`, compiled) is exact when it closes within
``BB_NODES`` nodes; otherwise the program on a grid of step g gives an upper bound
κ̄ ≥ κ (sizes rounded down) and feasible patterns (sizes rounded up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

#: Cells (copy groups x heights) of the exact table; above it the grid is coarsened.
MAX_TABLE = 30_000_000
#: Patterns returned per pricing at most (the best at distinct end heights).
COLUMNS = 8

#: Nodes the branch and bound may visit before the grid takes over (about 10 ns each).
BB_NODES = 2_000_000
#: The branch and bound cuts a node whose bound is within 1e-12 of the incumbent (and
#: floating sums err by less), so the optimum it reports is proven up to this factor,
#: which ``upper`` carries (a Farley bound over it stays valid).
BB_TOL = 1e-9

#: Arc duals of one type: {height: dual}.
ArcDuals = dict[int, float]


@dataclass(frozen=True)
class Priced:
    upper: float  # proven: no pattern prices above this (κ̄ ≥ κ)
    patterns: list[np.ndarray]  # feasible patterns (counts per type), best first
    prices: list[float]  # their exact prices
    exact: bool  # upper is the knapsack's optimum (the first pattern attains it)


def _groups(counts: np.ndarray, weights: np.ndarray, capacity: int, use: np.ndarray) -> list:
    """Copy groups (type, multiplicity) after splitting each usable count in 1, 2, 4, …"""
    out = []
    for t in np.flatnonzero(use).tolist():
        w = int(weights[t])
        left, k = int(counts[t]) if w == 0 else min(int(counts[t]), capacity // w), 1
        while left > 0:
            q = min(k, left)
            out.append((t, q))
            left -= q
            k *= 2
    return out


def _group_count(counts: np.ndarray, weights: np.ndarray, capacity: int, use: np.ndarray) -> int:
    """len(_groups(...)) without building them: a count c splits into c.bit_length()
    groups (1, 2, 4, …, the rest)."""
    c = np.asarray(counts, dtype=np.int64)[use]
    w = np.asarray(weights, dtype=np.int64)[use]
    left = np.where(w == 0, c, np.minimum(c, capacity // np.maximum(w, 1)))
    return sum(int(x).bit_length() for x in left.tolist())


def table_cells(counts: np.ndarray, weights: np.ndarray, capacity: int) -> int:
    """Cells of the exact table when every type can be used (copy groups x heights)."""
    use = np.asarray(counts) > 0
    return _group_count(counts, weights, capacity, use) * (capacity + 1)


def _dp(
    profit: np.ndarray,
    weights: np.ndarray,
    groups: list,
    capacity: int,
    arcs: dict[int, ArcDuals] | None,
    ends: int,
) -> tuple[float, list[np.ndarray]]:
    """The knapsack over exact heights 0..capacity of ``groups``: (optimum, the patterns
    ending at the ``ends`` best distinct heights, best first)."""
    best = np.full(capacity + 1, -np.inf)
    best[0] = 0.0
    take = np.zeros((len(groups), capacity + 1), dtype=bool)
    for i, (t, q) in enumerate(groups):
        w = int(weights[t]) * q
        if w > capacity:
            continue
        cand = best[: capacity + 1 - w] + float(profit[t]) * q
        if arcs and t in arcs:  # a group of q copies at h crosses (t, h), (t, h + w_t), …
            adj = np.zeros(capacity + 1 - w)
            step = int(weights[t])
            for h, y in arcs[t].items():
                for j in range(q):
                    start = h - j * step
                    if 0 <= start < len(adj):
                        adj[start] += y
            cand = cand + adj
        better = cand > best[w:]  # no tolerance: ``upper`` must not fall below the optimum
        take[i, w:] = better
        best[w:] = np.where(better, cand, best[w:])
    finite = np.isfinite(best)
    order = np.flatnonzero(finite)[np.argsort(-best[finite], kind="stable")][:ends]
    value = float(best[order[0]]) if len(order) else 0.0
    out = []
    for c in order.tolist():
        a = np.zeros(len(weights), dtype=np.int64)
        for i in range(len(groups) - 1, -1, -1):
            if take[i, c]:
                t, q = groups[i]
                a[t] += q
                c -= int(weights[t]) * q
        out.append(a)
    return value, out


@njit(cache=True, error_model="numpy")
def _bb(
    profit: np.ndarray,  # > 0, in non-increasing profit / weight
    weight: np.ndarray,  # >= 1
    count: np.ndarray,  # >= 1
    capacity: int,
    max_nodes: int,
    keep: int,
    floor: float,
) -> tuple[float, np.ndarray, np.ndarray, int, bool]:
    """max Σ p_i a_i s.t. Σ w_i a_i ≤ capacity, 0 ≤ a_i ≤ count_i integral, by depth
    first branch and bound (Horowitz–Sahni / MT1 order): from type i every type takes
    as many copies as fit (a leaf), then the deepest nonzero count is lowered by one
    and the types after it are refilled, unless the node's value plus Dantzig's bound
    on the types after it (greedy, the first that does not fit taken fractionally) is
    at most the incumbent (at first ``floor``: nothing priced at most that is wanted)
    times (1 + CUT). The bound does not rise when that count
    falls further (the types after it are no denser), so a cut node drops the type's
    copies at once. Returns (max(optimum, floor), the last ``keep`` incumbents above
    ``floor`` as rows, best last, their values (-1: none), nodes, closed: ended within
    ``max_nodes``)."""
    cut = 1e-12
    n = len(profit)
    a = np.zeros(n, dtype=np.int64)
    sols = np.zeros((keep, n), dtype=np.int64)
    vals = np.full(keep, -1.0)
    lightest = np.empty(n + 1, dtype=np.int64)  # lightest[i]: min weight of types i..n-1
    lightest[n] = capacity + 1
    for t in range(n - 1, -1, -1):
        lightest[t] = min(lightest[t + 1], weight[t])
    stack = np.empty(n, dtype=np.int64)  # the types with a[t] > 0, in order
    top = 0
    found = 0
    best = max(floor, 0.0)
    nodes = 0
    i = 0
    val = 0.0
    room = capacity
    while True:
        while i < n and room >= lightest[i]:  # a leaf: the greedy completion from type i
            k = min(count[i], room // weight[i])
            if k > 0:
                a[i] = k
                val += k * profit[i]
                room -= k * weight[i]
                stack[top] = i
                top += 1
            i += 1
        nodes += 1
        if val > best:
            best = val
            sols[found % keep, :] = a
            vals[found % keep] = val
            found += 1
        while True:  # the next node: one copy less of the deepest type that can still win
            if top == 0 or nodes >= max_nodes:
                order = np.argsort(vals)
                return best, sols[order], vals[order], nodes, top == 0
            j = stack[top - 1]  # the deepest nonzero type: none after it is set
            a[j] -= 1
            val -= profit[j]
            room += weight[j]
            ub = val
            r = room
            for t in range(j + 1, n):  # the LP itself (a cut relies on its concavity)
                take = count[t] * weight[t]
                if take <= r:
                    ub += count[t] * profit[t]
                    r -= take
                else:
                    ub += profit[t] * (r / weight[t])
                    break
            nodes += 1
            if a[j] == 0:
                top -= 1
            if ub > best * (1.0 + cut):
                i = j + 1
                break
            val -= a[j] * profit[j]  # cut: fewer copies of j cannot win either
            room += a[j] * weight[j]
            if a[j] > 0:
                a[j] = 0
                top -= 1


def _branch_and_bound(
    profit: np.ndarray,
    weights: np.ndarray,
    counts: np.ndarray,
    capacity: int,
    columns: int,
    max_nodes: int,
    floor: float = 0.0,
) -> Priced | None:
    """The exact knapsack by :func:`_bb` (no arc duals), or None past ``max_nodes``;
    ``upper`` is max(κ, floor) (patterns priced at most ``floor`` are not looked for).
    Types of size 0 and positive profit are in every optimum with all their copies:
    they are taken before the search, which sees only the others."""
    pos = (profit > 0) & (counts > 0) & (weights <= capacity)
    free = np.zeros(len(weights), dtype=np.int64)
    free[pos & (weights == 0)] = counts[pos & (weights == 0)]
    base = float(profit @ free)
    use = np.flatnonzero(pos & (weights > 0))
    if len(use) == 0:
        pats = [free] if base > floor else []
        return Priced(max(base, floor, 0.0), pats, [base] if pats else [], True)
    p, w = profit[use].astype(np.float64), weights[use].astype(np.int64)
    c = np.minimum(counts[use], capacity // w).astype(np.int64)
    order = np.lexsort((-w, -p / w))  # density first, the larger size on ties
    best, sols, vals, _, closed = _bb(
        p[order], w[order], c[order], capacity, max_nodes, columns, max(floor - base, 0.0)
    )
    if not closed:
        return None
    pats = []
    for row, v in zip(sols[::-1], vals[::-1], strict=True):
        if v < 0:
            break
        a = free.copy()
        a[use[order]] = row
        pats.append(a)
    prices = [path_price(a, profit, weights, None) for a in pats]
    # the search's value is a running float sum: its best pattern's price, summed
    # afresh, may lie a rounding above it
    top = max(base + best, prices[0] if prices else 0.0, floor, 0.0)
    return Priced(top * (1.0 + BB_TOL), pats, prices, True)


def path(a: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The arcs of pattern ``a`` (``weights`` non-increasing): the type of each item in
    non-increasing size and the height at which it starts."""
    types = np.repeat(np.arange(len(a)), a)
    heights = np.cumsum(weights[types]) - weights[types]
    return types, heights


def path_price(
    a: np.ndarray, profit: np.ndarray, weights: np.ndarray, arcs: dict[int, ArcDuals] | None
) -> float:
    """The price of pattern ``a``: π·a plus the arc duals on its path."""
    value = float(profit @ a)
    if arcs:
        types, heights = path(a, weights)
        for t, h in zip(types.tolist(), heights.tolist(), strict=True):
            value += arcs.get(t, {}).get(h, 0.0)
    return value


def price(
    profit: np.ndarray,
    weights: np.ndarray,
    counts: np.ndarray,
    capacity: int,
    arcs: dict[int, ArcDuals] | None = None,
    columns: int = COLUMNS,
    table: int | None = None,
    bb_nodes: int = BB_NODES,
    floor: float = 0.0,
) -> Priced:
    """Price the master's duals (``weights`` non-increasing; ``arcs``: {type: {height:
    dual}} of its branching rows). Exact when the table fits ``table`` cells; beyond
    it (only without arc duals) the branch and bound, exact when it closes within
    ``bb_nodes`` nodes, else a grid bound and patterns from the rounded-up grid.
    ``floor``: the caller needs no pattern priced at most this and takes
    max(upper, floor) for κ (Farley's bound divides by max(κ̄, 1)): the branch and bound
    starts its incumbent there; the table ignores it."""
    weights = np.asarray(weights, dtype=np.int64)
    table = MAX_TABLE if table is None else table
    # a type of no profit can still matter with arc duals (it shifts the heights after it)
    use = ((profit > 0) | bool(arcs)) & (counts > 0)
    ngroups = _group_count(counts, weights, capacity, use)
    if ngroups == 0:
        return Priced(0.0, [], [], True)
    cells = ngroups * (capacity + 1)
    if cells <= table:
        groups = _groups(counts, weights, capacity, use)
        value, pats = _dp(profit, weights, groups, capacity, arcs, columns)
        prices = [path_price(a, profit, weights, arcs) for a in pats]
        return Priced(max(value, 0.0), pats, prices, True)
    if arcs:
        raise ValueError("arc duals need the exact table (the grid has no heights)")
    counts = np.asarray(counts, dtype=np.int64)
    bb = _branch_and_bound(profit, weights, counts, capacity, columns, bb_nodes, floor)
    if bb is not None:
        return bb
    g = math.ceil(cells / table)
    cap = capacity // g
    low = weights // g  # relaxation: every pattern stays feasible
    lg = _groups(counts, low, cap, use)  # a size below one unit is free: its count bounds it
    upper, _ = _dp(profit, low, lg, cap, None, 1)
    high = -(-weights // g)  # restriction: every pattern found is feasible
    hg = _groups(counts, high, cap, use)
    _, pats = _dp(profit, high, hg, cap, None, columns) if hg else (0.0, [])
    pats = [a for a in pats if int(a @ weights) <= capacity]
    prices = [path_price(a, profit, weights, None) for a in pats]
    return Priced(max(upper, 0.0), pats, prices, False)
