"""The exact iteration-indexed MIP of formulations/serving.md (PuLP, HiGHS by default).

Symbols follow the formulation: client i, iteration position k = 1..K, request j,
prompt token u. The solution is decoded into per-client iteration plans that the
simulator replays (``FixedPlan``), so the returned schedule is the simulator's and
passes the same ``check()`` as every other scheduler's.

Scaling: the solver sees times in units of ``theta = tau(1, 0, 0)``, one iteration of
one token (``time_unit``); in seconds the coefficients span 10^-9 .. 10 and the
back-ends' absolute tolerances (10^-6) would be larger than the quantities that
matter. Objective and bound come back in seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from optkit.serving.instance import ServingInstance
from optkit.serving.policies import IterationPlan
from optkit.solvers import SolverOptions, TooLarge, refuse_above, solve_pulp

#: Larger models are refused with a message (T^LB and the schedulers work at any size).
MIP_MAX_VARIABLES = 20_000

__all__ = ["MIP_MAX_VARIABLES", "TooLarge", "build", "check_size", "decode", "solve_mip"]


def horizon(inst: ServingInstance) -> int:
    """K: iterations per client that suffice for some optimal schedule."""
    return int(np.sum(np.maximum(inst.prompt, 1) + inst.output - 1))


def model_size(inst: ServingInstance) -> int:
    """Number of columns of the MIP (the formulation's size formula)."""
    return inst.clients * horizon(inst) * (int(inst.prompt.sum()) + 5 * inst.n + 3)


def check_size(inst: ServingInstance) -> None:
    refuse_above(
        model_size(inst),
        MIP_MAX_VARIABLES,
        "MIP",
        "it needs one binary per prompt token, iteration and client: use fewer requests, "
        "shorter prompts or coarser token units; T^LB and the schedulers work at any size",
    )


@dataclass
class Model:
    """The PuLP problem and the variables the decoder reads."""

    prob: Any
    a: dict[tuple[int, int], Any]
    D: dict[tuple[int, int, int, int], Any]  # (j, u, i, k), u = 1..s_j, k = 1..K
    f0: dict[tuple[int, int, int], Any]  # (j, i, k) first token of a zero-length prompt
    y: dict[tuple[int, int, int], Any]
    K: int
    time_unit: float  # seconds per unit of T, d, e (theta)


def time_unit(inst: ServingInstance) -> float:
    """theta = tau(1, 0, 0) > 0: the model's time unit, in seconds."""
    return inst.iteration.time(1, 0, 0)


def build(
    inst: ServingInstance, lower: float = 0.0, upper: float | None = None, name: str = ""
) -> Model:
    """Constraints 1-9 of the formulation; ``lower``/``upper`` are T^LB and T^UB in
    seconds; every time is divided by :func:`time_unit` before the solver sees it."""
    import pulp

    check_size(inst)
    theta = time_unit(inst)
    it = inst.iteration
    it = type(it)(**{k: v / theta for k, v in it.to_dict().items()})
    lower /= theta
    upper = None if upper is None else upper / theta
    n, m, K = inst.n, inst.clients, horizon(inst)
    s = [int(x) for x in inst.prompt]
    o = [int(x) for x in inst.output]
    r = [float(x) / theta for x in inst.arrival]
    B, M = inst.max_batch, inst.kv_tokens
    U = sum(s) + sum(o)
    prob = pulp.LpProblem(name or "serving", pulp.LpMinimize)
    Bin = pulp.LpBinary

    def var(label: str, cat: str = pulp.LpContinuous, low: float = 0.0, up: Any = None) -> Any:
        return pulp.LpVariable(label, lowBound=low, upBound=up, cat=cat)

    T = var("T", low=lower)
    prob += T
    if upper is not None:
        prob += upper * (1 + 1e-9) >= T, "upper"
    a: dict[tuple[int, int], Any] = {}
    for j in range(n):  # 1. assignment, identical-client symmetry a_ji = 0 for i > j
        for i in range(min(j + 1, m)):
            a[j, i] = var(f"a_{j}_{i}", Bin)
        prob += pulp.lpSum(a[j, i] for i in range(min(j + 1, m))) == 1, f"assign_{j}"

    D: dict[tuple[int, int, int, int], Any] = {}
    f0: dict[tuple[int, int, int], Any] = {}
    y: dict[tuple[int, int, int], Any] = {}
    for i in range(m):
        mine = [j for j in range(n) if (j, i) in a]
        E: dict[tuple[int, int], Any] = {}  # prefill done by k (expression), k = 0..K
        S: dict[tuple[int, int], Any] = {}  # started by k
        G: dict[tuple[int, int], Any] = {}
        Y: dict[tuple[int, int], Any] = {}
        f: dict[tuple[int, int], Any] = {}
        for j in mine:
            E[j, 0] = S[j, 0] = G[j, 0] = Y[j, 0] = 0
            for k in range(1, K + 1):
                if s[j]:  # 2. prompt tokens in order, each once
                    for u in range(1, s[j] + 1):
                        D[j, u, i, k] = var(f"D_{j}_{u}_{i}_{k}", Bin)
                        if k > 1:
                            prob += D[j, u, i, k] >= D[j, u, i, k - 1]
                        if u > 1:
                            prob += D[j, u, i, k] <= D[j, u - 1, i, k]
                    E[j, k] = D[j, s[j], i, k]
                    S[j, k] = D[j, 1, i, k]
                    f[j, k] = E[j, k] - E[j, k - 1]
                else:
                    f[j, k] = f0[j, i, k] = var(f"f_{j}_{i}_{k}", Bin)
                    E[j, k] = S[j, k] = E[j, k - 1] + f[j, k]
                G[j, k] = var(f"G_{j}_{i}_{k}", Bin)
                y[j, i, k] = var(f"y_{j}_{i}_{k}", Bin)
                Y[j, k] = Y[j, k - 1] + y[j, i, k]
            for u in range(1, s[j] + 1):
                prob += D[j, u, i, K] == a[j, i]
            if not s[j]:
                prob += E[j, K] == a[j, i]
            prob += Y[j, K] == (o[j] - 1) * a[j, i], f"decodes_{j}_{i}"  # 3. exact count
        v_prev = None
        e_prev: Any = 0
        for k in range(1, K + 1):
            w = var(f"w_{i}_{k}", Bin)
            v = var(f"v_{i}_{k}", Bin)
            d = var(f"d_{i}_{k}")
            e = var(f"e_{i}_{k}")
            N, A, C, firsts = [], [], [], []
            h_sum, kv_sum = [], []
            for j in mine:
                rho = E[j, k - 1] - G[j, k - 1]  # 3. whole running batch decodes
                prob += y[j, i, k] <= rho
                prob += y[j, i, k] <= w
                prob += y[j, i, k] >= w + rho - 1
                prob += G[j, k] <= E[j, k]  # 4. finished
                if o[j] > 1:
                    prob += (o[j] - 1) * G[j, k] <= Y[j, k]
                h = var(f"h_{j}_{i}_{k}", up=1)  # 5. slot and KV held
                prob += h >= S[j, k] - G[j, k - 1]
                h_sum.append(h)
                kv_sum.append((s[j] + o[j]) * h)
                for u in range(1, s[j] + 1):  # 6. tokens and attention pairs
                    new = D[j, u, i, k] - (D[j, u, i, k - 1] if k > 1 else 0)
                    N.append(new)
                    A.append(u * new)
                N.append(y[j, i, k])
                firsts.append(f[j, k])
                if o[j] > 1:
                    c = var(f"c_{j}_{i}_{k}")
                    prob += c >= s[j] * y[j, i, k] + Y[j, k] - (o[j] - 1) * (1 - y[j, i, k])
                    C.append(c)
            if mine:
                prob += pulp.lpSum(h_sum) <= B, f"slots_{i}_{k}"
                prob += pulp.lpSum(kv_sum) <= M, f"kv_{i}_{k}"
            Nk = pulp.lpSum(N)
            rest = it.gamma * pulp.lpSum(A) + it.delta * pulp.lpSum(C)
            prob += Nk + pulp.lpSum(firsts) <= U * v, f"used_{i}_{k}"  # 7.
            if v_prev is not None:
                prob += v_prev >= v
            prob += d >= (it.tau_w + it.tau_c) * v + rest
            prob += d >= it.kappa * Nk + it.tau_c * v + rest
            prob += e >= e_prev + d  # 8. time
            for j in mine:
                if r[j] > 0:
                    prob += e - d >= r[j] * S[j, k]
            v_prev, e_prev = v, e
        prob += e_prev <= T, f"makespan_{i}"
    return Model(prob, a, D, f0, y, K, theta)


def decode(inst: ServingInstance, mdl: Model) -> tuple[np.ndarray, dict[int, list[IterationPlan]]]:
    """(assignment, per-client iteration plans) from a solved model."""

    def val(x: Any) -> bool:
        return (x.value() or 0.0) > 0.5

    assign = np.zeros(inst.n, dtype=np.int64)
    for (j, i), x in mdl.a.items():
        if val(x):
            assign[j] = i
    plans: dict[int, list[IterationPlan]] = {}
    s = [int(x) for x in inst.prompt]
    for i in range(inst.clients):
        mine = np.flatnonzero(assign == i)
        out: list[IterationPlan] = []
        done = {int(j): 0 for j in mine}
        for k in range(1, mdl.K + 1):
            plan = IterationPlan()
            for j in map(int, mine):
                if s[j]:
                    now = sum(val(mdl.D[j, u, i, k]) for u in range(1, s[j] + 1))
                    if now > done[j]:
                        plan.prefill.append((j, now - done[j]))
                        done[j] = now
                elif val(mdl.f0[j, i, k]):
                    plan.prefill.append((j, 0))
                if val(mdl.y[j, i, k]):
                    plan.decode = True
            if not plan.empty:
                out.append(plan)
        plans[i] = out
    return assign, plans


@dataclass
class MipOutcome:
    assignment: np.ndarray | None
    plans: dict[int, list[IterationPlan]] | None
    objective: float | None
    bound: float
    status: str  # optimal | feasible | time_limit
    solver: str


def solve_mip(
    inst: ServingInstance,
    opts: SolverOptions | None = None,
    backend: str = "highs",
    lower: float = 0.0,
    upper: float | None = None,
) -> MipOutcome:
    """Solve the MIP (refuses models above :data:`MIP_MAX_VARIABLES`)."""

    import time

    opts = opts or SolverOptions()
    t0 = time.perf_counter()
    mdl = build(inst, lower, upper, inst.name.replace("-", "_"))
    # HiGHS 1.16 declares some of these models infeasible although a schedule with
    # makespan <= ``upper`` exists, with presolve on and with it off, on different
    # models (tests/serving/test_mip.py keeps one of each). With ``upper`` given a
    # schedule is known, so "infeasible" is a solver error: the next try runs.
    tries: list[tuple[str, dict | None]] = [(backend, None)]
    if backend == "highs":
        tries = [("highs", {"presolve": "off"}), ("highs", {}), ("cbc", None)]
    for used, extra in tries:
        left = opts.remaining(time.perf_counter() - t0)
        run = opts if left is None else dataclasses.replace(opts, time_limit_s=left)
        ans = solve_pulp(mdl.prob, used, run, lower=lower / mdl.time_unit, options=extra)
        if ans.status != "infeasible" or upper is None:
            break
    backend = used
    bound = ans.bound * mdl.time_unit
    if ans.objective is None:
        return MipOutcome(None, None, None, bound, ans.status, backend)
    assign, plans = decode(inst, mdl)
    obj = ans.objective * mdl.time_unit
    return MipOutcome(assign, plans, obj, bound, ans.status, backend)
