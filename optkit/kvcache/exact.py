"""The time-expanded placement model of formulations/kv_placement.md, as one sparse
matrix: its LP relaxation (HiGHS through highspy) is bound 3, and with binary
residencies it is the MILP (HiGHS through PuLP, exportable as LP/MPS).

Units are numbered in creation order (``KvInstance.creation_index``): prefill
units layer by layer, then the unit written at step t gets id ``L·P + t``. The
units that exist during step t are exactly ids ``0 .. L·P + t - 1``.

Columns, per step t (0-based): ``x[u,t]`` HBM residency of every existing unit
(t = 0 fixed to the initial placement), ``p[u,t]`` promotion and ``d[u,t]``
demotion during t (t < T-1), ``y[u,t]`` link bytes of a read unit, the new
unit's residency ``x[w_t, t+1]`` (its own column at the last step), and
``T_t``.

Scaling (formulations/kv_placement.md, "Scaling"): the solvers see bytes in units of
one KV unit ``s`` and times in units of ``tau = s / B_0`` (one unit's HBM transfer),
so every coefficient is a unit count or a bandwidth ratio ``B_k / B_0`` and the
objective counts unit-transfer times. In bytes and seconds the coefficients would span
10^-13 .. 10^5 and the objective 10^-6 s, below the solvers' absolute tolerances
(HiGHS' ``mip_abs_gap`` is 10^-6): they then claimed optima 38% above a plan they
verified. Values come back multiplied by ``time_unit``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix, csc_matrix

from optkit.kvcache.instance import KvInstance
from optkit.kvcache.simulate import initial_placement
from optkit.solvers import (
    CHILD_REPLY_S,
    SolverOptions,
    call_with_deadline,
    highs_threads,
    new_highs,
    refuse_above,
    solve_pulp,
)

#: Larger MILPs are refused with a message (the LP bound still works on them).
MILP_MAX_VARIABLES = 200_000


@dataclass
class SparseModel:
    """min c·v  s.t.  row_lo <= A v <= row_hi,  col_lo <= v <= col_hi."""

    c: np.ndarray
    A: csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray  # bool per column
    x_off: np.ndarray  # column of x[u, t] is x_off[t] + u
    last_new: int  # column of the last step's new unit
    time_unit: float  # seconds per unit of the T_t columns (objective × time_unit = s)
    p_off: np.ndarray  # column of p[u, t] is p_off[t] + u (t < T-1); d likewise
    d_off: np.ndarray
    y_off: np.ndarray  # column of y for the i-th read of step t is y_off[t] + i
    t_col: np.ndarray  # column of T_t

    @property
    def n_cols(self) -> int:
        return len(self.c)

    @property
    def n_rows(self) -> int:
        return len(self.row_lo)

    def x_column(self, u: int | np.ndarray, t: int) -> Any:
        if t == len(self.x_off):
            return self.last_new
        return self.x_off[t] + u


def unit_ids(inst: KvInstance, layer: int, tokens: np.ndarray) -> np.ndarray:
    return np.asarray(inst.creation_index(layer, tokens), dtype=np.int64)


def model_size(inst: KvInstance) -> int:
    """Number of columns of the model, without building it."""
    LP, T = inst.layers * inst.prompt, inst.steps
    existing = LP * T + T * (T - 1) // 2  # Σ_t (L·P + t)
    moves = 2 * (existing - (LP + T - 1))  # p and d for t < T-1
    return existing + moves + int(inst.trace.counts().sum()) + 1 + T


def build(inst: KvInstance, integer: bool = False) -> SparseModel:
    """Build the sparse model (``integer``: x binary), scaled: bytes in units of ``s``,
    times in units of ``s / B_0`` (see the module docstring)."""
    trace = inst.trace.materialize()
    L, P, T = inst.layers, inst.prompt, inst.steps
    B0 = inst.tiers[0].bandwidth
    s = 1.0  # bytes are counted in KV units from here on
    LP = L * P
    K = len(inst.tiers)
    exclusive = inst.mode == "exclusive"
    home = inst.unit_homes()  # external tier (1..K-1) of every unit id
    E = LP + np.arange(T)  # units existing during step t
    x_off = np.concatenate([[0], np.cumsum(E)[:-1]]).astype(np.int64)
    ncol = int(E.sum())
    mv = E[: T - 1] if T > 1 else np.zeros(0, dtype=np.int64)
    p_off = (
        ncol + np.concatenate([[0], np.cumsum(mv)[:-1]]).astype(np.int64) if T > 1 else x_off[:0]
    )
    ncol += int(mv.sum())
    d_off = ncol + (p_off - p_off[0] if T > 1 else p_off)
    ncol += int(mv.sum())
    counts = trace.counts()
    y_off = ncol + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    ncol += int(counts.sum())
    last_new = ncol
    ncol += 1
    t_col = ncol + np.arange(T)
    ncol += T

    c = np.zeros(ncol)
    c[t_col] = 1.0
    col_lo = np.zeros(ncol)
    col_hi = np.ones(ncol)
    col_hi[t_col] = np.inf
    is_int = np.zeros(ncol, dtype=bool)
    if integer:
        is_int[: int(E.sum())] = True
        is_int[last_new] = True
    init = initial_placement(inst)
    x0 = np.zeros(LP)
    for layer in range(L):
        x0[unit_ids(inst, layer, np.flatnonzero(init[layer, :P]))] = 1.0
    col_lo[:LP] = col_hi[:LP] = x0

    # one row per tier (its bandwidth: fetches and writes) and one per link and direction
    # (the fetches, resp. writes, of every tier behind it); ``on``: units homed there
    resources: list[tuple[float, tuple[int, ...], np.ndarray, bool, bool]] = [
        (inst.tiers[k].bandwidth, (k,), home == k, True, True) for k in range(1, K)
    ]
    for g in inst.links:
        on = np.isin(home, g.tiers)
        resources += [(g.link_in, g.tiers, on, True, False), (g.link_out, g.tiers, on, False, True)]
    none = np.zeros(0, dtype=np.int64)

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lo: list[float] = []
    hi: list[float] = []
    r = 0

    def add(rr: Any, cc: Any, vv: Any) -> None:
        rows.append(np.asarray(rr, dtype=np.int64))
        cols.append(np.asarray(cc, dtype=np.int64))
        vals.append(np.broadcast_to(np.asarray(vv, dtype=float), np.shape(cc)).copy())

    cap = float(inst.hbm_units)
    for t in range(T):
        layer = t % L
        Et = int(E[t])
        units = np.arange(Et)
        xs = x_off[t] + units
        R = unit_ids(inst, layer, trace.row(t).astype(np.int64))
        ys = y_off[t] + np.arange(len(R))
        has_moves = t < T - 1
        new_col = x_off[t + 1] + LP + t if has_moves else last_new
        # capacity (at the last step the new unit's HBM copy must fit too: no slice T)
        add(np.full(Et, r), xs, 1.0)
        if not has_moves:
            add([r], [new_col], 1.0)
        lo.append(-np.inf)
        hi.append(cap)
        r += 1
        if has_moves:
            ps, ds = p_off[t] + units, d_off[t] + units
            # conservation: x[u,t+1] - x[u,t] - p + d = 0
            rr = r + units
            add(rr, x_off[t + 1] + units, 1.0)
            add(rr, xs, -1.0)
            add(rr, ps, -1.0)
            add(rr, ds, 1.0)
            lo += [0.0] * Et
            hi += [0.0] * Et
            r += Et
        # y >= 1 - x (read from home unless in HBM), y >= p
        rr = r + np.arange(len(R))
        add(rr, ys, 1.0)
        add(rr, xs[R], 1.0)
        lo += [1.0] * len(R)
        hi += [np.inf] * len(R)
        r += len(R)
        if has_moves:
            rr = r + np.arange(len(R))
            add(rr, ys, 1.0)
            add(rr, ps[R], -1.0)
            lo += [0.0] * len(R)
            hi += [np.inf] * len(R)
            r += len(R)
        # HBM time: B0 T - s(Σ_R x + Σ p + excl Σ d + x_new) >= W, divided by s with
        # T in units of s/B0: T' - (Σ_R x + Σ p + excl Σ d + x_new) >= W/s
        add([r], [t_col[t]], 1.0)
        add(np.full(len(R), r), xs[R], -s)
        if has_moves:
            add(np.full(Et, r), ps, -s)
            if exclusive:
                add(np.full(Et, r), ds, -s)
        add([r], [new_col], -s)
        lo.append(inst.weight_bytes / inst.unit_bytes)
        hi.append(np.inf)
        r += 1
        read = np.zeros(Et, dtype=bool)
        read[R] = True
        hw = int(home[LP + t])
        for bw, ks, on, fetch, out in resources:
            add([r], [t_col[t]], bw / B0)  # (B T - s·moves >= rhs) / s
            rhs = 0.0
            if fetch:
                mine_r = ys[on[R]]
                mine_p = ps[on[:Et] & ~read] if has_moves else none
                add(np.full(len(mine_r), r), mine_r, -s)
                add(np.full(len(mine_p), r), mine_p, -s)
            if out:
                mine_d = ds[on[:Et]] if has_moves and exclusive else none
                add(np.full(len(mine_d), r), mine_d, -s)
                # write = 1 - x_new (exclusive) or 1 (inclusive) where the new unit's home is
                if hw in ks:
                    rhs = s
                    if exclusive:
                        add([r], [new_col], s)
            lo.append(rhs)
            hi.append(np.inf)
            r += 1
    A = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, ncol)
    ).tocsc()
    return SparseModel(
        c,
        A,
        np.array(lo),
        np.array(hi),
        col_lo,
        col_hi,
        is_int,
        x_off,
        last_new,
        inst.unit_bytes / B0,
        p_off,
        d_off,
        y_off,
        t_col,
    )


def _highs(model: SparseModel, relax: bool) -> Any:
    import highspy

    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = model.n_rows
    lp.col_cost_ = model.c
    lp.col_lower_ = model.col_lo
    lp.col_upper_ = model.col_hi
    lp.row_lower_ = model.row_lo
    lp.row_upper_ = model.row_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = model.A.indptr
    lp.a_matrix_.index_ = model.A.indices
    lp.a_matrix_.value_ = model.A.data
    if not relax and model.integer.any():
        kind = highspy.HighsVarType
        lp.integrality_ = [kind.kInteger if b else kind.kContinuous for b in model.integer]
    h = new_highs()
    h.passModel(lp)
    return h


@dataclass
class LpOutcome:
    value: float | None  # proven lower bound (None: not solved to optimality)
    status: str
    columns: int
    rows: int
    build_s: float
    solve_s: float


def lp_bound(inst: KvInstance, time_limit_s: float | None = 60.0, threads: int = 1) -> LpOutcome:
    """Bound 3: the LP relaxation, solved by HiGHS (interior point)."""
    import highspy

    t0 = time.perf_counter()
    model = build(inst, integer=False)
    t1 = time.perf_counter()
    h = _highs(model, relax=True)
    highs_threads(h, threads)
    # Interior point without crossover: about twice as fast as simplex here (benchmarks/kvcache)
    h.setOptionValue("solver", "ipm")
    h.setOptionValue("run_crossover", "off")
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(max(0.01, time_limit_s - (t1 - t0))))
    h.run()
    t2 = time.perf_counter()
    ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    value = None
    sol = h.getSolution()
    if sol.dual_valid or ok:
        # the certificate: the Lagrangian value of the solver's row duals, recomputed here
        # (valid for any duals, so also for an interior point stopped at the time limit)
        d = dual_bound(model, np.asarray(sol.row_dual, dtype=float))
        value = None if d is None else d * model.time_unit
    status = "optimal" if ok else h.modelStatusToString(h.getModelStatus()).lower()
    if value is not None and not ok:
        status = f"{status} (dual bound of the last iterate)"
    return LpOutcome(value, status, model.n_cols, model.n_rows, t1 - t0, t2 - t1)


def dual_bound(model: SparseModel, y: np.ndarray) -> float | None:
    """A lower bound on the LP's optimum from any row multipliers ``y`` (weak duality):

        L(y) = Σ_i y_i·(lo_i if y_i > 0 else hi_i) + Σ_j min over [l_j, u_j] of d_j·v_j,
        d = c − Aᵀy,

    after making ``y`` dual feasible where the model needs it: a multiplier on a row
    side that is infinite is dropped, and a time column ``T_t`` (unbounded above, the
    only unbounded column of each of its rows) whose reduced cost is negative has the
    multipliers of its rows scaled down until it is just above 0 (a factor 1e-12 short,
    so rounding cannot leave it negative). None when a reduced cost still faces an
    infinite bound (no certificate). Computed in float64 from the model's own data, in
    its scaled units (one unit-transfer time = 1); 1e-9 relative plus 1e-9 of one
    unit-transfer time is taken off for the rounding of these sums."""
    y = y.copy()
    y[(y > 0) & ~np.isfinite(model.row_lo)] = 0.0
    y[(y < 0) & ~np.isfinite(model.row_hi)] = 0.0
    A = model.A
    free = np.flatnonzero(~np.isfinite(model.col_hi))
    if len(free):
        sub = A[:, free].tocsr()
        if np.all(np.diff(sub.indptr) <= 1):  # each row holds at most one unbounded column
            sc = sub.tocsc()
            for k, j in enumerate(free):
                seg = slice(sc.indptr[k], sc.indptr[k + 1])
                rows, a = sc.indices[seg], sc.data[seg]
                pull = float(np.dot(y[rows], a))
                if pull > model.c[j]:  # then pull > 0: the cost of a time is >= 0
                    y[rows] *= (1.0 - 1e-12) * model.c[j] / pull
    d = model.c - A.T @ y
    lo, hi = model.col_lo, model.col_hi
    at_lo, at_hi = d > 0, d < 0
    if np.any(at_lo & ~np.isfinite(lo)) or np.any(at_hi & ~np.isfinite(hi)):
        return None
    rows = np.where(y > 0, model.row_lo, np.where(y < 0, model.row_hi, 0.0))
    value = float(np.dot(y, rows)) + float(np.dot(d[at_lo], lo[at_lo]))
    value += float(np.dot(d[at_hi], hi[at_hi]))
    return max(0.0, value - 1e-9 * (abs(value) + 1.0))


@dataclass
class MilpOutcome:
    moves: list[tuple[np.ndarray, np.ndarray, bool]] | None  # per step, by unit id
    bound: float
    status: str
    solver: str


def check_size(inst: KvInstance) -> None:
    refuse_above(
        model_size(inst),
        MILP_MAX_VARIABLES,
        "MILP",
        "shorten the trace or the prompt; the LP bound and the policies work at any size",
    )


def to_pulp(model: SparseModel, name: str = "kv_placement") -> tuple[Any, list[Any]]:
    """The sparse model as a PuLP problem (readable, exportable)."""
    import pulp

    prob = pulp.LpProblem(name, pulp.LpMinimize)
    v = [
        pulp.LpVariable(
            f"v{j}",
            lowBound=float(model.col_lo[j]),
            upBound=None if math.isinf(model.col_hi[j]) else float(model.col_hi[j]),
            cat=pulp.LpInteger if model.integer[j] else pulp.LpContinuous,
        )
        for j in range(model.n_cols)
    ]
    prob += pulp.lpSum(float(model.c[j]) * v[j] for j in np.flatnonzero(model.c))
    Ar = model.A.tocsr()
    for i in range(model.n_rows):
        lo_, hi_ = model.row_lo[i], model.row_hi[i]
        seg = slice(Ar.indptr[i], Ar.indptr[i + 1])
        expr = pulp.LpAffineExpression(
            [(v[j], float(a)) for j, a in zip(Ar.indices[seg], Ar.data[seg], strict=True)]
        )
        if lo_ == hi_:
            prob += expr == float(lo_), f"r{i}"
        else:
            if math.isfinite(lo_):
                prob += expr >= float(lo_), f"r{i}_lo"
            if math.isfinite(hi_):
                prob += expr <= float(hi_), f"r{i}_hi"
    return prob, v


def start_columns(inst: KvInstance, model: SparseModel, plan: Any) -> np.ndarray:
    """Every column's value for a plan (per step: promoted ids, demoted ids, new unit to
    HBM), a MIP start. The model has no moves during the last step, so a plan's last
    moves are dropped (and its new unit kept out of HBM if they made its room); the
    times ``T_t`` are the largest their rows require."""
    L, P, T = inst.layers, inst.prompt, inst.steps
    LP = L * P
    trace = inst.trace.materialize()
    v = np.zeros(model.n_cols)
    res = np.zeros(LP + T, dtype=bool)
    res[:LP] = model.col_lo[:LP] > 0.5
    for t in range(T):
        Et = LP + t
        v[model.x_off[t] : model.x_off[t] + Et] = res[:Et]
        pro, dem, new = plan[t]
        pro, dem = np.asarray(pro, dtype=np.int64), np.asarray(dem, dtype=np.int64)
        R = unit_ids(inst, t % L, trace.row(t).astype(np.int64))
        y = 1.0 - res[R]
        if t < T - 1:
            v[model.p_off[t] + pro] = 1.0
            v[model.d_off[t] + dem] = 1.0
            y = np.maximum(y, np.isin(R, pro))
            res[dem] = False
            res[pro] = True
            res[Et] = bool(new)
        else:
            v[model.last_new] = float(bool(new) and res[:Et].sum() + 1 <= inst.hbm_units)
        v[model.y_off[t] : model.y_off[t] + len(R)] = y
    act = model.A @ v  # the T columns are 0 here
    sub = model.A[:, model.t_col].tocsc()
    for k, j in enumerate(model.t_col):
        seg = slice(sub.indptr[k], sub.indptr[k + 1])
        rows, a = sub.indices[seg], sub.data[seg]
        pos = a > 0
        need = (model.row_lo[rows[pos]] - act[rows[pos]]) / a[pos]
        v[j] = max(0.0, float(need.max())) if len(need) else 0.0
    return v


def milp(
    inst: KvInstance,
    opts: SolverOptions | None = None,
    backend: str = "highs",
    start: Any = None,
) -> MilpOutcome:
    """Solve the MILP (refuses models above :data:`MILP_MAX_VARIABLES`); ``start``: a
    plan (e.g. the best policy's) given to the solver as its first incumbent."""

    check_size(inst)
    t0 = time.perf_counter()
    opts = opts or SolverOptions()

    def left() -> SolverOptions:  # the limit covers building the model too
        if opts.time_limit_s is None:
            return opts
        spent = time.perf_counter() - t0
        return dataclasses.replace(opts, time_limit_s=max(0.05, opts.time_limit_s - spent))

    model = build(inst, integer=True)
    x0 = None if start is None else start_columns(inst, model, start)
    if backend == "highs":  # directly: PuLP's HiGHS takes no MIP start
        return _milp_highs(inst, model, left(), x0)
    prob, v = to_pulp(model, inst.name.replace("-", "_") or "kv_placement")
    if x0 is not None:
        for var, x in zip(v, x0, strict=True):
            var.setInitialValue(float(x))
    ans = solve_pulp(prob, backend, left(), warm_start=x0 is not None)
    bound = ans.bound * model.time_unit  # the model counts unit-transfer times
    if ans.objective is None:
        return MilpOutcome(None, bound, ans.status, backend)
    x = np.array([(var.value() or 0.0) for var in v])
    return MilpOutcome(moves_from_x(inst, model, x), bound, ans.status, backend)


def _milp_highs(
    inst: KvInstance, model: SparseModel, opts: SolverOptions, x0: np.ndarray | None
) -> MilpOutcome:
    """The MILP on HiGHS through highspy with ``x0`` as its MIP start, in a forked child
    stopped at the limit (HiGHS' root cut loop can overrun its own; solvers.solve_pulp
    does the same)."""
    import highspy

    limit = opts.time_limit_s
    deadline = None if limit is None else limit + CHILD_REPLY_S
    # HiGHS stops itself a little early (its checks are coarse), the child is stopped
    # at the deadline for sure
    own = None if limit is None else max(0.05, 0.95 * limit - CHILD_REPLY_S)

    def run() -> tuple[str, float, np.ndarray | None]:
        h = _highs(model, relax=False)
        highs_threads(h, opts.threads)
        h.setOptionValue("mip_rel_gap", 1e-9)
        h.setOptionValue("random_seed", int(opts.seed))
        if own is not None:
            h.setOptionValue("time_limit", float(own))
        if x0 is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(x0)
            sol.value_valid = True
            h.setSolution(sol)
        h.run()
        info, st = h.getInfo(), h.getModelStatus()
        b = float(info.mip_dual_bound)
        bound = max(0.0, b) if math.isfinite(b) else 0.0
        has = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        if st == highspy.HighsModelStatus.kOptimal:
            word = "optimal"
        elif st == highspy.HighsModelStatus.kInfeasible:
            word = "infeasible"
        else:
            word = "feasible" if has else "time_limit"
        x = np.asarray(h.getSolution().col_value, dtype=float) if has else None
        return word, bound, x

    got = call_with_deadline(run, deadline)
    if got is None:  # stopped past the limit: nothing came back
        return MilpOutcome(None, 0.0, "time_limit", "highs")
    word, bound, x = got
    moves = None if x is None else moves_from_x(inst, model, x)
    return MilpOutcome(moves, bound * model.time_unit, word, "highs")


def moves_from_x(
    inst: KvInstance, model: SparseModel, x: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Per-step (promoted ids, demoted ids, new unit to HBM) from residencies."""
    LP, T = inst.layers * inst.prompt, inst.steps
    out = []
    for t in range(T):
        Et = LP + t
        cur = x[model.x_column(np.arange(Et), t)] > 0.5
        if t < T - 1:
            nxt = x[model.x_column(np.arange(Et), t + 1)] > 0.5
            new = bool(x[model.x_column(Et, t + 1)] > 0.5)
        else:
            nxt, new = cur, bool(x[model.last_new] > 0.5)
        out.append((np.flatnonzero(nxt & ~cur), np.flatnonzero(cur & ~nxt), new))
    return out
