"""Independent verifier of an expert-cache plan (formulations/expert_cache.md, "Plans
and time"): it replays the loads and evictions from an empty cache with its own
bookkeeping (``kernels.timeline``, which shares nothing with the policies or the
replay), checks the slots, and recomputes the link and compute timeline."""

from __future__ import annotations

from typing import Any

from optkit.experts import kernels
from optkit.experts.instance import ExpertInstance
from optkit.experts.plan import ExpertPlan
from optkit.result import Verdict

_MESSAGES = {
    1: "step {n}: unit {x} outside 0..{top}",
    2: "step {n}: evicts a unit not on the GPU (or twice)",
    3: "step {n}: evicts a unit this step uses",
    4: "step {n}: evicts a unit still in flight",
    5: "step {n}: loads a unit already on the GPU (or twice)",
    6: "step {n}: {x} experts on the GPU, capacity {C}",
    7: "step {n}: uses unit {x}, neither on the GPU nor loaded",
}


def check(inst: ExpertInstance, plan: ExpertPlan) -> Verdict:
    """Total time T, the violations, and ``details``: hit rate (uses whose unit was on
    the GPU when the step was decided, prefetches included), reuse rate (1 − loads /
    uses), loads, prefetches used, stall seconds, bytes moved."""
    S = inst.steps
    if len(plan) != S:
        return Verdict(float("nan"), (f"plan has {len(plan)} steps, the trace {S}",))
    flat, off = inst.needed_csr()
    comp = inst.step_compute()
    end, hits, loads, useful, codes, at, vals, nv = kernels.timeline(
        flat,
        off,
        plan.load_units,
        plan.load_off,
        plan.evict_units,
        plan.evict_off,
        comp,
        inst.load_time,
        inst.capacity,
        inst.units,
    )
    v = tuple(
        _MESSAGES[int(codes[j])].format(
            n=int(at[j]), x=int(vals[j]), top=inst.units - 1, C=inst.capacity
        )
        for j in range(nv)
    )
    uses = inst.uses
    details: dict[str, Any] = {
        "hit_rate": hits / uses,
        "reuse_rate": 1.0 - loads / uses,
        "loads": int(loads),
        "prefetches_used": int(useful),
        "stall_s": float(end) - float(comp.sum()),
        "bytes_moved": loads * inst.expert_bytes,
    }
    return Verdict(float(end), v, details)
