"""Lower bounds on the weighted deadline misses of any schedule (formulations/realtime.md,
"Bounds"): the jobs that cannot fit their window alone, and the window LP solved with
HiGHS by adding violated (release, deadline) windows until none is left."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from optkit.io import Refused
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


@dataclass
class WindowLp:
    """The window LP after separation: maximise Σ c·y (c = w_j of the pair's job) s.t.
    A y ≤ rhs, 0 ≤ y ≤ 1, one column per (job, backend) pair in ``cols``; ``value`` is
    the minimum weighted misses Σ w − max, or None when not solved (``reason``)."""

    cols: np.ndarray
    c: np.ndarray
    rows: list[sp.csr_matrix]
    rhs: list[np.ndarray]
    windows: int = 0
    value: float | None = None
    reason: str = ""
    total: float = 0.0


def window_lp_model(inst: RealtimeInstance, time_limit_s: float = 60.0) -> WindowLp:
    """Solve the window LP with HiGHS, adding the most violated (release, deadline)
    windows per backend until none is left (times in units of the instance's span)."""
    jt = inst.jobs
    n, B = len(jt), len(inst.backends)
    t0 = time.perf_counter()
    r = jt.earliest()
    d = jt.deadline
    scale = max(1e-300, float(np.max(d) - np.min(r)))  # times in units of the span
    r_s, d_s, p_s = r / scale, d / scale, jt.p / scale
    fits = np.isfinite(p_s) & (p_s <= (d_s - r_s)[:, None] * (1 + 1e-12))
    cols = np.argwhere(fits)  # (job, backend) pairs a variable exists for
    m = len(cols)
    w = jt.weight.astype(float)
    job, bk = cols[:, 0], cols[:, 1]
    lp = WindowLp(cols, w[job], [], [], total=float(np.sum(w)))
    if m == 0:
        lp.value = lp.total
        return lp
    # one backend per job: Σ_b y_jb ≤ 1
    lp.rows.append(sp.csr_matrix((np.ones(m), (job, np.arange(m))), shape=(n, m)))
    lp.rhs.append(np.ones(n))
    # a cascade child with d_pred ≥ d_j is on time only if its predecessor is
    q = jt.pred
    kids = np.nonzero(q >= 0)[0]
    kids = kids[d[q[kids]] >= d[kids]]
    if len(kids):
        row_of_kid = np.full(n, -1)
        row_of_kid[kids] = np.arange(len(kids))
        row_of_parent = np.full(n, -1)
        row_of_parent[q[kids]] = np.arange(len(kids))
        a, b_ = row_of_kid[job] >= 0, row_of_parent[job] >= 0
        ri = np.concatenate([row_of_kid[job][a], row_of_parent[job][b_]])
        ci = np.concatenate([np.nonzero(a)[0], np.nonzero(b_)[0]])
        data = np.concatenate([np.ones(a.sum()), -np.ones(b_.sum())])
        lp.rows.append(sp.csr_matrix((data, (ri, ci)), shape=(len(kids), m)))
        lp.rhs.append(np.zeros(len(kids)))
    load = p_s[job, bk]
    starts = np.unique(r_s)
    windows: set[tuple[int, float, float]] = set()
    while True:
        left = time_limit_s - (time.perf_counter() - t0)
        if left <= 0:
            lp.reason = f"TIME_LIMIT: not solved within {time_limit_s:g} s"
            return lp
        res = linprog(
            -lp.c,
            A_ub=sp.vstack(lp.rows, format="csr"),
            b_ub=np.concatenate(lp.rhs),
            bounds=(0, 1),
            method="highs",
            options={"time_limit": left, "primal_feasibility_tolerance": LP_TOL},
        )
        if res.status != 0:
            lp.reason = f"NOT_SOLVED: HiGHS: {res.message}"
            return lp
        new = _violated(res.x, job, bk, load, r_s, d_s, starts, B, windows)
        if not new:
            break
        for b, t1, t2, members in new:
            windows.add((b, t1, t2))
            lp.rows.append(
                sp.csr_matrix((load[members], (np.zeros(len(members)), members)), shape=(1, m))
            )
            lp.rhs.append(np.array([t2 - t1]))
    lp.windows = len(windows)
    lp.value = float(lp.total + res.fun)
    return lp


def window_lp(inst: RealtimeInstance, time_limit_s: float = 60.0) -> Bound:
    """The window LP's value, rounded up (integer weights); missing past its limits."""
    n = len(inst.jobs)
    if n > LP_MAX_JOBS:
        return Bound.missing(
            "window_lp", "TOO_LARGE", f"{n:,} jobs, more than {LP_MAX_JOBS:,} (the LP's limit)"
        )
    lp = window_lp_model(inst, time_limit_s)
    if lp.value is None:
        status, _, why = lp.reason.partition(": ")
        return Bound.missing("window_lp", status, why)
    # the LP answer is feasible only to HiGHS' tolerance: lower it before rounding up
    slack = LP_TOL * (lp.total + lp.windows * len(lp.cols))
    return Bound(float(max(0.0, math.ceil(lp.value - slack - 1e-9))), "window_lp")


def export_lp(inst: RealtimeInstance, fmt: str, path: object) -> str:
    """Write the separated window LP (minimise Σ w − Σ w·y) as LP or MPS with PuLP."""
    import pulp

    from optkit.solvers import write_pulp

    lp = window_lp_model(inst)
    if lp.value is None:
        raise Refused(f"the window LP was not solved: {lp.reason}")
    prob = pulp.LpProblem(inst.name.replace("-", "_") or "realtime", pulp.LpMinimize)
    y = [pulp.LpVariable(f"y_{j}_{inst.backends[b].name}", 0, 1) for j, b in lp.cols.tolist()]
    prob += lp.total - pulp.lpSum(c * v for c, v in zip(lp.c.tolist(), y, strict=True))
    A = sp.vstack(lp.rows, format="csr") if lp.rows else sp.csr_matrix((0, len(y)))
    rhs = np.concatenate(lp.rhs) if lp.rhs else np.zeros(0)
    for i in range(A.shape[0]):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        prob += (
            pulp.lpSum(a * y[k] for a, k in zip(A.data[lo:hi], A.indices[lo:hi], strict=True))
            <= float(rhs[i]),
            f"r{i}",
        )
    return write_pulp(
        prob,
        fmt,
        path,
        f"{len(y):,} variables, {A.shape[0]:,} rows ({lp.windows:,} windows); weighted "
        f"misses = {lp.total:g} + the objective; times in units of the instance's span",
    )


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
            members_all = np.nonzero((bk == b) & (r[job] >= t1 - 1e-15) & (d[job] <= t2 + 1e-15))[0]
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
