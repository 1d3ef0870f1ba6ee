"""Gilmore–Gomory column generation for the bin-packing LP bound
(formulations/binpacking.md, "Gilmore–Gomory column generation").

The LP of the pattern model, with patterns bounded by the demands (so at least
the arc-flow LP, whose paths may repeat a size more often than it occurs). For
few distinct sizes and a large capacity (P||Cmax with long integral durations),
where the arc-flow graph is large, column generation with an exact
dynamic-programming knapsack is an order of magnitude faster. Every iteration carries Farley's valid
lower bound z_RMP / κ, so a stopped run still proves something.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from optkit.solvers import new_highs

#: Used for the LP bound (``lp_range``) up to this many distinct sizes, and
#: from this many sizes x capacity on (below it the arc-flow graph is small and its
#: LP faster: Falkenauer U, 61-80 sizes, W = 150: 0.03 s against 0.11-0.18 s).
COLGEN_MAX_TYPES = 100
COLGEN_MIN_CELLS = 200_000
#: The pricing table (knapsack items after binary splitting × capacity) may hold at
#: most this many cells.
MAX_TABLE = 50_000_000


class TooLarge(ValueError):
    """The pricing table of this instance would be too large."""


@dataclass(frozen=True)
class GGBound:
    lower: float  # proven: the LP value is at least this (Farley's bound)
    upper: float  # the restricted master's value: the LP value is at most this
    optimal: bool  # lower == upper up to the pricing tolerance
    iterations: int


def _items(counts: np.ndarray, weights: np.ndarray, capacity: int) -> list[tuple[int, int]]:
    """Knapsack items (type, multiplicity) after splitting each count in 1, 2, 4, ..."""
    out = []
    for t, (w, d) in enumerate(zip(weights.tolist(), counts.tolist(), strict=True)):
        left, k = min(int(d), capacity // int(w)), 1
        while left > 0:
            q = min(k, left)
            out.append((t, q))
            left -= q
            k *= 2
    return out


def price(
    profit: np.ndarray, weights: np.ndarray, counts: np.ndarray, capacity: int
) -> tuple[float, np.ndarray]:
    """max Σ profit_t a_t s.t. Σ w_t a_t <= capacity, 0 <= a_t <= counts_t (exact DP);
    returns (value, a)."""
    items = [(t, q) for t, q in _items(counts, weights, capacity) if profit[t] > 0]
    if len(items) * (capacity + 1) > MAX_TABLE:
        raise TooLarge(f"pricing table {len(items)} x {capacity + 1} exceeds {MAX_TABLE:,}")
    best = np.zeros(capacity + 1)
    take = np.zeros((len(items), capacity + 1), dtype=bool)
    for i, (t, q) in enumerate(items):
        w, v = int(weights[t]) * q, float(profit[t]) * q
        cand = best[: capacity + 1 - w] + v
        better = cand > best[w:] + 1e-15
        take[i, w:] = better
        best[w:] = np.where(better, cand, best[w:])
    c = int(np.argmax(best))
    value = float(best[c])
    a = np.zeros(len(weights), dtype=np.int64)
    for i in range(len(items) - 1, -1, -1):
        if take[i, c]:
            t, q = items[i]
            a[t] += q
            c -= int(weights[t]) * q
    return value, a


def lp_bound(
    sizes: np.ndarray,
    capacity: int,
    max_bins: int | None = None,
    time_limit_s: float | None = None,
    pool: list[np.ndarray] | None = None,
) -> GGBound:
    """The Gilmore–Gomory LP (minimum fractional number of bins) by column generation.

    With ``max_bins`` it stops as soon as the answer to "does the LP need more than
    ``max_bins`` bins?" is known: lower > max_bins + 1e-6 (yes) or upper <= max_bins (no).
    ``pool``: patterns (counts over the sorted distinct sizes) from earlier calls on
    the same sizes; those that fit start the master, and the new ones are added (a
    search over the capacity re-solves in a few iterations).
    """
    import highspy

    t0 = time.perf_counter()
    w, d = np.unique(np.asarray(sizes, dtype=np.int64), return_counts=True)
    if len(w) == 0:
        return GGBound(0.0, 0.0, True, 0)
    if int(w[-1]) > capacity:
        raise ValueError("an item is larger than the capacity")
    h = new_highs()
    inf = highspy.kHighsInf
    none_i, none_f = np.zeros(0, dtype=np.int32), np.zeros(0)
    for t in range(len(w)):
        h.addRow(float(d[t]), inf, 0, none_i, none_f)

    def add(a: np.ndarray) -> None:
        idx = np.flatnonzero(a).astype(np.int32)
        h.addCol(1.0, 0.0, inf, len(idx), idx, a[idx].astype(np.float64))

    for t in range(len(w)):  # single-size patterns: a feasible start
        a = np.zeros(len(w), dtype=np.int64)
        a[t] = min(int(d[t]), capacity // int(w[t]))
        add(a)
    for a in pool or []:
        if len(a) == len(w) and int(a @ w) <= capacity:
            add(a)
    lower, it = 0.0, 0
    while True:
        h.run()
        it += 1
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"restricted master: HiGHS status {h.getModelStatus()}")
        upper = float(h.getInfo().objective_function_value)
        pi = np.maximum(np.asarray(h.getSolution().row_dual), 0.0)
        kappa, a = price(pi, w, d, capacity)
        # π / max(κ, 1) is dual feasible (π ≥ 0, every pattern prices at most 1): its
        # objective bounds the LP whatever the master's tolerances (Farley)
        lower = max(lower, float(d @ pi) / max(kappa, 1.0))
        optimal = kappa <= 1 + 1e-9
        decided = max_bins is not None and (lower > max_bins + 1e-6 or upper <= max_bins)
        late = time_limit_s is not None and time.perf_counter() - t0 > time_limit_s
        if optimal or decided or late or not a.any():
            return GGBound(lower, upper, optimal or math.isclose(lower, upper), it)
        add(a)
        if pool is not None:
            pool.append(a)
