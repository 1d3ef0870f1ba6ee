"""Cheap, provably valid lower bounds for makespan scheduling and bin packing.

The proofs are in ``formulations/makespan.md`` and ``formulations/binpacking.md``;
the function names and symbols follow them. All functions are vectorised
(numpy) and return plain floats. For integral data the bounds are rounded up,
which is valid because the optimum is then an integer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from optkit.packing.instance import BinPackingInstance, MakespanInstance
from optkit.result import Bound

_EPS = 1e-9


def _ceil(x: float, integral: bool) -> float:
    return float(math.ceil(x - _EPS * max(1.0, abs(x)))) if integral else float(x)


# ----------------------------------------------------------------------------------------
# 1-D bin packing (capacity W, sizes w)
# ----------------------------------------------------------------------------------------


def bpp_l1(sizes: np.ndarray, W: float) -> int:
    """L1 = ceil(sum w / W)."""
    if len(sizes) == 0:
        return 0
    return max(1, math.ceil(float(np.sum(sizes)) / W - _EPS))


def bpp_l2(sizes: np.ndarray, W: float) -> int:
    """Martello–Toth L2 = max over alpha in [0, W/2] of L(alpha).

    L(alpha) = |J1| + |J2| + max(0, ceil((w(J3) - (|J2| W - w(J2))) / W)) with
    J1 = {w > W - alpha}, J2 = {W/2 < w <= W - alpha}, J3 = {alpha <= w <= W/2}.
    """
    if len(sizes) == 0:
        return 0
    w = np.sort(np.asarray(sizes, dtype=np.float64))
    n = len(w)
    csum = np.concatenate(([0.0], np.cumsum(w)))
    alphas = np.unique(np.concatenate(([0.0], w[w <= W / 2])))

    def count_sum_gt(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = np.searchsorted(w, x, side="right")
        return n - k, csum[-1] - csum[k]

    def count_sum_ge(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = np.searchsorted(w, x, side="left")
        return n - k, csum[-1] - csum[k]

    c1, _ = count_sum_gt(W - alphas)
    c_half, s_half = count_sum_gt(np.array([W / 2]))
    c_j2 = c_half - c1
    s_j2 = s_half - count_sum_gt(W - alphas)[1]
    _, s_ge = count_sum_ge(alphas)
    s_j3 = s_ge - s_half
    free = c_j2 * W - s_j2
    extra = np.ceil((s_j3 - free) / W - _EPS)
    val = c1 + c_j2 + np.maximum(0.0, extra)
    return max(int(val.max()), bpp_l1(sizes, W))


def dff_best(
    sizes: np.ndarray,
    W: float,
    kmax: int = 12,
    max_lambdas: int = 400,
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """u(w_i) / W for the dual-feasible function u of the family below that maximises
    sum_i counts_i · u(w_i): values in [0, 1] whose sum over any set of items that fits
    one bin is at most 1.

    The family: f_lambda (Martello–Toth / Fekete–Schepers ``U^(eps)``) maps w > W -
    lambda to W, w < lambda to 0, others to themselves; u_k (Fekete–Schepers) maps x to
    x when (k+1) x / W is integral, otherwise to floor((k+1) x / W) W / k. Both are
    dual-feasible, and so is their composition. ``counts`` (default one each) are the
    copies of each size.
    """
    w = np.asarray(sizes, dtype=np.float64)
    c = np.ones_like(w) if counts is None else np.asarray(counts, dtype=np.float64)
    if len(w) == 0:
        return w.copy()
    cand = np.unique(np.concatenate(([0.0], w[w <= W / 2])))
    if len(cand) > max_lambdas:
        cand = cand[np.linspace(0, len(cand) - 1, max_lambdas).astype(int)]
    # f_lambda for all lambdas at once: rows = lambdas.
    f = np.where(w[None, :] > W - cand[:, None], W, np.where(w[None, :] < cand[:, None], 0.0, w))
    best, best_sum = w / W, float(c @ w) / W
    sums = (f @ c) / W
    if sums.max() > best_sum:
        best, best_sum = f[int(np.argmax(sums))] / W, float(sums.max())
    for k in range(1, kmax + 1):
        q = (k + 1) * f / W
        fl = np.floor(q + _EPS)
        exact = np.abs(q - np.round(q)) <= _EPS
        # k * u_k(x): x*k when exact, floor((k+1)x/W) * W otherwise (integers for integral data).
        u = np.where(exact, f * k, fl * W) / (k * W)
        sums = u @ c
        if sums.max() > best_sum:
            best, best_sum = u[int(np.argmax(sums))], float(sums.max())
    return best


def bpp_dff(
    sizes: np.ndarray,
    W: float,
    kmax: int = 12,
    max_lambdas: int = 400,
    counts: np.ndarray | None = None,
) -> int:
    """Dual-feasible-function bound: ceil(max over the family of sum u(w) / W), at least
    L1 (``dff_best`` gives the family; ``counts``: copies of each size, so the bound of
    a multiset without listing it)."""
    if len(sizes) == 0:
        return 0
    c = np.ones(len(sizes)) if counts is None else np.asarray(counts, dtype=np.float64)
    u = dff_best(sizes, W, kmax, max_lambdas, c)
    l1 = max(1, math.ceil(float(c @ np.asarray(sizes, dtype=np.float64)) / W - _EPS))
    return max(l1, int(_ceil(float(c @ u), True)))  # relative tolerance: float sums


def binpacking_bounds(inst: BinPackingInstance) -> list[Bound]:
    """Every cheap bin-packing bound: L1, L2 (Martello–Toth) and the DFF bound."""
    if inst.infeasibility():
        return [Bound(math.inf, "infeasible")]
    s, W = inst.sizes, inst.capacity
    return [Bound(bpp_l1(s, W), "L1"), Bound(bpp_l2(s, W), "L2"), Bound(bpp_dff(s, W), "DFF")]


def bpp_lb(sizes: np.ndarray, W: float) -> int:
    """The strongest cheap bin-packing bound (max of L2 and the DFF bound)."""
    if len(sizes) and float(np.max(sizes)) > W:
        return 10**18
    return max(bpp_l2(sizes, W), bpp_dff(sizes, W, kmax=6, max_lambdas=100))


# ----------------------------------------------------------------------------------------
# Makespan: identical machines (P||Cmax)
# ----------------------------------------------------------------------------------------


def mcnaughton(p: np.ndarray, m: int, integral: bool) -> float:
    """L1 = max(sum p / m, max p) (McNaughton)."""
    if len(p) == 0:
        return 0.0
    return _ceil(max(float(np.sum(p)) / m, float(np.max(p))), integral)


def pigeonhole(p: np.ndarray, m: int, integral: bool) -> float:
    """max over k >= 1 of p_(km-k+1) + ... + p_(km+1) (p sorted non-increasing).

    Among the km+1 longest jobs some machine receives k+1, whose sum is at least
    the sum of the k+1 shortest of them.
    """
    n = len(p)
    if n <= m:
        return float(np.max(p)) if n else 0.0
    q = -np.sort(-np.asarray(p, dtype=np.float64))
    csum = np.concatenate(([0.0], np.cumsum(q)))
    k = np.arange(1, (n - 1) // m + 1)
    hi = k * m + 1  # exclusive end index of the k*m+1 longest
    lo = hi - (k + 1)
    val = float(np.max(csum[hi] - csum[lo]))
    return _ceil(val, integral)


def raise_by_search(
    lo: int, hi: int, excess: Callable[[int], float], time_limit_s: float | None = None
) -> int:
    """Raise a makespan lower bound ``lo`` by search on C in [lo, hi].

    ``excess(C) > 0`` only when it *proves* that the jobs do not fit in m bins of
    capacity C (a bool works: True proves); a value <= 0 means "not proven". A
    graded excess (the LP's bins minus m, negative where the LP fits) guides the
    search. Fitting is monotone in C, so a proof at C covers every smaller
    capacity: the returned value L has every C < L proven infeasible, whatever the
    oracle answers elsewhere and in whatever order it is asked.

    Probes: ``lo`` first (one call when the bound already stands, the common case).
    Then, with a graded excess, the root of the line through the two nearest
    probes: the largest refuted C and the smallest C that stood with a negative
    excess (false position, with the Illinois halving when one end is kept twice),
    or else the two largest refuted ones (secant); the LP excess is close to
    linear in C. Otherwise galloping (lo + 1, lo + 3, lo + 7, ...) until a probe
    stands, then bisection. A line probe that does not halve the interval, after
    two on the same side, is followed by a plain one.
    """
    t0 = time.perf_counter()
    refuted: list[tuple[int, float]] = []  # increasing C
    stood: tuple[int, float] | None = None  # the smallest C that stood, its excess
    step, line_width, sides = 1, 0, [0]  # sides: +1 refuted / -1 stood, per probe
    while lo < hi:
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            break
        width, repeat = hi - lo, sides[-1] if sides[-2:] == sides[-1:] * 2 else 0
        root = None
        if not (line_width and 2 * width > line_width and repeat):
            root = _line_root(refuted, stood, repeat)
        line_width = width if root is not None else 0
        if root is not None:
            probe = min(max(int(math.floor(root)), lo), hi - 1)
        else:
            probe = (lo + hi) // 2 if stood is not None else min(lo + step - 1, hi - 1)
        e = float(excess(probe))
        sides.append(1 if e > 0 else -1)
        if e > 0:
            refuted.append((probe, e))
            lo, step = probe + 1, step * 2
        else:
            hi, stood = probe, (probe, e)
    return lo


def _line_root(
    refuted: list[tuple[int, float]], stood: tuple[int, float] | None, repeat: int
) -> float | None:
    """Where the excess reaches 0 on the line through the largest refuted probe and
    the smallest one that stood with a negative excess (false position; ``repeat``,
    the side kept by the last two probes, counts its end half: Illinois), or through
    the two largest refuted probes (secant); None without two distinct excesses."""
    if not refuted:
        return None
    a, ea = refuted[-1]
    if stood is not None and stood[1] < 0:
        b, eb = stood
        if repeat > 0:
            eb /= 2
        elif repeat < 0:
            ea /= 2
    elif len(refuted) >= 2:
        b, eb = refuted[-2]
    else:
        return None
    return None if ea == eb else a + ea * (b - a) / (ea - eb)


def dell_amico_martello(p: np.ndarray, m: int, start: float, time_limit_s: float = 5.0) -> float:
    """Smallest C (by search on C) not refuted by the bin-packing bounds L2 and DFF.

    C is infeasible when the bin-packing bound of the jobs with capacity C
    exceeds m (Dell'Amico & Martello). Integral data only.
    """
    if len(p) == 0:
        return 0.0
    lo = int(math.ceil(start - _EPS))
    hi = max(lo, int(math.ceil(float(np.sum(p)) / m + float(np.max(p)))))  # list-scheduling bound
    return float(raise_by_search(lo, hi, lambda C: bpp_lb(p, C) > m, time_limit_s))


# ----------------------------------------------------------------------------------------
# Makespan: uniform and unrelated machines
# ----------------------------------------------------------------------------------------


def uniform_bound(p: np.ndarray, s: np.ndarray) -> float:
    """max over k <= m of (k longest jobs) / (k fastest speeds), and sum p / sum s.

    The k longest jobs run on at most k machines, which do at most C times the
    k largest speeds of work by time C.
    """
    if len(p) == 0:
        return 0.0
    q = -np.sort(-p)
    v = -np.sort(-s)
    k = min(len(q), len(v))
    ratios = np.cumsum(q[:k]) / np.cumsum(v[:k])
    return float(max(ratios.max(), q.sum() / v.sum()))


def unrelated_simple(t: np.ndarray) -> float:
    """max(max_j min_i t_ij, sum_j min_i t_ij / m)."""
    if t.shape[1] == 0:
        return 0.0
    mins = t.min(axis=0)
    return float(max(mins.max(), mins.sum() / t.shape[0]))


def lst_lp_bound(t: np.ndarray, time_limit_s: float = 10.0) -> float:
    """Lenstra–Shmoys–Tardos parametric LP bound for unrelated machines.

    For a threshold T_k (a distinct finite t_ij), LP_k = min C over the assignment LP
    that forbids pairs with t_ij > T_k. OPT >= min_k max(T_k, LP_k); LP_k is
    non-increasing and T_k increasing in k, so a binary search finds the crossing.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    m, n = t.shape
    if n == 0:
        return 0.0
    base = unrelated_simple(t)
    finite = np.isfinite(t)
    thresholds = np.unique(t[finite])
    thresholds = thresholds[thresholds >= t.min(axis=0).max() - _EPS]
    t0 = time.perf_counter()

    def lp(T: float) -> float:
        ii, jj = np.nonzero(finite & (t <= T + _EPS))
        nv = len(ii)
        # variables: x (nv), C (1). min C.
        c = np.zeros(nv + 1)
        c[-1] = 1.0
        a_eq = coo_matrix((np.ones(nv), (jj, np.arange(nv))), shape=(n, nv + 1))
        rows = np.concatenate([ii, np.arange(m)])
        cols = np.concatenate([np.arange(nv), np.full(m, nv)])
        vals = np.concatenate([t[ii, jj], -np.ones(m)])
        a_ub = coo_matrix((vals, (rows, cols)), shape=(m, nv + 1))
        res = linprog(
            c,
            A_ub=a_ub.tocsr(),
            b_ub=np.zeros(m),
            A_eq=a_eq.tocsr(),
            b_eq=np.ones(n),
            bounds=(0, None),
            method="highs",
        )
        if res.status == 2:
            return math.inf
        if res.status != 0:
            raise RuntimeError(f"LP bound failed: {res.message}")
        # The dual-feasible objective is a valid bound; use HiGHS' reported optimum minus tolerance.
        return float(res.fun) * (1 - 1e-9)

    lo, hi = 0, len(thresholds) - 1
    best = math.inf
    while lo <= hi and time.perf_counter() - t0 < time_limit_s:
        mid = (lo + hi) // 2
        T = float(thresholds[mid])
        v = lp(T)
        best = min(best, max(T, v))
        if v > T:
            lo = mid + 1
        else:
            hi = mid - 1
    if lo <= hi:  # ran out of time: only the simple bound is proven
        return base
    return max(base, best if math.isfinite(best) else base)


def makespan_bounds(inst: MakespanInstance, time_limit_s: float = 5.0) -> list[Bound]:
    """Every cheap bound that applies to the instance's machine environment."""
    if inst.infeasibility():
        return [Bound(math.inf, "infeasible")]
    if inst.n == 0:
        return [Bound(0.0, "empty")]
    if inst.kind == "identical":
        p, m, integral = inst.durations, inst.m, inst.integral
        assert p is not None
        out = [
            Bound(mcnaughton(p, m, integral), "L1"),
            Bound(pigeonhole(p, m, integral), "pigeonhole"),
        ]
        if integral:
            start = max(b.value for b in out)
            out.append(
                Bound(dell_amico_martello(p, m, start, time_limit_s=time_limit_s), "DM-binpacking")
            )
        return out
    if inst.kind == "uniform":
        assert inst.durations is not None and inst.speeds is not None
        out = [Bound(uniform_bound(inst.durations, inst.speeds), "uniform-k-largest")]
        if inst.m * inst.n <= 200_000:
            out.append(Bound(lst_lp_bound(inst.time_matrix(), time_limit_s), "LST-LP"))
        return out
    assert inst.times is not None
    out = [Bound(unrelated_simple(inst.times), "unrelated-simple")]
    if inst.m * inst.n <= 200_000:
        out.append(Bound(lst_lp_bound(inst.times, time_limit_s), "LST-LP"))
    if inst.integral:
        out = [Bound(_ceil(b.value, True), b.kind) for b in out]
    return out
