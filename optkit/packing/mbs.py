"""Minimum Bin Slack packing (Gupta & Ho 1999; MBS' and its perturbation, Fleszar &
Hindi 2002), formulations/binpacking.md.

One bin at a time: the largest remaining item, plus the subset of the others
that leaves the least slack (a depth-first search over the items in decreasing
order, equal sizes tried once per depth, stopped at slack 0 or a node limit).
Perturbed runs reorder items by ``size × (1 + ε·u)`` so that different bins are
tried, and the best packing is kept. Integral sizes only.
"""

from __future__ import annotations

import time

import numpy as np

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
    sizes: np.ndarray, capacity: int, keys: np.ndarray | None = None, limit: int = NODE_LIMIT
) -> np.ndarray:
    """MBS': bin index of each item (every bin holds its largest remaining item)."""
    order = np.argsort(-(sizes if keys is None else keys), kind="stable")
    items = [int(i) for i in order]
    out = np.full(len(sizes), -1, dtype=np.int64)
    b = 0
    while items:
        first, rest = items[0], items[1:]
        rs = [int(sizes[i]) for i in rest]
        if keys is not None:  # the search wants sizes in decreasing order
            perm = sorted(range(len(rest)), key=lambda k: -rs[k])
            rest, rs = [rest[k] for k in perm], [rs[k] for k in perm]
        pick = _fill(rs, capacity - int(sizes[first]), limit)
        out[first] = b
        taken = set()
        for k in pick:
            out[rest[k]] = b
            taken.add(rest[k])
        items = [i for i in items[1:] if i not in taken]
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
    into ``target`` bins is found or ``budget_s`` runs out. The perturbation strength
    cycles through :data:`EPS` (weak keeps the decreasing order nearly intact, strong
    lets mid-size items lead bins; Schwerin instances need the strong ones)."""
    t0 = time.perf_counter()
    best = mbs(sizes, capacity)
    rng = np.random.default_rng(seed)
    run = 0
    while best.max() + 1 > target and time.perf_counter() - t0 < budget_s:
        eps = EPS[run % len(EPS)]
        run += 1
        keys = sizes * (1.0 + eps * rng.random(len(sizes)))
        plan = mbs(sizes, capacity, keys)
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
