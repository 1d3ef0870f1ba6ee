"""Fast offline heuristics for makespan scheduling and bin packing.

Every function returns a plan: a numpy int array with the machine (or bin) of
each job (item). None of them claims optimality; the caller grades them with
the bounds in :mod:`optkit.packing.bounds` and verifies them with ``check``.
"""

from __future__ import annotations

import bisect
import heapq
import time

import numpy as np

from optkit.packing.instance import BinPackingInstance, MakespanInstance

_EPS = 1e-9


# ----------------------------------------------------------------------------------------
# Makespan
# ----------------------------------------------------------------------------------------


def lpt(inst: MakespanInstance) -> np.ndarray:
    """Longest Processing Time first; on uniform/unrelated machines, earliest completion.

    Identical machines: O(n log n + n log m) with a heap (integer keys when the
    data are integral, which is several times faster in CPython).
    """
    n, m = inst.n, inst.m
    plan = np.zeros(n, dtype=np.int64)
    if n == 0:
        return plan
    if inst.kind != "identical":
        return earliest_completion(inst)
    p = inst.durations
    assert p is not None
    order = np.argsort(-p, kind="stable")
    out = [0] * n
    if inst.integral and float(p.sum()) * m < 2**62:
        heap = list(range(m))  # key = load * m + machine
        pi = p.astype(np.int64)[order].tolist()
        for j, pj in zip(order.tolist(), pi, strict=True):
            k = heap[0]
            out[j] = k % m
            heapq.heapreplace(heap, k + pj * m)
    else:
        fheap = [(0.0, i) for i in range(m)]
        for j, pj in zip(order.tolist(), p[order].tolist(), strict=True):
            load, i = fheap[0]
            out[j] = i
            heapq.heapreplace(fheap, (load + pj, i))
    plan[:] = out
    return plan


def earliest_completion(inst: MakespanInstance) -> np.ndarray:
    """Jobs by non-increasing shortest time; each to the machine where it finishes first."""
    n = inst.n
    t = inst.time_matrix()
    order = np.argsort(-inst.min_times(), kind="stable")
    loads = np.zeros(inst.m)
    plan = np.zeros(n, dtype=np.int64)
    for j in order:
        finish = loads + t[:, j]
        i = int(np.argmin(finish))
        plan[j] = i
        loads[i] = finish[i]
    return plan


def _ffd_into(p_sorted: np.ndarray, m: int, C: float) -> np.ndarray | None:
    """First-fit decreasing of (already sorted) jobs into m bins of size C; None if it fails."""
    resid = np.full(m, C)
    out = np.empty(len(p_sorted), dtype=np.int64)
    for k, pj in enumerate(p_sorted):
        ok = resid >= pj - _EPS
        i = int(np.argmax(ok))
        if not ok[i]:
            return None
        resid[i] -= pj
        out[k] = i
    return out


def multifit(inst: MakespanInstance, iterations: int = 12) -> np.ndarray:
    """MULTIFIT (Coffman, Garey & Johnson): binary search on C with FFD into m bins."""
    assert inst.kind == "identical" and inst.durations is not None
    p, m = inst.durations, inst.m
    if inst.n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    lo = max(float(p.sum()) / m, float(p.max()))
    hi = max(2 * float(p.sum()) / m, float(p.max()))
    best = _ffd_into(ps, m, hi)
    assert best is not None  # FFD always fits at 2 * average (Coffman et al.)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if inst.integral:
            mid = float(np.floor(mid))
            if mid < lo:
                break
        got = _ffd_into(ps, m, mid)
        if got is None:
            lo = mid if not inst.integral else mid + 1
        else:
            best, hi = got, mid
        if hi - lo < _EPS * max(1.0, hi):
            break
    plan = np.empty(inst.n, dtype=np.int64)
    plan[order] = best
    return plan


