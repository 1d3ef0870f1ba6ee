"""The LP dive: a primal heuristic on the arc-flow LP (formulations/binpacking.md,
"LP dive"). Its first LP is the arc-flow LP bound, which the callers reuse."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from optkit.packing.arcflow import (
    IPM_ARCS,
    ArcFlowGraph,
    build_graph,
    build_model,
    fractional_paths,
    solve,
)
from optkit.packing.bins import plan_of_bins

#: Rounds of fixings a failed dive undoes (one MILP on the rest after each).
DIVE_BACKTRACKS = 3


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
    held = list(bins)
    if rest is not None:
        k = int(rest[1].max()) + 1 if len(rest[1]) else 0
        held += [rest[0][rest[1] == b] for b in range(k)]
    plan = plan_of_bins(s, held)
    if plan is None:
        raise AssertionError("the dive's bins do not hold every item")
    return plan
