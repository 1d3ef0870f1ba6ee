"""Gilmore–Gomory column generation: the bin-packing master with branching rows on
arc flows, priced by :mod:`optkit.packing.knapsack` (formulations/binpacking.md,
"Gilmore–Gomory column generation" and "Branch-and-price").

The LP of the pattern model, with patterns bounded by the demands (so at least
the arc-flow LP, whose paths may repeat a size more often than it occurs). Every
iteration carries Farley's valid lower bound (the duals' objective over
max(κ̄, 1)), so a stopped run still proves something; the duals are smoothed
(Wentges) and each pricing adds several columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optkit.packing import knapsack
from optkit.solvers import Deadline, new_highs

#: Used for the LP bound (``lp_range``) from this many sizes x capacity on (below it
#: the arc-flow graph is small and its LP faster: Falkenauer U, 61-80 sizes,
#: W = 150: 0.03 s against 0.11-0.18 s), unless the compressed arc-flow graph has at
#: most ``ARCFLOW_MAX_ARCS`` arcs (built only up to ``ARCFLOW_BUILD_CELLS``):
#: Falkenauer T501 (24,016 arcs) 0.29 s against 2.2 s, AI 201_2500_DI_19 (108,712
#: arcs) 14.6 s against 2.0 s.
COLGEN_MIN_CELLS = 200_000
ARCFLOW_MAX_ARCS = 50_000
ARCFLOW_BUILD_CELLS = 1_000_000
#: Wentges smoothing: priced duals = ALPHA x (duals of the best bound) + (1 - ALPHA) x duals.
ALPHA = 0.8
#: Reduced costs below -EPS price a column in; κ <= 1 + EPS is optimal.
EPS = 1e-9


@dataclass(frozen=True)
class GGBound:
    lower: float  # proven: the LP value is at least this (Farley's bound)
    upper: float  # the restricted master's value: the LP value is at most this
    optimal: bool  # lower == upper up to the pricing tolerance
    iterations: int
    exact: bool = True  # the pricing was exact (else its bound is the grid's, coarser)


@dataclass(frozen=True)
class LPSolution:
    """The master's LP at the end of a column generation."""

    bound: GGBound
    values: np.ndarray  # λ_p of every pattern column, in ``Master.patterns`` order
    artificial: float  # total value of the artificial columns (0: a real LP solution)


def ceil_bins(x: float) -> int:
    """The bins a proven fractional bound ``x`` proves (a count: the 1e-6 absorbs the
    LP's rounding, not a unit)."""
    return math.ceil(x - 1e-6)


#: Cover duals π, arc duals y (by arc code) and their dual objective.
Duals = tuple[np.ndarray, dict[int, float], float]


def _mix(center: Duals, now: Duals) -> Duals:
    """ALPHA x center + (1 - ALPHA) x now (a convex combination stays dual-signed)."""
    keys = set(center[1]) | set(now[1])
    y = {k: ALPHA * center[1].get(k, 0.0) + (1 - ALPHA) * now[1].get(k, 0.0) for k in keys}
    return ALPHA * center[0] + (1 - ALPHA) * now[0], y, ALPHA * center[2] + (1 - ALPHA) * now[2]


