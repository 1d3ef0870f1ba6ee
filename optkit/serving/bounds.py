"""T^LB: a proven lower bound on the makespan of any schedule (formulations/serving.md)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from optkit.packing.bounds import dff_best, mcnaughton, pigeonhole
from optkit.result import Bound, best_bound
from optkit.serving.instance import ServingInstance

THETAS = (1.0, 0.75, 0.5, 0.25, 0.0)
MUS = (1.0, 0.5, 0.0)
FULL_BOUNDS = 3  # workload vectors given the search-based packing bounds


def _terms(inst: ServingInstance) -> tuple[np.ndarray, ...]:
    """Per request: new tokens n_j, prefill pairs, KV tokens read K_j and the iterations
    it holds a slot and its reservation in, o_j (formulations/serving.md, T^LB)."""
    s = inst.prompt.astype(float)
    o = inst.output.astype(float)
    d = o - 1  # decode iterations of j
    kv_read = d * s + d * (d + 1) / 2  # Σ_t (s_j + t): KV tokens its decodes read
    return s + d, s * (s + 1) / 2, kv_read, o


def kv_shares(inst: ServingInstance) -> tuple[np.ndarray, np.ndarray]:
    """Two shares v_j of one iteration's KV that request j takes while it holds its
    reservation ρ_j = s_j + o_j, each summing to at most 1 over any set that fits M:
    ρ_j / M, and the dual-feasible function of ρ_j / M that maximises Σ_j o_j·v_j
    (requests above M/2 count whole: no two of them share an iteration)."""
    rho = (inst.prompt + inst.output).astype(float)
    M = float(inst.kv_tokens)
    return rho / M, dff_best(rho, M, counts=inst.output.astype(float))


def workloads(
    inst: ServingInstance, theta: float = 1.0, mu: float = 0.5, share: np.ndarray | None = None
) -> np.ndarray:
    """w_j(θ, μ): busy time request j adds to its client, at least, whatever the batching.

    An iteration's GEMM part is max(τ_w, κN) >= μ·τ_w + (1 − μ)·κN (an iteration may
    mix prompt tokens and decodes, so the two terms cannot both be charged in full).
    Request j holds a slot and its KV reservation for at least o_j iterations; an
    iteration holds at most B slots and KV shares ``share`` (default ρ_j / M, see
    ``kv_shares``) summing to 1, so j accounts for ι_j = θ·o_j/B + (1 − θ)·o_j·v_j
    iterations. Every θ, μ in [0, 1] gives a valid bound (convex combinations of
    lower bounds).
    """
    it = inst.iteration
    n, pairs, kv_read, o = _terms(inst)
    v = kv_shares(inst)[0] if share is None else share
    iterations = theta * o / inst.max_batch + (1 - theta) * o * v
    gemm = mu * it.tau_w * iterations + (1 - mu) * it.kappa * n
    return gemm + it.gamma * pairs + it.delta * kv_read + it.tau_c * iterations


def iterations_bound(inst: ServingInstance) -> float:
    """max over arrival times t of t + F(J_{>=t}) / m: the client bound F of the requests
    arriving at t or later, spread over the m clients. F charges I iterations, at least
    the slot and the KV occupancy (both shares of ``kv_shares``) and the longest
    request, and GEMMs of at least max(τ_w·I, κ·N)."""
    if inst.n == 0:
        return 0.0
    it = inst.iteration
    order = np.argsort(-inst.arrival, kind="stable")  # latest first: prefixes are J_{>=t}
    n, pairs, kv_read, o = (x[order] for x in _terms(inst))
    counts = [o / inst.max_batch, *(o * v[order] for v in kv_shares(inst))]
    iters = np.maximum.reduce(
        [np.ceil(np.cumsum(c) * (1 - 1e-12)) for c in counts] + [np.maximum.accumulate(o)]
    )
    busy = np.maximum(it.tau_w * iters, it.kappa * np.cumsum(n)) + it.tau_c * iters
    busy += it.gamma * np.cumsum(pairs) + it.delta * np.cumsum(kv_read)
    t = inst.arrival[order]
    # with ties in arrival only the last of each group holds all of J_{>=t}
    last = np.r_[t[1:] != t[:-1], True]
    return float(np.max((t + busy / inst.clients)[last]))


def split_bound(inst: ServingInstance) -> float:
    """The client of the longest request h against the other m − 1 (m >= 2): an LP over
    the fractional assignment x_j in [0, 1] of every request to h's client (x_h = 1),
    with T >= F(Σ_j x_j·q_j) (its iterations at least o_h) and (m − 1)·T >= the client
    bound of the rest, for the additive quantities q (tokens, KV read, prefill pairs,
    slot- and KV-iterations). Every assignment is such an x, so the LP minimum bounds
    the makespan; the value returned is the Lagrangian value of HiGHS' duals
    recomputed here, not the solver's primal value (formulations/serving.md)."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, hstack

    m = inst.clients
    if m < 2 or inst.n < 2:
        return 0.0
    it = inst.iteration
    n, pairs, kv_read, o = _terms(inst)
    h = int(np.argmax(o))
    T0 = max(iterations_bound(inst), 1e-300)  # time unit of the LP
    occ = [o / inst.max_batch, *(o * v for v in kv_shares(inst))]  # iterations needed
    I0 = max(float(o[h]), *(float(q.sum()) for q in occ), 1.0)  # iteration unit
    work = it.gamma * pairs + it.delta * kv_read  # per request, time
    w, c = (it.tau_w + it.tau_c) * I0 / T0, it.tau_c * I0 / T0
    # variables: T, I_h, I_o, x_1..x_n; rows A x <= b
    q_rows = [
        (-1.0, w, 0.0, work / T0, 0.0),  # h: T >= (τ_w + τ_c) I_h + Σ x (γa + δK)
        (-1.0, c, 0.0, (it.kappa * n + work) / T0, 0.0),  # h: κ-side of the max
        (-(m - 1.0), 0.0, w, -work / T0, -float(work.sum()) / T0),  # the rest
        (-(m - 1.0), 0.0, c, -(it.kappa * n + work) / T0, -float((it.kappa * n + work).sum()) / T0),
    ]
    for q in occ:  # iterations at least the occupancy on each side
        q_rows.append((0.0, -1.0, 0.0, q / I0, 0.0))
        q_rows.append((0.0, 0.0, -1.0, -q / I0, -float(q.sum()) / I0))
    head = csr_matrix(np.array([[a, b, d] for a, b, d, _, _ in q_rows]))
    body = csr_matrix(np.vstack([x for _, _, _, x, _ in q_rows]))
    A_ub = hstack([head, body]).tocsr()
    b_ub = np.array([r[4] for r in q_rows])
    nv = 3 + inst.n
    lo = np.zeros(nv)
    hi = np.ones(nv)
    lo[1] = float(o[h]) / I0
    hi[:3] = np.inf
    lo[3 + h] = 1.0
    cost = np.zeros(nv)
    cost[0] = 1.0
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=np.c_[lo, hi], method="highs")
    if res.status != 0:
        return 0.0
    y = np.minimum(np.asarray(res.ineqlin.marginals), 0.0)  # multipliers of A x <= b
    red = cost - A_ub.T @ y
    value = float(b_ub @ y) + float(
        np.sum(np.where(red >= 0, red * lo, red * np.where(np.isinf(hi), 0.0, hi)))
    )
    if np.any((red < -1e-12) & np.isinf(hi)):
        return 0.0  # no certificate
    return max(value, 0.0) * T0


