"""Low-waste pattern model: is there a packing into exactly ``bins`` bins?
(formulations/binpacking.md, "Low-waste patterns").

If ``bins`` bins of capacity C hold items of total size Σw, their total waste is
S = bins·C − Σw, so every bin of such a packing wastes at most S. When S is
small (perfect or near-perfect packings: Falkenauer T, P‖Cmax at a tight
bound), the patterns — multisets of item sizes with C − S <= sum <= C — are
few, and the integer program

    Σ_p a_kp x_p = q_k  (every size class k used q_k times),  Σ_p x_p <= bins,
    x_p ∈ Z≥0

is exact: feasible iff such a packing exists. Solved by HiGHS (scipy.optimize.milp).
An infeasible answer from a complete enumeration proves that ``bins`` bins do
not suffice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from optkit.packing.bins import plan_of_bins
from optkit.solvers import CHILD_REPLY_S, call_with_deadline

#: Enumeration stops (and the model is not built) beyond this many patterns.
MAX_PATTERNS = 50_000


@dataclass
class PatternOutcome:
    plan: np.ndarray | None  # bin of each item, when a packing was found
    infeasible: bool  # proven: no packing into ``bins`` bins
    patterns: int  # enumerated (0 when the cap was hit)
    status: str


def enumerate_patterns(
    values: np.ndarray,
    counts: np.ndarray,
    capacity: int,
    waste: int,
    cap: int = MAX_PATTERNS,
    deadline: float | None = None,
) -> list[list[tuple[int, int]]] | None:
    """Patterns as lists of (size class, multiplicity); None beyond ``cap`` patterns,
    or past ``deadline`` (a ``time.perf_counter()`` value). ``values`` must be in
    decreasing order."""
    k_n = len(values)
    suffix = np.zeros(k_n + 1, dtype=np.int64)
    for k in range(k_n - 1, -1, -1):
        suffix[k] = suffix[k + 1] + int(values[k]) * int(counts[k])
    lo = capacity - waste
    out: list[list[tuple[int, int]]] = []
    cur: list[tuple[int, int]] = []
    vals = [int(v) for v in values]
    cnts = [int(c) for c in counts]

    nodes = 0

    def dfs(k: int, used: int) -> bool:
        nonlocal nodes
        nodes += 1
        if deadline is not None and nodes % 4096 == 0 and time.perf_counter() > deadline:
            return False
        if used >= lo and cur:
            out.append(cur.copy())
            if len(out) > cap:
                return False
        if k == k_n or used + int(suffix[k]) < lo:
            return True
        for j in range(k, k_n):
            if used + int(suffix[j]) < lo:
                return True
            v = vals[j]
            most = min(cnts[j], (capacity - used) // v)
            for mult in range(1, most + 1):
                cur.append((j, mult))
                ok = dfs(j + 1, used + mult * v)
                cur.pop()
                if not ok:
                    return False
        return True

    if not dfs(0, 0):
        return None
    return out


def pattern_packing(
    sizes: np.ndarray, capacity: int, bins: int, time_limit_s: float | None
) -> PatternOutcome:
    """Search for a packing of integral ``sizes`` into ``bins`` bins of ``capacity``."""
    from scipy.optimize import LinearConstraint, milp
    from scipy.sparse import csc_matrix

    sizes = np.asarray(sizes, dtype=np.int64)
    waste = bins * capacity - int(sizes.sum())
    if waste < 0 or (len(sizes) and int(sizes.max()) > capacity):
        return PatternOutcome(None, True, 0, "infeasible (size)")
    values, counts = np.unique(sizes, return_counts=True)
    values, counts = values[::-1], counts[::-1]
    t0 = time.perf_counter()
    deadline = None if time_limit_s is None else t0 + 0.5 * time_limit_s
    pats = enumerate_patterns(values, counts, capacity, waste, deadline=deadline)
    if pats is None:
        return PatternOutcome(None, False, 0, f"more than {MAX_PATTERNS:,} patterns or no time")
    if time_limit_s is not None:
        time_limit_s -= time.perf_counter() - t0
    if not pats:
        return PatternOutcome(None, True, 0, "infeasible (no pattern)")
    rows, cols, data = [], [], []
    upper = np.empty(len(pats))
    for p, pat in enumerate(pats):
        upper[p] = min(int(counts[k]) // m for k, m in pat)
        for k, m in pat:
            rows.append(k)
            cols.append(p)
            data.append(m)
    A = csc_matrix((data, (rows, cols)), shape=(len(values), len(pats)))
    opts: dict[str, object] = {"disp": False}
    if time_limit_s is not None:
        opts["time_limit"] = max(0.05, float(time_limit_s) - CHILD_REPLY_S)

    def run() -> tuple[int, np.ndarray | None]:
        res = milp(
            c=np.zeros(len(pats)),
            constraints=[
                LinearConstraint(A, counts, counts),
                LinearConstraint(np.ones((1, len(pats))), 0, bins),
            ],
            integrality=np.ones(len(pats)),
            bounds=(0, upper),
            options=opts,
        )
        return int(res.status), res.x

    # HiGHS may overrun its own limit in presolve or cuts: a forked child is stopped for sure
    answer = call_with_deadline(
        run, None if time_limit_s is None else max(0.05, time_limit_s) + CHILD_REPLY_S
    )
    if answer is None:
        return PatternOutcome(None, False, len(pats), "time limit")
    status, x_val = answer
    if status == 2:
        return PatternOutcome(None, True, len(pats), "infeasible")
    if x_val is None:
        return PatternOutcome(None, False, len(pats), "time limit")
    x = np.round(x_val).astype(np.int64)
    held = [
        np.repeat([int(values[k]) for k, _ in pats[p]], [m for _, m in pats[p]])
        for p in map(int, np.flatnonzero(x))
        for _ in range(int(x[p]))
    ]
    plan = plan_of_bins(sizes, held)
    if plan is None:  # the model's rows are equalities: a rounded answer covers every item
        return PatternOutcome(None, False, len(pats), "rounded answer left an item out")
    return PatternOutcome(plan, False, len(pats), "feasible")
