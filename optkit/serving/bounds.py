"""T^LB: a proven lower bound on the makespan of any schedule (formulations/serving.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optkit.serving.instance import ServingInstance


def workloads(inst: ServingInstance) -> np.ndarray:
    """w_j: busy time request j adds to its client, at least, whatever the batching."""
    it = inst.iteration
    s = inst.prompt.astype(float)
    d = inst.output.astype(float) - 1  # decode iterations of j
    prefill = it.kappa * s + it.gamma * s * (s + 1) / 2
    decode = it.delta * (d * s + d * (d + 1) / 2)
    fixed = (it.tau_w + it.tau_c) * d / inst.max_batch
    return prefill + decode + fixed


def chains(inst: ServingInstance) -> np.ndarray:
    """Earliest completion of each request alone: arrival, prefill, o_j - 1 decode floors."""
    it = inst.iteration
    s = inst.prompt.astype(float)
    d = inst.output.astype(float) - 1
    return inst.arrival + np.maximum(it.tau_w, it.kappa * s) + d * (it.tau_w + it.tau_c)


@dataclass(frozen=True)
class ServingBound:
    value: float
    kind: str  # which part is binding: "packing:<rule>" or "chain"
    packing: float
    chain: float


def lower_bound(inst: ServingInstance, lp: bool = False) -> ServingBound:
    """max(packing bound of (w_j, m), max_j chain_j); ``lp`` adds the arc-flow LP bound."""
    from optkit.packing import MakespanInstance
    from optkit.packing import bound as packing_bound

    w = workloads(inst)
    pk = MakespanInstance.identical(w, inst.clients, name=inst.name)
    b = packing_bound(pk, "lp" if lp else "cheap")
    ch = float(np.max(chains(inst)))
    if ch > b.value:
        return ServingBound(ch, "chain", b.value, ch)
    return ServingBound(b.value, f"packing:{b.kind}", b.value, ch)