def karmarkar_karp(inst: MakespanInstance) -> np.ndarray:
    """m-way largest differencing (Karmarkar–Karp; Korf's complete-KK first leaf).

    Each partial solution is m subsets with their sums sorted non-increasing;
    repeatedly merge the two partials with the largest spread, largest sum with
    smallest sum.
    """
    assert inst.kind == "identical" and inst.durations is not None
    p, m = inst.durations, inst.m
    n = inst.n
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    heap: list[tuple[float, int, np.ndarray, list[list[int]]]] = []
    for j in range(n):
        sums = np.zeros(m)
        sums[0] = p[j]
        subsets: list[list[int]] = [[j]] + [[] for _ in range(m - 1)]
        heap.append((-float(p[j]), j, sums, subsets))
    heapq.heapify(heap)
    counter = n
    while len(heap) > 1:
        _, _, s1, g1 = heapq.heappop(heap)
        _, _, s2, g2 = heapq.heappop(heap)
        sums = s1 + s2[::-1]
        groups = [a + b for a, b in zip(g1, g2[::-1], strict=True)]
        order = np.argsort(-sums, kind="stable")
        sums = sums[order]
        groups = [groups[i] for i in order]
        counter += 1
        heapq.heappush(heap, (-(float(sums[0] - sums[-1])), counter, sums, groups))
    plan = np.zeros(n, dtype=np.int64)
    for i, g in enumerate(heap[0][3]):
        plan[g] = i
    return plan


