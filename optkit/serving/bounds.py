"""T^LB: a proven lower bound on the makespan of any schedule (formulations/serving.md)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from optkit.result import Bound, best_bound
from optkit.serving.instance import ServingInstance

THETAS = (1.0, 0.75, 0.5, 0.25, 0.0)
MUS = (1.0, 0.5, 0.0)


def workloads(inst: ServingInstance, theta: float = 1.0, mu: float = 0.5) -> np.ndarray:
    """w_j(θ, μ): busy time request j adds to its client, at least, whatever the batching.

    An iteration's GEMM part is max(τ_w, κN) >= μ·τ_w + (1 − μ)·κN (an iteration may
    mix prompt tokens and decodes, so the two terms cannot both be charged in full).
    The iteration count is bounded through the two limits on how many sequences one
    iteration serves: θ·(o_j − 1)/B (batch slots) + (1 − θ)·K_j/M (KV tokens,
    K_j = Σ_t (s_j + t) held during its decode steps). Every θ, μ in [0, 1] gives a
    valid bound (convex combinations of lower bounds).
    """
    it = inst.iteration
    s = inst.prompt.astype(float)
    d = inst.output.astype(float) - 1  # decode iterations of j
    kv_steps = d * s + d * (d + 1) / 2  # Σ_t (s_j + t): KV tokens held, summed over its steps
    tokens = s + d  # new tokens j puts through the GEMMs (prompt, then one per decode step)
    iterations = theta * d / inst.max_batch + (1 - theta) * kv_steps / inst.kv_tokens
    gemm = mu * it.tau_w * iterations + (1 - mu) * it.kappa * tokens
    return gemm + it.gamma * s * (s + 1) / 2 + it.delta * kv_steps + it.tau_c * iterations


def chains(inst: ServingInstance) -> np.ndarray:
    """Earliest completion of each request alone: arrival, prefill, o_j - 1 decode floors."""
    it = inst.iteration
    s = inst.prompt.astype(float)
    d = inst.output.astype(float) - 1
    return inst.arrival + np.maximum(it.tau_w, it.kappa * s) + d * (it.tau_w + it.tau_c)


BOUND_METHODS = ("auto", "cheap", "lp")


def bounds(inst: ServingInstance, method: str = "auto") -> list[Bound]:
    """The packing bound of the workloads (w_j(θ, μ), m) over every (θ, μ), and the
    longest chain; ``lp`` adds the arc-flow LP bound to the packing rules."""
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
    out = [Bound(b.value, f"packing:{b.kind}"), Bound(float(np.max(chains(inst))), "chain")]
    if method == "lp":  # the bin-packing LP on the strongest workloads: obtained or why not
        lp = packing_bounds(pk, "lp")[-1]
        out.append(replace(lp, kind="packing:LP"))
    return out


def lower_bound(inst: ServingInstance, lp: bool = False) -> Bound:
    """T^LB = max(packing bound, longest chain)."""
    return best_bound(bounds(inst, "lp" if lp else "cheap"))
