"""Independent verifiers: recompute a plan's objective from scratch and list every violation.

They share no code with the solvers on purpose: a plan is trusted only after it
passes here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optkit.packing.instance import BinPackingInstance, MakespanInstance

Plan = Sequence[int] | np.ndarray


def check_makespan(inst: MakespanInstance, plan: Plan) -> tuple[float, list[str]]:
    """Return (makespan, violations) of ``plan`` (machine index of each job)."""
    problems: list[str] = []
    a = np.asarray(plan)
    if a.ndim != 1 or len(a) != inst.n:
        return float("inf"), [f"plan has {a.size} entries, expected one per job ({inst.n})"]
    if inst.n == 0:
        return 0.0, []
    if not np.issubdtype(a.dtype, np.integer):
        return float("inf"), ["plan entries must be integer machine indices"]
    bad = np.flatnonzero((a < 0) | (a >= inst.m))
    if len(bad):
        j = int(bad[0])
        return float("inf"), [f"job {j} is on machine {int(a[j])}, outside 0..{inst.m - 1}"]
    if inst.times is not None:
        t = inst.times[a, np.arange(inst.n)]
        forbidden = np.flatnonzero(~np.isfinite(t))
        for j in forbidden[:5]:
            problems.append(f"job {inst.job_label(int(j))} is not allowed on machine {int(a[j])}")
        if len(forbidden):
            return float("inf"), problems
    else:
        assert inst.durations is not None
        t = inst.durations if inst.speeds is None else inst.durations / inst.speeds[a]
    loads = np.zeros(inst.m)
    np.add.at(loads, a, t)
    return float(loads.max()), problems


def check_binpacking(inst: BinPackingInstance, plan: Plan) -> tuple[float, list[str]]:
    """Return (number of bins used, violations) of ``plan`` (bin index of each item)."""
    a = np.asarray(plan)
    if a.ndim != 1 or len(a) != inst.n:
        return float("inf"), [f"plan has {a.size} entries, expected one per item ({inst.n})"]
    if inst.n == 0:
        return 0.0, []
    if not np.issubdtype(a.dtype, np.integer) or a.min() < 0:
        return float("inf"), ["plan entries must be non-negative integer bin indices"]
    bins, slot = np.unique(a, return_inverse=True)  # bin ids may be sparse and large
    fill = np.bincount(slot, weights=inst.sizes)
    over = np.flatnonzero(fill > inst.capacity * (1 + 1e-12))
    problems = [
        f"bin {int(bins[b])} holds {fill[b]:g} > capacity {inst.capacity:g}" for b in over[:5]
    ]
    return float(len(bins)), problems
