"""Minimum Bin Slack packing (Gupta & Ho 1999; MBS' and its perturbation, Fleszar &
Hindi 2002), formulations/binpacking.md.

One bin at a time: the leading remaining item (the largest, or the first by a
perturbed key), plus the subset of the others that leaves the least slack (a
depth-first search over the items in decreasing size, equal sizes tried once
per depth, stopped at slack 0 or a node limit). Perturbed runs order the
leaders by ``size × (1 + ε·u)`` so that different bins are tried, and the best
packing is kept. Integral sizes only.
"""

from __future__ import annotations

import time

import numpy as np

from optkit.packing.heuristics import first_fit_decreasing
from optkit.packing.instance import BinPackingInstance

#: Search nodes per bin before the best subset found so far is taken.
NODE_LIMIT = 1_000
#: Perturbation strengths, used in turn.
EPS = (0.1, 0.3, 1.0)


def _fill(sizes: list[int], room: int, limit: int) -> list[int]:
    """Positions (into ``sizes``, sorted decreasing) of a subset with the largest sum
    <= ``room``."""
    n = len(sizes)
    suffix = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + sizes[i]
    if suffix[0] <= room:
        return list(range(n))
    best_sum = 0
    best: list[int] = []
    chosen: list[int] = []
    nodes = 0

    def dfs(start: int, used: int) -> bool:
        nonlocal best_sum, best, nodes
        nodes += 1
        if used > best_sum:
            best_sum, best = used, chosen.copy()
            if used == room:
                return True
        if nodes > limit or used + suffix[start] <= best_sum:
            return False
        prev = -1
        for j in range(start, n):
            s = sizes[j]
            if s == prev or used + s > room:
                continue
            if used + suffix[j] <= best_sum:
                return False
            prev = s
            chosen.append(j)
            if dfs(j + 1, used + s):
                return True
            chosen.pop()
            if nodes > limit:
                return False
        return False

    dfs(0, 0)
    return best


def mbs(
    sizes: np.ndarray,
    capacity: int,
    keys: np.ndarray | None = None,
    limit: int = NODE_LIMIT,
    deadline: float | None = None,
) -> np.ndarray:
    """MBS': bin index of each item (every bin holds its leading remaining item).

    ``keys`` order the leaders (default: the sizes); the fill search always runs over
    the sizes in decreasing order. Past ``deadline`` (a ``time.perf_counter()`` value)
    the items left are packed by first-fit decreasing, so a packing always comes back.
    """
    sz = [int(x) for x in sizes]
    by_size = [int(i) for i in np.argsort(-sizes, kind="stable")]
    lead = by_size if keys is None else [int(i) for i in np.argsort(-keys, kind="stable")]
    out = np.full(len(sizes), -1, dtype=np.int64)
    alive = by_size  # unpacked items, in decreasing size
    nxt = 0  # position in ``lead`` of the next leader candidate
    b = 0
    while alive:
        if deadline is not None and time.perf_counter() > deadline:
            left = np.array(alive, dtype=np.int64)
            rest_inst = BinPackingInstance(capacity, sizes[left].astype(float))
            out[left] = b + first_fit_decreasing(rest_inst)
            break
        while out[lead[nxt]] >= 0:
            nxt += 1
        first = lead[nxt]
        rest = [i for i in alive if i != first]
        pick = _fill([sz[i] for i in rest], capacity - sz[first], limit)
        out[first] = b
        for k in pick:
            out[rest[k]] = b
        alive = [i for i in rest if out[i] < 0]
        b += 1
    return out


def perturbed_mbs(
    sizes: np.ndarray,
    capacity: int,
    target: int,
    budget_s: float,
    seed: int = 0,
) -> np.ndarray:
    """The best of MBS' on the true order and on perturbed orders, until a packing
    into ``target`` bins is found or ``budget_s`` runs out (a run cut short by it
    finishes with first-fit decreasing). The perturbation strength
    cycles through :data:`EPS` (weak keeps the decreasing order nearly intact, strong
    lets mid-size items lead bins; Schwerin instances need the strong ones)."""
    deadline = time.perf_counter() + budget_s
    best = mbs(sizes, capacity, deadline=deadline)
    rng = np.random.default_rng(seed)
    run = 0
    while best.max() + 1 > target and time.perf_counter() < deadline:
        eps = EPS[run % len(EPS)]
        run += 1
        keys = sizes * (1.0 + eps * rng.random(len(sizes)))
        plan = mbs(sizes, capacity, keys, deadline=deadline)
        if plan.max() < best.max():
            best = plan
    return best


def bins_to_machines(p: np.ndarray, bins: np.ndarray, m: int) -> np.ndarray:
    """Fold a packing with more than ``m`` bins onto ``m`` machines: bins by decreasing
    load, each onto the least loaded machine (LPT over bins)."""
    nb = int(bins.max()) + 1 if len(bins) else 0
    load = np.bincount(bins, weights=p, minlength=nb)
    machine_load = np.zeros(m)
    of_bin = np.empty(nb, dtype=np.int64)
    for b in np.argsort(-load, kind="stable"):
        i = int(np.argmin(machine_load))
        of_bin[b] = i
        machine_load[i] += load[b]
    return of_bin[bins]
