"""Brute-force optima for tiny instances (independent of the solvers under test)."""

from __future__ import annotations

import itertools

import numpy as np

from optkit.packing import BinPackingInstance, MakespanInstance


def brute_makespan(inst: MakespanInstance) -> float:
    t = inst.time_matrix()
    best = np.inf
    for a in itertools.product(range(inst.m), repeat=inst.n):
        loads = np.zeros(inst.m)
        for j, i in enumerate(a):
            loads[i] += t[i, j]
        best = min(best, loads.max())
    return float(best)


def brute_bins(inst: BinPackingInstance) -> int:
    if inst.n == 0:
        return 0
    for k in range(1, inst.n + 1):
        for a in itertools.product(range(k), repeat=inst.n):
            fill = np.bincount(np.array(a), weights=inst.sizes, minlength=k)
            if fill.max() <= inst.capacity + 1e-9:
                return k
    raise AssertionError("no packing")
