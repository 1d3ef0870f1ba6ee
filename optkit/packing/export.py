"""Export the exact models of a packing instance as LP or MPS files."""

from __future__ import annotations

from pathlib import Path

from optkit.io import atomic_path
from optkit.packing import arcflow, exact
from optkit.packing.bounds import makespan_bounds
from optkit.packing.heuristics import first_fit_decreasing
from optkit.packing.instance import BinPackingInstance, MakespanInstance
from optkit.result import best_bound
from optkit.solvers import write_pulp


def export_model(
    inst: MakespanInstance | BinPackingInstance,
    method: str,
    fmt: str,
    path: Path,
    capacity: int | None = None,
) -> str:
    """Write the ``milp`` (PuLP) or ``arcflow`` (HiGHS) model; returns a note for the user."""
    note = ""
    if method == "milp":
        if isinstance(inst, MakespanInstance):
            prob = exact.build_makespan_milp(inst)[0]
        else:
            upper = int(first_fit_decreasing(inst).max() + 1) if inst.n else 0
            prob = exact.build_binpacking_milp(inst, upper)[0]
            note = f"{upper} candidate bins (first-fit decreasing)"
        return write_pulp(prob, fmt, path, note)
    if isinstance(inst, BinPackingInstance):
        sizes, cap = inst.sizes, inst.capacity
        if not inst.integral:
            raise ValueError("the arc-flow model needs integral sizes and capacity")
        g = arcflow.build_graph(sizes, cap)
        h = arcflow.build_model(g)
    else:
        if inst.kind != "identical" or not inst.integral:
            raise ValueError("the arc-flow model needs identical machines and integral durations")
        assert inst.durations is not None
        cap = capacity if capacity is not None else int(best_bound(makespan_bounds(inst)).value)
        g = arcflow.build_graph(inst.durations, cap)
        h = arcflow.build_model(g, max_bins=inst.m)
        note = f"bins of capacity C={cap}: feasible iff the makespan can be <= {cap}"
    with atomic_path(path, f".{fmt}") as tmp:  # HiGHS reads the format from the suffix
        h.writeModel(str(tmp))
    return (note + "; " if note else "") + f"graph {g.n_nodes} nodes, {g.n_arcs} arcs"
