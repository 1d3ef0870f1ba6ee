"""Large neighbourhood search with exact arc-flow repair (integral data).

Destroy a few machines (bins), repack their jobs exactly with a small arc-flow
MILP, keep the result if it is better. The sub-problems have a handful of
machines and a few dozen jobs, so HiGHS solves them in milliseconds; the
neighbourhood is far larger than moves and swaps, and it finds the tight
"perfect" packings on which local search stalls.

- makespan: the critical machine and k - 1 others must all fit in C_max - 1;
  success lowers the number of machines at C_max (or C_max itself).
- bin packing: the lightest bin and k - 1 others must fit in k - 1 bins;
  success removes one bin.
"""

from __future__ import annotations

import time

import numpy as np

from optkit.packing import arcflow

#: Sub-problems with graphs up to this many arcs are solved in this process (no fork);
#: HiGHS can overrun its time limit in the root cut loop, so larger ones run in a child
#: that is stopped at the deadline (seen: 20 s past a 2 s limit on P||Cmax NU_2).
IN_PROCESS_ARCS = 2_000


def _repack(sizes: np.ndarray, capacity: int, bins: int, time_limit_s: float) -> np.ndarray | None:
    try:
        g = arcflow.build_graph(sizes, capacity)
        sol = arcflow.solve(
            sizes,
            capacity,
            max_bins=bins,
            time_limit_s=time_limit_s,
            graph=g,
            in_process=g.n_arcs <= IN_PROCESS_ARCS,
        )
    except arcflow.GraphTooLarge:
        return None
    return sol.plan if sol.plan is not None and sol.bins is not None and sol.bins <= bins else None


def makespan(
    p: np.ndarray,
    m: int,
    plan: np.ndarray,
    target: float,
    time_limit_s: float,
    k: int = 6,
    seed: int = 0,
) -> np.ndarray:
    """Improve an identical-machine plan (integral ``p``) until C_max <= target or time is up."""
    plan = np.array(plan, dtype=np.int64, copy=True)
    if m < 2 or len(p) == 0:
        return plan
    pi = np.asarray(p, dtype=np.int64)
    rng = np.random.default_rng(seed)
    loads = np.bincount(plan, weights=pi, minlength=m).astype(np.int64)
    t0 = time.perf_counter()
    k = min(k, m)
    while time.perf_counter() - t0 < time_limit_s and loads.max() > target:
        cmax = int(loads.max())
        crit = np.flatnonzero(loads == cmax)
        c = int(rng.choice(crit))
        others = np.flatnonzero(np.arange(m) != c)
        # Bias towards light machines (they hold the slack), plus random ones.
        light = others[np.argsort(loads[others], kind="stable")][: max(1, (k - 1) // 2)]
        pool = np.setdiff1d(others, light)
        extra = rng.choice(pool, size=min(len(pool), k - 1 - len(light)), replace=False)
        chosen = np.concatenate([[c], light, extra]).astype(np.int64)
        jobs = np.flatnonzero(np.isin(plan, chosen))
        left = time_limit_s - (time.perf_counter() - t0)
        sub = _repack(pi[jobs], cmax - 1, len(chosen), min(2.0, max(0.05, left)))
        if sub is None:
            continue
        plan[jobs] = chosen[sub]
        loads = np.bincount(plan, weights=pi, minlength=m).astype(np.int64)
    return plan


def binpacking(
    sizes: np.ndarray,
    capacity: int,
    plan: np.ndarray,
    target: int,
    time_limit_s: float,
    k: int = 6,
    seed: int = 0,
) -> np.ndarray:
    """Remove bins from a packing (integral sizes) until it uses ``target`` bins or time is up."""
    plan = np.array(plan, dtype=np.int64, copy=True)
    w = np.asarray(sizes, dtype=np.int64)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < time_limit_s:
        used = np.unique(plan)
        if len(used) <= target or len(used) < 2:
            break
        fill = np.bincount(plan, weights=w)[used]
        kk = min(k, len(used))
        lightest = used[int(np.argmin(fill))]
        rest = used[used != lightest]
        chosen = np.concatenate([[lightest], rng.choice(rest, size=kk - 1, replace=False)])
        items = np.flatnonzero(np.isin(plan, chosen))
        left = time_limit_s - (time.perf_counter() - t0)
        sub = _repack(w[items], capacity, kk - 1, min(2.0, max(0.05, left)))
        if sub is None:
            continue
        plan[items] = chosen[:-1][sub] if kk > 1 else plan[items]
        # Relabel bins 0..B-1.
        _, plan = np.unique(plan, return_inverse=True)
    return plan