def chains(inst: ServingInstance) -> np.ndarray:
    """Earliest completion of each request alone: arrival, prefill, o_j - 1 decode floors."""
    it = inst.iteration
    s = inst.prompt.astype(float)
    d = inst.output.astype(float) - 1
    return inst.arrival + np.maximum(it.tau_w, it.kappa * s) + d * (it.tau_w + it.tau_c)


BOUND_METHODS = ("auto", "cheap", "lp")


def bounds(inst: ServingInstance, method: str = "auto") -> list[Bound]:
    """The packing bound of the workloads (w_j(θ, μ), m) over every (θ, μ), the
    iterations bound and the longest chain; ``lp`` adds the arc-flow LP bound to the
    packing rules."""
    from optkit.packing import MakespanInstance
    from optkit.packing.driver import bounds as packing_bounds

    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}; expected auto, cheap or lp")
    # every (θ, μ) and share is valid: the search-based packing bounds on the
    # FULL_BOUNDS strongest by the L1/pigeonhole rules, then the strongest of those
    cands = []
    for share in kv_shares(inst):
        for theta in THETAS:
            for mu in MUS:
                w = workloads(inst, theta, mu, share)
                quick = max(mcnaughton(w, inst.clients, False), pigeonhole(w, inst.clients, False))
                cands.append((quick, w))
    cands.sort(key=lambda c: -c[0])
    best: tuple[Bound, MakespanInstance] | None = None
    for _, w in cands[:FULL_BOUNDS]:
        pk = MakespanInstance.identical(w, inst.clients)
        bt = best_bound(packing_bounds(pk, "cheap"))
        if best is None or bt.value > best[0].value:
            best = (bt, pk)
    assert best is not None
    b, pk = best
    out = [
        Bound(b.value, f"packing:{b.kind}"),
        Bound(iterations_bound(inst), "iterations"),
        Bound(split_bound(inst), "split-longest"),
        Bound(float(np.max(chains(inst))) if inst.n else 0.0, "chain"),
    ]
    if method == "lp":  # the bin-packing LP on the strongest workloads: obtained or why not
        lp = packing_bounds(pk, "lp")[-1]
        out.append(replace(lp, kind="packing:LP"))
    return out


def lower_bound(inst: ServingInstance, lp: bool = False) -> Bound:
    """T^LB = max(packing bound, iterations bound, longest chain)."""
    return best_bound(bounds(inst, "lp" if lp else "cheap"))
