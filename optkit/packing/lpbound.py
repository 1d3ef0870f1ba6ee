"""LP bounds from the bin-packing LP relaxation (Gilmore–Gomory): for bin packing, and
for P||Cmax by a search on the capacity C (formulations/makespan.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress

import numpy as np

from optkit.packing.arcflow import ArcFlowGraph, solve


def lp_range(
    sizes: np.ndarray,
    capacity: int,
    time_limit_s: float | None = None,
    pool: list[np.ndarray] | None = None,
    graph: ArcFlowGraph | None = None,
    search: bool = False,
) -> tuple[float, float] | None:
    """(proven lower, upper) on the value of a bin-packing LP relaxation (so the lower
    one bounds the number of bins); None when it was not solved.

    The arc-flow LP (then lower == upper) below ``COLGEN_MIN_CELLS`` sizes x capacity
    or when its compressed graph is small; else column generation
    (:mod:`optkit.packing.colgen`), which also serves every capacity the arc-flow
    graph cannot (its bound is then the pricing grid's when the table is too large).
    ``pool``: column generation's patterns, shared across calls on the same sizes.
    ``search``: one of many calls at nearby capacities (P||Cmax's search on C): column
    generation from ``COLGEN_MIN_CELLS`` on, graph or not, since its pool carries over
    from one C to the next and the arc-flow LP starts afresh (NU_2_0050_05_0 at
    C = 9439: 0.09 s pooled against 1.34 s for the LP of its 43k-arc graph).
    """
    from optkit.packing import colgen
    from optkit.packing.arcflow import GraphTooLarge, build_graph

    t0 = time.perf_counter()
    cells = len(np.unique(sizes)) * capacity
    if search and cells >= colgen.COLGEN_MIN_CELLS:
        graph = None
    elif graph is None and colgen.COLGEN_MIN_CELLS <= cells <= colgen.ARCFLOW_BUILD_CELLS:
        with suppress(GraphTooLarge):
            graph = build_graph(sizes, capacity)
    small = graph is not None and graph.n_arcs <= colgen.ARCFLOW_MAX_ARCS
    if cells < colgen.COLGEN_MIN_CELLS or small:
        try:
            sol = solve(sizes, capacity, graph=graph, relax=True, time_limit_s=time_limit_s)
        except GraphTooLarge:
            pass
        else:
            if sol.status != "optimal" or sol.lp_value is None:
                return None
            return sol.lp_value, sol.lp_value
    left = None if time_limit_s is None else max(0.01, time_limit_s - (time.perf_counter() - t0))
    gg = colgen.lp_bound(sizes, capacity, time_limit_s=left, pool=pool)  # the graph's time counted
    if gg.iterations == 0:
        return None
    return gg.lower, gg.upper


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
    from optkit.packing import colgen
    from optkit.packing.bounds import raise_by_search

    t0 = time.perf_counter()
    pool: list[np.ndarray] = []  # column generation's patterns at one C start the next
    types = len(np.unique(p))

    def excess(C: int) -> float:
        """LP(C) - m - 1e-6: > 0 exactly when it proves C infeasible (bound > m);
        0 when the LP was not solved."""
        left = None if time_limit_s is None else max(0.1, time_limit_s - (time.perf_counter() - t0))
        # lp_range(search=True) prices by column generation from COLGEN_MIN_CELLS on:
        # the caller's graph is built only where it will be used
        small = types * C < colgen.COLGEN_MIN_CELLS
        graph = graph_of(C) if graph_of is not None and small else None
        got = lp_range(p, C, left, pool, graph, search=True)
        if got is None:
            return 0.0
        lower, upper = got  # the proven side when it refutes, else the value's estimate
        return lower - m - 1e-6 if lower > m + 1e-6 else min(0.0, upper - m - 1e-6)

    return raise_by_search(lo, hi, excess, time_limit_s)
