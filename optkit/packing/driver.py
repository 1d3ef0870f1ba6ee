"""Which methods apply to a packing instance, its bounds, and the checker's verdict.

``solve`` (the ``auto`` portfolio and every single method) is in
:mod:`optkit.packing.portfolio`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from optkit.packing import arcflow
from optkit.packing import bounds as B
from optkit.packing.check import check_binpacking, check_makespan
from optkit.packing.colgen import ceil_bins
from optkit.packing.instance import BinPackingInstance, MakespanInstance
from optkit.packing.lpbound import lp_range, makespan_lp_bound
from optkit.result import Bound, Verdict, best_bound

Instance = MakespanInstance | BinPackingInstance

MAKESPAN_METHODS = ("auto", "lpt", "multifit", "kk", "mbs", "local", "milp", "cpsat", "arcflow")
BINPACKING_METHODS = ("auto", "ffd", "bfd", "mbs", "milp", "cpsat", "arcflow", "bnp")
HEURISTIC_METHODS = ("lpt", "multifit", "kk", "mbs", "local", "ffd", "bfd")


def methods(inst: Instance) -> tuple[str, ...]:
    return MAKESPAN_METHODS if isinstance(inst, MakespanInstance) else BINPACKING_METHODS


def unsupported(inst: Instance, method: str) -> str:
    """Why ``method`` cannot solve ``inst`` (empty string when it can)."""
    if method not in methods(inst):
        return f"method {method!r} does not apply to {inst.problem}; expected one of " + ", ".join(
            methods(inst)
        )
    inst = inst.normal_form()[1]  # decimals count as integers in a finer unit
    if isinstance(inst, MakespanInstance):
        integral = inst.integral
        if method in ("multifit", "kk", "mbs") and inst.kind != "identical":
            return f"method {method!r} needs identical machines (this instance: {inst.kind})"
        if method == "mbs" and not inst.integral:
            return "method 'mbs' needs integral durations"
        if method == "cpsat" and not integral:
            return "method 'cpsat' needs integral times (uniform machines: use milp or auto)"
        if method == "arcflow" and not (inst.kind == "identical" and integral):
            return "method 'arcflow' needs identical machines and integral durations"
    elif method in ("cpsat", "arcflow", "mbs", "bnp") and not inst.integral:
        return f"method {method!r} needs integral sizes and capacity"
    return ""


def check(inst: Instance, plan: Sequence[int] | np.ndarray) -> Verdict:
    """Recompute the objective of ``plan`` (machine / bin of each job / item) from the
    instance and list its violations."""
    obj, violations = raw_check(inst, plan)
    return Verdict(obj, tuple(violations))


def raw_check(inst: Instance, plan: Sequence[int] | np.ndarray) -> tuple[float, list[str]]:
    if isinstance(inst, MakespanInstance):
        return check_makespan(inst, plan)
    return check_binpacking(inst, plan)


BOUND_METHODS = ("auto", "cheap", "lp")


def bound(inst: Instance, method: str = "auto", time_limit_s: float = 10.0) -> Bound:
    """The best proven lower bound of ``method`` (``auto``: cheap bounds; ``lp``: + arc-flow LP)."""
    return best_bound(bounds(inst, method, time_limit_s))


def bounds(inst: Instance, method: str = "auto", time_limit_s: float = 10.0) -> list[Bound]:
    """Every bound of ``method``: the cheap ones, and with ``lp`` the arc-flow LP bound."""
    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}; expected auto, cheap or lp")
    factor, norm = inst.normal_form()
    if factor != 1.0:  # bounded in the solvers' unit, reported in the user's
        per = factor if isinstance(inst, MakespanInstance) else 1.0
        return [replace(b, value=b.value / per) for b in bounds(norm, method, time_limit_s)]
    out = all_bounds(inst, time_limit_s)
    start = best_bound(out).value
    if method == "lp" and math.isfinite(start):  # asked for: obtained, or says why not
        out.append(lp_bound(inst, start, time_limit_s))
    return out


def all_bounds(inst: Instance, time_limit_s: float = 10.0) -> list[Bound]:
    """Every cheap bound (of an instance in its normal form: ``bounds`` and ``solve``
    normalise first)."""
    if isinstance(inst, MakespanInstance):
        return B.makespan_bounds(inst, time_limit_s)
    return B.binpacking_bounds(inst)


def lp_bound(
    inst: Instance, start: float, time_limit_s: float | None, upper: float | None = None
) -> Bound:
    """The bin-packing LP bound (Gilmore–Gomory: column generation or the arc-flow LP,
    :func:`lp_range`) for integral data; when it does not apply or is not obtained, a
    :meth:`Bound.missing` that says why.

    P||Cmax: search on C from ``start`` up to ``upper`` (the value of a known plan;
    list scheduling's guarantee without one)."""
    if isinstance(inst, BinPackingInstance):
        if not inst.integral:
            return Bound.missing("LP", "not_applicable", "the LP bound needs integral sizes")
        try:
            got = lp_range(inst.sizes, int(inst.capacity), time_limit_s)
        except arcflow.GraphTooLarge as e:
            return Bound.missing("LP", "too_large", str(e))
        if got is None:
            return Bound.missing("LP", "time_limit", "the LP was not solved in the time limit")
        lower, upper = got
        if lower < upper - 1e-6 * max(1.0, upper):  # proven, but not the LP itself
            why = (
                f"column generation stopped at Farley's bound {lower:.4f} below the LP "
                f"(at most {upper:.4f}): the time limit or the pricing grid of a large capacity"
            )
            return Bound(float(ceil_bins(lower)), "LP", reason=why)
        return Bound(float(ceil_bins(lower)), "LP")
    if inst.kind != "identical" or not inst.integral:
        why = "the LP bound needs identical machines and integral durations"
        return Bound.missing("LP", "not_applicable", why)
    p, m = inst.durations, inst.m
    assert p is not None
    hi = int(math.ceil(float(p.sum()) / m + float(p.max())))  # list scheduling
    if upper is not None:
        hi = min(hi, int(math.ceil(upper - 1e-9)))
    try:
        C = makespan_lp_bound(p, m, int(start), hi, time_limit_s)
    except arcflow.GraphTooLarge as e:
        return Bound.missing("LP", "too_large", str(e))
    return Bound(float(C), "LP")
