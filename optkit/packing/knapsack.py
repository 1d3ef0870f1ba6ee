"""Pricing for column generation on the bin-packing master: the bounded knapsack
with arc duals (formulations/binpacking.md, "Branch-and-price", Pricing).

    κ = max Σ_t π_t a_t + Σ_{(t, h) on the path of a} y_(t,h)
        s.t. Σ_t w_t a_t ≤ W,  0 ≤ a_t ≤ d_t,  a integral

by dynamic programming over the heights 0..W, types in non-increasing size (the
height of a state is where the next item starts, so an arc dual is charged on the
transition that places a type-t item at height h). Copies are split in binary.
Exact when the table fits ``MAX_TABLE`` cells; otherwise (no arc duals) the same
program on a grid of step g gives an upper bound κ̄ ≥ κ (sizes rounded down) and
feasible patterns (sizes rounded up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Cells (copy groups x heights) of the exact table; above it the grid is coarsened.
MAX_TABLE = 30_000_000
#: Patterns returned per pricing at most (the best at distinct end heights).
COLUMNS = 8

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


def table_cells(counts: np.ndarray, weights: np.ndarray, capacity: int) -> int:
    """Cells of the exact table when every type can be used (copy groups x heights)."""
    use = np.asarray(counts) > 0
    return len(_groups(counts, weights, capacity, use)) * (capacity + 1)


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
) -> Priced:
    """Price the master's duals (``weights`` non-increasing; ``arcs``: {type: {height:
    dual}} of its branching rows). Exact when the table fits ``table`` cells; beyond
    it (only without arc duals) a grid bound and patterns from the rounded-up grid."""
    weights = np.asarray(weights, dtype=np.int64)
    table = MAX_TABLE if table is None else table
    # a type of no profit can still matter with arc duals (it shifts the heights after it)
    use = ((profit > 0) | bool(arcs)) & (counts > 0)
    groups = _groups(counts, weights, capacity, use)
    if not groups:
        return Priced(0.0, [], [], True)
    cells = len(groups) * (capacity + 1)
    if cells <= table:
        value, pats = _dp(profit, weights, groups, capacity, arcs, columns)
        prices = [path_price(a, profit, weights, arcs) for a in pats]
        return Priced(max(value, 0.0), pats, prices, True)
    if arcs:
        raise ValueError("arc duals need the exact table (the grid has no heights)")
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