def local_search(
    inst: MakespanInstance,
    plan: np.ndarray,
    time_limit_s: float = 1.0,
    target: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Descent on the critical (most loaded) machine, then iterated pair re-balancing.

    Moves and swaps of jobs between the critical machine c and another machine,
    and (integral identical machines) optimal re-partition of the jobs of c and
    another machine by subset-sum dynamic programming, are applied when both new
    loads are below C_max: the pair (C_max, number of machines at C_max) then
    decreases lexicographically, so each descent terminates. When it is stuck,
    random pairs of machines are re-balanced (never raising C_max) and the
    descent restarts, until ``target`` (e.g. a lower bound) is reached or time
    runs out. Works for every machine environment through the time matrix.
    """
    plan = np.array(plan, dtype=np.int64, copy=True)
    n, m = inst.n, inst.m
    if n == 0 or m == 1:
        return plan
    t0 = time.perf_counter()
    t = inst.time_matrix()
    loads = machine_loads(inst, plan)
    pairs = _PairBalancer(inst) if inst.kind == "identical" and inst.integral else None
    rng = np.random.default_rng(seed)
    best, best_c = plan.copy(), float(loads.max())
    goal = -np.inf if target is None else target + _EPS * max(1.0, abs(target))
    while True:
        _descend(t, plan, loads, pairs, t0, time_limit_s)
        cmax = float(loads.max())
        if cmax < best_c - _EPS * max(1.0, best_c):
            best, best_c = plan.copy(), cmax
        if best_c <= goal or pairs is None or time.perf_counter() - t0 > time_limit_s:
            break
        # Plateau moves: re-balance random machine pairs (C_max never rises).
        for _ in range(max(4, m // 2)):
            i, k = rng.choice(m, size=2, replace=False)
            pairs.rebalance(plan, loads, int(i), int(k), loads[[i, k]].max(), strict=False)
    return best


def _descend(
    t: np.ndarray,
    plan: np.ndarray,
    loads: np.ndarray,
    pairs: _PairBalancer | None,
    t0: float,
    time_limit_s: float,
) -> None:
    while time.perf_counter() - t0 <= time_limit_s:
        c = int(np.argmax(loads))
        cmax = loads[c]
        tol = _EPS * max(1.0, cmax)
        on_c = np.flatnonzero(plan == c)
        # Moves: every (job on c, target machine k != c).
        new_k = loads[:, None] + t[:, on_c]
        new_k[c, :] = np.inf
        k, jj = np.unravel_index(int(np.argmin(new_k)), new_k.shape)
        if new_k[k, jj] < cmax - tol:
            j = on_c[jj]
            loads[c] -= t[c, j]
            loads[k] += t[k, j]
            plan[j] = k
            continue
        if pairs is not None:
            improved = False
            for k in np.argsort(loads).tolist():
                if k != c and pairs.rebalance(plan, loads, c, k, cmax, strict=True):
                    improved = True
                    break
            if improved:
                continue
        # Swaps: job j on c with job l elsewhere.
        others = np.flatnonzero(plan != c)
        if len(others) == 0 or len(on_c) == 0:
            return
        if len(on_c) * len(others) > 4_000_000:
            others = others[np.argsort(loads[plan[others]])[: max(1, 4_000_000 // len(on_c))]]
        kl = plan[others]
        tc_j = t[c, on_c][:, None]
        tc_l = t[c, others][None, :]
        tk_j = t[kl[None, :], on_c[:, None]]
        tk_l = t[kl, others][None, :]
        new_c = cmax - tc_j + tc_l
        new_o = loads[kl][None, :] - tk_l + tk_j
        worst = np.maximum(new_c, new_o)
        a, b = np.unravel_index(int(np.argmin(worst)), worst.shape)
        if worst[a, b] < cmax - tol:
            j, l_ = on_c[a], others[b]
            kb = int(kl[b])
            loads[c] = new_c[a, b]
            loads[kb] = new_o[a, b]
            plan[j], plan[l_] = kb, c
            continue
        return


class _PairBalancer:
    """Optimal re-partition of two identical machines' jobs by subset-sum (bitset DP)."""

    #: Skip pairs whose DP would shift more than this many bits in total.
    MAX_WORK = 400_000_000

    def __init__(self, inst: MakespanInstance) -> None:
        assert inst.durations is not None
        self.p = inst.durations.astype(np.int64)

    def rebalance(
        self, plan: np.ndarray, loads: np.ndarray, i: int, k: int, cmax: float, strict: bool
    ) -> bool:
        """Re-split the jobs of machines i and k as evenly as possible.

        Applied when the larger new load is below ``cmax`` (strict) or not above it.
        Returns True when the plan changed.
        """
        jobs = np.flatnonzero((plan == i) | (plan == k))
        if len(jobs) < 2:
            return False
        vals = self.p[jobs].tolist()
        total = int(sum(vals))
        if total * len(vals) > self.MAX_WORK:
            return False
        half = total // 2
        reach = [1]
        r = 1
        mask = (1 << (half + 1)) - 1
        for v in vals:
            r = (r | (r << v)) & mask
            reach.append(r)
        s = r.bit_length() - 1  # largest subset sum <= total / 2
        new_max = total - s
        if new_max > cmax - 0.5 if strict else new_max > cmax:
            return False
        side = np.zeros(len(jobs), dtype=bool)
        for idx in range(len(vals) - 1, -1, -1):
            if not (reach[idx] >> s) & 1:
                side[idx] = True
                s -= vals[idx]
        before = plan[jobs].copy()
        plan[jobs[side]] = i
        plan[jobs[~side]] = k
        loads[i] = float(self.p[jobs[side]].sum())
        loads[k] = float(self.p[jobs[~side]].sum())
        return bool(np.any(before != plan[jobs]))


def machine_loads(inst: MakespanInstance, plan: np.ndarray) -> np.ndarray:
    """Finish time of every machine under ``plan`` (no validation; ``check`` does that)."""
    loads = np.zeros(inst.m)
    np.add.at(loads, plan, inst.time_matrix()[plan, np.arange(inst.n)])
    return loads


# ----------------------------------------------------------------------------------------
# Bin packing
# ----------------------------------------------------------------------------------------


def first_fit_decreasing(inst: BinPackingInstance) -> np.ndarray:
    """FFD: items by non-increasing size, each into the lowest-index bin where it fits."""
    w, W = inst.sizes, inst.capacity
    order = np.argsort(-w, kind="stable")
    resid = np.empty(0)
    plan = np.zeros(inst.n, dtype=np.int64)
    nb = 0
    for j in order:
        ok = resid[:nb] >= w[j] - _EPS * W
        i = int(np.argmax(ok)) if nb else 0
        if nb == 0 or not ok[i]:
            if nb == len(resid):
                resid = np.concatenate([resid, np.full(max(16, nb), W)])
            i = nb
            nb += 1
        resid[i] -= w[j]
        plan[j] = i
    return plan


def best_fit_decreasing(inst: BinPackingInstance) -> np.ndarray:
    """BFD: items by non-increasing size, each into the fullest bin where it fits."""
    w, W = inst.sizes, inst.capacity
    order = np.argsort(-w, kind="stable")
    keys: list[tuple[float, int]] = []  # (residual, bin), sorted
    plan = np.zeros(inst.n, dtype=np.int64)
    nb = 0
    for j in order.tolist():
        wj = float(w[j])
        pos = bisect.bisect_left(keys, (wj - _EPS * W, -1))
        if pos < len(keys):
            r, b = keys.pop(pos)
        else:
            r, b = W, nb
            nb += 1
        plan[j] = b
        bisect.insort(keys, (r - wj, b))
    return plan
