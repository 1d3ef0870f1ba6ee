"""Lower bounds on the weighted deadline misses of any schedule (formulations/realtime.md,
"Bounds"): the jobs that cannot fit their window alone, and the window LP solved with
HiGHS by adding violated (release, deadline) windows until none is left."""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from optkit.realtime.instance import RealtimeInstance
from optkit.result import Bound

BOUND_METHODS = ("auto", "cheap", "lp")
#: most jobs the window LP takes (its separation scans releases × jobs per backend)
LP_MAX_JOBS = 20_000
#: HiGHS' primal feasibility tolerance, relative; the LP value is lowered by it
LP_TOL = 1e-7


def basic(inst: RealtimeInstance) -> float:
    """Σ w_j over jobs whose fastest time exceeds their window [ř_j, d_j]."""
    jt = inst.jobs
    window = jt.deadline - jt.earliest()
    return float(np.sum(jt.weight[jt.fastest > window * (1 + 1e-12)]))


def window_lp(inst: RealtimeInstance, time_limit_s: float = 60.0) -> Bound:
    """The window LP's value, rounded up (integer weights); missing past its limits."""
    jt = inst.jobs
    n, B = len(jt), len(inst.backends)
    if n > LP_MAX_JOBS:
        return Bound.missing(
            "window_lp", "TOO_LARGE", f"{n:,} jobs, more than {LP_MAX_JOBS:,} (the LP's limit)"
        )
    t0 = time.perf_counter()
    r = jt.earliest()
    d = jt.deadline
    scale = max(1.0, float(np.max(d) - np.min(r)))  # times in units of the span
    r_s, d_s, p_s = r / scale, d / scale, jt.p / scale
    fits = np.isfinite(p_s) & (p_s <= (d_s - r_s)[:, None] * (1 + 1e-12))
    cols = np.argwhere(fits)  # (job, backend) pairs a variable exists for
    m = len(cols)
    if m == 0:
        return Bound(float(np.sum(jt.weight)), "window_lp")
    job, bk = cols[:, 0], cols[:, 1]
    w = jt.weight.astype(float)
    c = -w[job]  # maximise Σ w y  <=>  minimise Σ w (1 - Σ y)
    # one-backend rows: Σ_b y_jb ≤ 1
    rows = [sp.csr_matrix((np.ones(m), (job, np.arange(m))), shape=(n, m))]
    rhs = [np.ones(n)]
    # cascades with d_pred >= d_j: j on time only if its predecessor is
    q = jt.pred
    ok = (q >= 0) & (d >= 0)
    ok[ok] = d[q[ok]] >= d[ok]
    kids = np.nonzero(ok)[0]
    if len(kids):
        k_of = {int(j): i for i, j in enumerate(kids)}
        data, ri, ci = [], [], []
        for col, j in enumerate(job):
            if int(j) in k_of:
                ri.append(k_of[int(j)]), ci.append(col), data.append(1.0)
        pos = {int(q[j]): i for i, j in enumerate(kids)}
        for col, j in enumerate(job):
            if int(j) in pos:
                ri.append(pos[int(j)]), ci.append(col), data.append(-1.0)
        rows.append(sp.csr_matrix((data, (ri, ci)), shape=(len(kids), m)))
        rhs.append(np.zeros(len(kids)))
    load = p_s[job, bk]
    starts = np.unique(r_s)
    windows: set[tuple[int, float, float]] = set()
    value = None
    while True:
        A = sp.vstack(rows, format="csr")
        left = time_limit_s - (time.perf_counter() - t0)
        if left <= 0:
            return Bound.missing("window_lp", "TIME_LIMIT", f"not solved within {time_limit_s:g} s")
        res = linprog(
            c,
            A_ub=A,
            b_ub=np.concatenate(rhs),
            bounds=(0, 1),
            method="highs",
            options={"time_limit": left, "primal_feasibility_tolerance": LP_TOL},
        )
        if res.status != 0:
            return Bound.missing("window_lp", "NOT_SOLVED", f"HiGHS: {res.message}")
        y = res.x
        value = float(np.sum(w) + res.fun)
        new = _violated(y, job, bk, load, r_s, d_s, starts, B, windows)
        if not new:
            break
        for b, t1, t2, members in new:
            windows.add((b, t1, t2))
            row = np.zeros(m)
            row[members] = load[members]
            rows.append(sp.csr_matrix(row))
            rhs.append(np.array([t2 - t1]))
    # the LP answer is feasible only to HiGHS' tolerance: lower it before rounding up
    slack = LP_TOL * (np.sum(w) + len(windows) * m)
    return Bound(float(max(0.0, math.ceil(value - slack - 1e-9))), "window_lp")


def _violated(
    y: np.ndarray,
    job: np.ndarray,
    bk: np.ndarray,
    load: np.ndarray,
    r: np.ndarray,
    d: np.ndarray,
    starts: np.ndarray,
    B: int,
    have: set[tuple[int, float, float]],
    most: int = 50,
) -> list[tuple[int, float, float, np.ndarray]]:
    """The most violated windows (t1 a release, t2 a deadline) per backend."""
    out: list[tuple[float, int, float, float, np.ndarray]] = []
    for b in range(B):
        on = np.nonzero((bk == b) & (y > 1e-9))[0]
        if len(on) == 0:
            continue
        rj, dj, lj = r[job[on]], d[job[on]], load[on] * y[on]
        order = np.argsort(dj, kind="stable")
        rj, dj, lj, on = rj[order], dj[order], lj[order], on[order]
        # demand of window [t1, d_k]: Σ l over jobs with r >= t1 and d <= d_k
        inside = rj[None, :] >= starts[:, None] - 1e-15  # (R, jobs)
        cum = np.cumsum(np.where(inside, lj[None, :], 0.0), axis=1)
        excess = cum - (dj[None, :] - starts[:, None])
        excess[dj[None, :] <= starts[:, None]] = -np.inf
        for i, k in zip(*np.nonzero(excess > 1e-7), strict=True):
            t1, t2 = float(starts[i]), float(dj[k])
            if (b, t1, t2) in have:
                continue
            members_all = np.nonzero(
                (bk == b) & (r[job] >= t1 - 1e-15) & (d[job] <= t2 + 1e-15)
            )[0]
            out.append((float(excess[i, k]), b, t1, t2, members_all))
    out.sort(key=lambda x: -x[0])
    seen: set[tuple[int, float, float]] = set()
    res = []
    for _, b, t1, t2, mem in out:
        if (b, t1, t2) not in seen:
            seen.add((b, t1, t2))
            res.append((b, t1, t2, mem))
        if len(res) >= most:
            break
    return res


def bounds(inst: RealtimeInstance, method: str = "auto", time_limit_s: float = 60.0) -> list[Bound]:
    out = [Bound(basic(inst), "basic")]  # cheap: the closed form alone
    if method in ("auto", "lp"):
        out.append(window_lp(inst, time_limit_s))
    return out


def ttft_bound(inst: RealtimeInstance) -> float:
    """Mean over requests of their prefill's fastest time: no TTFT can be shorter."""
    jt = inst.jobs
    first = (jt.kind == 1) & (jt.step == 0)
    return float(np.mean(jt.fastest[first])) if first.any() else 0.0
