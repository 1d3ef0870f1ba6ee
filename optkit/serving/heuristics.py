"""Offline plan: assignment by makespan packing of the workloads, then per-client order."""

from __future__ import annotations

import numpy as np

from optkit.serving.bounds import workloads
from optkit.serving.instance import ServingInstance
from optkit.solvers import SolverOptions


def packing_assignment(
    inst: ServingInstance, time_limit_s: float = 5.0
) -> tuple[np.ndarray, object]:
    """Client per request from ``optkit.packing.solve`` on (w_j, m): (plan, packing result)."""
    from optkit.packing import MakespanInstance, solve

    w = np.round(workloads(inst), 6)  # microseconds: packing solves them as integers
    pk = MakespanInstance.identical(w, inst.clients, name=inst.name)
    res = solve(pk, options=SolverOptions(time_limit_s=time_limit_s))
    return np.asarray(res.plan, dtype=np.int64), res
