"""Improvement of a whole schedule: local search on the assignment of requests to clients,
each candidate judged by simulating the two clients it changes (formulations/serving.md,
"Improvement step")."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from optkit.serving.bounds import workloads
from optkit.serving.instance import ServingInstance
from optkit.serving.policies import Scheduler
from optkit.serving.simulate import simulate_client
from optkit.solvers import Deadline

CANDIDATES = 6  # requests tried per (from, to) client pair and move kind


def client_makespan(
    inst: ServingInstance, ids: np.ndarray, make: Callable[[int], Scheduler], i: int
) -> float:
    """The time client ``i`` finishes the requests ``ids`` under its scheduler."""
    if len(ids) == 0:
        return 0.0
    first = np.full(inst.n, np.nan)
    finish = np.full(inst.n, np.nan)
    simulate_client(inst, ids, make(i), inst.output, first, finish)
    return float(np.max(finish[ids]))


def local_search(
    inst: ServingInstance,
    assign: np.ndarray,
    make: Callable[[int], Scheduler],
    clock: Deadline,
    max_rounds: int = 200,
) -> tuple[np.ndarray, int]:
    """Moves and swaps of requests off the client that finishes last, kept when both
    clients then finish before it did; until no move helps, ``max_rounds`` moves were
    made or the clock runs out. Returns the assignment and the moves made."""
    m = inst.clients
    a = np.asarray(assign, dtype=np.int64).copy()
    if m < 2 or inst.n < 2:
        return a, 0
    w = workloads(inst)
    span = np.array([client_makespan(inst, np.flatnonzero(a == i), make, i) for i in range(m)])
    moves = 0
    while moves < max_rounds and not clock.expired():
        top = int(np.argmax(span))
        done = False
        for low in np.argsort(span):
            low = int(low)
            if low == top or clock.expired():
                break
            src, dst = np.flatnonzero(a == top), np.flatnonzero(a == low)
            half = (span[top] - span[low]) / 2
            # moves: the requests whose workload is nearest half the difference
            tries: list[tuple[int, int]] = [
                (int(j), -1) for j in src[np.argsort(np.abs(w[src] - half))[:CANDIDATES]]
            ]
            if len(dst):  # swaps: pairs whose workload difference is nearest half of it
                big = src[np.argsort(-w[src])[:CANDIDATES]]
                for j in big:
                    k = dst[np.argmin(np.abs(w[j] - w[dst] - half))]
                    tries.append((int(j), int(k)))
            for j, k in tries:
                if clock.expired():
                    break
                a[j] = low
                if k >= 0:
                    a[k] = top
                t_top = client_makespan(inst, np.flatnonzero(a == top), make, top)
                t_low = client_makespan(inst, np.flatnonzero(a == low), make, low)
                if max(t_top, t_low) < span[top] * (1 - 1e-9):
                    span[top], span[low] = t_top, t_low
                    moves += 1
                    done = True
                    break
                a[j] = top  # undo
                if k >= 0:
                    a[k] = low
            if done:
                break
        if not done:
            break
    return a, moves