class Master:
    """The restricted master over the types (sizes ``weights`` non-increasing, demands
    ``demand``) with one row per branched arc, solved by column generation.

    Arc (t, h): a type-t item starting at height h on a pattern's path (items by
    non-increasing size); its code is t * (W + 1) + h. Row bounds of the arcs are set
    per node (:meth:`set_arc_bounds`); unset arcs are free rows.
    """

    def __init__(self, weights: np.ndarray, demand: np.ndarray, capacity: int) -> None:
        import highspy

        self.w = np.asarray(weights, dtype=np.int64)
        if len(self.w) > 1 and np.any(np.diff(self.w) > 0):
            raise ValueError("the master needs sizes in non-increasing order")
        self.d = np.asarray(demand, dtype=np.int64).copy()
        self.W = int(capacity)
        self.T = len(self.w)
        self.big = float(self.d.sum() + 1)  # an artificial costs more than any packing
        self.h = new_highs()
        self.inf = highspy.kHighsInf
        self.patterns: list[np.ndarray] = []
        self.paths: list[np.ndarray] = []  # arc codes of each pattern
        self._col: list[int] = []  # HiGHS column of each pattern
        self._seen: set[bytes] = set()
        self.arc_row: dict[int, int] = {}  # arc code -> row
        self._art: list[int] = []  # artificial columns
        self.bounds: dict[int, tuple[float, float]] = {}
        none_i, none_f = np.zeros(0, dtype=np.int32), np.zeros(0)
        for t in range(self.T):
            self.h.addRow(float(self.d[t]), self.inf, 0, none_i, none_f)
            self._artificial(t, 1.0)
        for t in range(self.T):  # single-size patterns: a start without artificials
            a = np.zeros(self.T, dtype=np.int64)
            a[t] = min(int(self.d[t]), self.W // int(self.w[t]))
            self.add(a)

    # -- columns and rows ---------------------------------------------------------
    def _artificial(self, row: int, sign: float) -> None:
        self._art.append(self.h.getNumCol())
        self.h.addCol(self.big, 0.0, self.inf, 1, np.array([row], np.int32), np.array([sign]))

    def path(self, a: np.ndarray) -> np.ndarray:
        """Arc codes of pattern ``a`` (items by non-increasing size)."""
        types, heights = knapsack.path(a, self.w)
        return types * (self.W + 1) + heights

    def add(self, a: np.ndarray) -> bool:
        """Add pattern ``a`` (if new and feasible); True when added."""
        a = np.asarray(a, dtype=np.int64)
        key = a.tobytes()
        if key in self._seen or not a.any() or int(a @ self.w) > self.W:
            return False
        self._seen.add(key)
        path = self.path(a)
        rows = np.flatnonzero(a).tolist()
        vals = [float(a[t]) for t in rows]
        for code in path.tolist():
            r = self.arc_row.get(code)
            if r is not None:
                rows.append(r)
                vals.append(1.0)
        idx = np.asarray(rows, dtype=np.int32)
        self._col.append(self.h.getNumCol())
        self.h.addCol(1.0, 0.0, self.inf, len(idx), idx, np.asarray(vals))
        self.patterns.append(a)
        self.paths.append(path)
        return True

    def ensure_row(self, code: int) -> int:
        """The row of arc ``code`` (added, free, with its artificials, if new)."""
        r = self.arc_row.get(code)
        if r is not None:
            return r
        cols = [c for c, p in zip(self._col, self.paths, strict=True) if np.any(p == code)]
        r = self.h.getNumRow()
        self.h.addRow(
            -self.inf, self.inf, len(cols), np.asarray(cols, np.int32), np.ones(len(cols))
        )
        self.arc_row[code] = r
        self._artificial(r, 1.0)
        self._artificial(r, -1.0)
        return r

    def set_arc_bounds(self, bounds: dict[int, tuple[float, float]]) -> None:
        """Arc rows take ``bounds`` ({code: (lo, hi)}); every other arc row is free."""
        for code, r in self.arc_row.items():
            lo, hi = bounds.get(code, (-self.inf, self.inf))
            self.h.changeRowBounds(r, lo, hi)
        for code in bounds:
            if code not in self.arc_row:
                lo, hi = bounds[code]
                self.h.changeRowBounds(self.ensure_row(code), lo, hi)
        self.bounds = dict(bounds)

    def set_demand(self, demand: np.ndarray) -> None:
        self.d = np.asarray(demand, dtype=np.int64).copy()
        for t in range(self.T):
            self.h.changeRowBounds(t, float(self.d[t]), self.inf)

    # -- column generation --------------------------------------------------------
    def _duals(self) -> Duals:
        """Cover duals π, arc duals y, and their objective: clipped to the signs and
        sizes the master's dual needs (π ≥ 0, π, |y| ≤ M, y ≥ 0 only on a row with a
        lower bound, y ≤ 0 only on one with an upper bound)."""
        row = np.asarray(self.h.getSolution().row_dual)
        pi = np.clip(row[: self.T], 0.0, self.big)
        obj = float(self.d @ pi)
        y: dict[int, float] = {}
        for code, r in self.arc_row.items():
            lo, hi = self.bounds.get(code, (-self.inf, self.inf))
            v = float(np.clip(row[r], -self.big, self.big))
            if (v > 0 and lo > -self.inf) or (v < 0 and hi < self.inf):
                y[code] = v
                obj += v * (lo if v > 0 else hi)
        return pi, y, obj

    def _arc_duals(self, y: dict[int, float]) -> dict[int, knapsack.ArcDuals]:
        out: dict[int, knapsack.ArcDuals] = {}
        for code, v in y.items():
            t, h = divmod(code, self.W + 1)
            out.setdefault(t, {})[h] = v
        return out

    def solve(
        self,
        clock: Deadline | None = None,
        decide: float | None = None,
        cutoff: float | None = None,
        integer: bool = False,
    ) -> LPSolution | None:
        """Column generation on the current demands and arc bounds; None when stopped
        before the first LP.

        ``decide``: stop once the LP is known to be above ``decide`` (lower > decide +
        1e-6) or at most it (upper ≤ decide). ``cutoff``: stop once lower > cutoff +
        1e-6 (the node proves more bins than ``cutoff``: pruned). ``integer``: stop once
        ⌈lower⌉ = ⌈upper⌉ (the rounded bound cannot rise any more; a tree's node).
        """
        import highspy

        lower, it, exact = -math.inf, 0, True
        center: Duals | None = None  # the duals of the best bound so far
        while True:
            if clock is not None:
                left = clock.left()
                if left is not None:
                    if left <= 0.0 and it > 0:
                        break
                    self.h.setOptionValue("time_limit", self.h.getRunTime() + max(left, 0.01))
            self.h.run()
            if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                if it == 0:
                    return None
                break
            it += 1
            upper = float(self.h.getInfo().objective_function_value)
            last = (np.asarray(self.h.getSolution().col_value), upper, len(self._col))
            now = self._duals()
            good: list[np.ndarray] = []
            if center is not None:  # Wentges: price the smoothed duals first
                smooth = _mix(center, now)
                got, bound = self._farley(smooth)
                exact &= got.exact
                if bound >= lower:
                    lower, center = bound, smooth
                arcs = self._arc_duals(now[1]) or None
                good = [
                    a
                    for a in got.patterns
                    if knapsack.path_price(a, now[0], self.w, arcs) > 1 + EPS
                ]
            if not good:  # the first pricing, or a mis-price: at the LP's own duals
                got, bound = self._farley(now)
                exact &= got.exact
                if bound >= lower:
                    lower, center = bound, now
                good = [a for a, v in zip(got.patterns, got.prices, strict=True) if v > 1 + EPS]
                if not good:  # no column prices out at the LP's duals
                    if got.exact:
                        lower = max(lower, min(upper, bound))
                    break
            if decide is not None and (lower > decide + 1e-6 or upper <= decide):
                break
            if cutoff is not None and lower > cutoff + 1e-6:
                break
            if integer and ceil_bins(lower) >= ceil_bins(upper):
                break
            if not any([self.add(a) for a in good]):
                break  # only known columns price out: tolerances; stop here
        return self._solution(lower, it, exact, last)

    def _farley(self, duals: Duals) -> tuple[knapsack.Priced, float]:
        """The pricing of ``duals`` and Farley's bound from them."""
        pi, y, obj = duals
        got = knapsack.price(pi, self.w, self.d, self.W, self._arc_duals(y) or None, floor=1.0)
        return got, obj / max(got.upper, 1.0)

    def _solution(
        self, lower: float, it: int, exact: bool, last: tuple[np.ndarray, float, int]
    ) -> LPSolution:
        """The last LP solved to optimality (columns added after it are at 0)."""
        col, upper, known = last
        lower = min(lower, upper) if math.isfinite(lower) else 0.0
        values = np.zeros(len(self._col))
        values[:known] = col[np.asarray(self._col[:known], dtype=np.int64)]
        art = float(col[np.asarray(self._art, dtype=np.int64)].sum())
        optimal = exact and upper - lower <= 1e-9 * max(1.0, upper)
        return LPSolution(GGBound(lower, upper, optimal, it, exact), values, art)

    def arc_flows(self, values: np.ndarray) -> dict[int, float]:
        """x_(t,h) of the LP solution ``values``."""
        flows: dict[int, float] = {}
        for v, path in zip(values.tolist(), self.paths, strict=True):
            if v > 1e-9:
                for code in path.tolist():
                    flows[code] = flows.get(code, 0.0) + v
        return flows


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
    ``pool``: patterns (counts over the sizes in non-increasing order) from earlier
    calls on the same sizes; those that fit start the master, and the new ones are
    added (a search over the capacity re-solves in a few iterations).
    """
    w, d = np.unique(np.asarray(sizes, dtype=np.int64), return_counts=True)
    if len(w) == 0:
        return GGBound(0.0, 0.0, True, 0)
    if int(w[-1]) > capacity:
        raise ValueError("an item is larger than the capacity")
    master = Master(w[::-1], d[::-1], capacity)
    for a in pool or []:
        if len(a) == len(w):
            master.add(a)
    got = master.solve(Deadline(time_limit_s), decide=max_bins)
    if pool is not None:
        pool.extend(master.patterns[master.T :])
    if got is None:
        return GGBound(0.0, math.inf, False, 0, True)
    return got.bound
