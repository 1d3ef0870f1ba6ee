"""T^LB: a proven lower bound on the makespan of any schedule (formulations/serving.md)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from optkit.packing.bounds import bpp_dff
from optkit.result import Bound, best_bound
from optkit.serving.instance import ServingInstance

THETAS = (1.0, 0.75, 0.5, 0.25, 0.0)
MUS = (1.0, 0.5, 0.0)


def _terms(inst: ServingInstance) -> tuple[np.ndarray, ...]:
    """Per request: new tokens n_j, prefill pairs, KV tokens read K_j, slot-iterations o_j
    and reservation-iterations ρ_j·o_j (formulations/serving.md, T^LB)."""
    s = inst.prompt.astype(float)
    o = inst.output.astype(float)
    d = o - 1  # decode iterations of j
    kv_read = d * s + d * (d + 1) / 2  # Σ_t (s_j + t): KV tokens its decodes read
    # j holds a slot and s_j + o_j KV tokens in at least o_j iterations
    return s + d, s * (s + 1) / 2, kv_read, o, (s + o) * o


def workloads(inst: ServingInstance, theta: float = 1.0, mu: float = 0.5) -> np.ndarray:
    """w_j(θ, μ): busy time request j adds to its client, at least, whatever the batching.

    An iteration's GEMM part is max(τ_w, κN) >= μ·τ_w + (1 − μ)·κN (an iteration may
    mix prompt tokens and decodes, so the two terms cannot both be charged in full).
    Request j holds a slot and its reservation s_j + o_j KV tokens for at least o_j
    iterations; an iteration holds at most B slots and M tokens, so j accounts for
    ι_j = θ·o_j/B + (1 − θ)·(s_j + o_j)·o_j/M iterations. Every θ, μ in [0, 1] gives a
    valid bound (convex combinations of lower bounds).
    """
    it = inst.iteration
    n, pairs, kv_read, slot_its, kv_its = _terms(inst)
    iterations = theta * slot_its / inst.max_batch + (1 - theta) * kv_its / inst.kv_tokens
    gemm = mu * it.tau_w * iterations + (1 - mu) * it.kappa * n
    return gemm + it.gamma * pairs + it.delta * kv_read + it.tau_c * iterations


def iterations_bound(inst: ServingInstance) -> float:
    """max over arrival times t of t + F(J_{>=t}) / m: the client bound F (iterations at
    least the occupancy (a bin-packing bound
    per iteration for all requests) and the longest request, GEMMs at least max(τ_w·I, κ·N)) of the
    requests arriving at t or later, spread over the m clients."""
    if inst.n == 0:
        return 0.0
    it = inst.iteration
    order = np.argsort(-inst.arrival, kind="stable")  # latest first: prefixes are J_{>=t}
    n, pairs, kv_read, slot_its, kv_its = (np.cumsum(x[order]) for x in _terms(inst))
    longest = np.maximum.accumulate(inst.output[order].astype(float))
    iters = np.maximum.reduce(
        [np.ceil(slot_its / inst.max_batch), np.ceil(kv_its / inst.kv_tokens), longest]
    )
    # all requests (the last prefix): the iterations are bins of M KV tokens, request j
    # an item of size s_j + o_j in o_j of them -- a bin-packing bound of that multiset
    # (copies of one request never share a bin, which only needs more bins)
    rho = (inst.prompt + inst.output).astype(float)
    full = bpp_dff(rho, float(inst.kv_tokens), counts=inst.output.astype(float))
    iters[-1] = max(iters[-1], full)
    busy = np.maximum(it.tau_w * iters, it.kappa * n) + it.tau_c * iters
    busy += it.gamma * pairs + it.delta * kv_read
    t = inst.arrival[order]
    # with ties in arrival only the last of each group holds all of J_{>=t}
    last = np.r_[t[1:] != t[:-1], True]
    return float(np.max((t + busy / inst.clients)[last]))


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
    best: tuple[Bound, MakespanInstance] | None = None
    for theta in THETAS:  # every (θ, μ) is valid: keep the strongest
        for mu in MUS:
            pk = MakespanInstance.identical(workloads(inst, theta, mu), inst.clients)
            bt = best_bound(packing_bounds(pk, "cheap"))
            if best is None or bt.value > best[0].value:
                best = (bt, pk)
    assert best is not None
    b, pk = best
    out = [
        Bound(b.value, f"packing:{b.kind}"),
        Bound(iterations_bound(inst), "iterations"),
        Bound(float(np.max(chains(inst))) if inst.n else 0.0, "chain"),
    ]
    if method == "lp":  # the bin-packing LP on the strongest workloads: obtained or why not
        lp = packing_bounds(pk, "lp")[-1]
        out.append(replace(lp, kind="packing:LP"))
    return out


def lower_bound(inst: ServingInstance, lp: bool = False) -> Bound:
    """T^LB = max(packing bound, iterations bound, longest chain)."""
    return best_bound(bounds(inst, "lp" if lp else "cheap"))
