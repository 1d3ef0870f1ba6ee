"""Independent verifier of an expert-cache plan (formulations/expert_cache.md, "Plans
and time"): it replays the loads and evictions from an empty cache with its own
bookkeeping, checks the slots, and recomputes the link and compute timeline."""

from __future__ import annotations

from typing import Any

import numpy as np

from optkit.experts.instance import ExpertInstance
from optkit.experts.plan import ExpertPlan
from optkit.result import Verdict


def check(inst: ExpertInstance, plan: ExpertPlan) -> Verdict:
    """Total time T, the violations, and ``details``: hit rate (uses whose unit was on
    the GPU when the step was decided, prefetches included), reuse rate (1 − loads /
    uses), loads, prefetches used, stall seconds, bytes moved."""
    v: list[str] = []
    S = inst.steps
    if len(plan) != S:
        return Verdict(float("nan"), (f"plan has {len(plan)} steps, the trace {S}",))
    need = inst.needed()
    comp = inst.step_compute()
    tau, C, U = inst.load_time, inst.capacity, inst.units
    arrive = np.full(U, np.inf)  # arrival time of each unit on the GPU (inf: not there)
    held = np.zeros(U, dtype=bool)
    prefetched = np.zeros(U, dtype=bool)  # loaded ahead, not yet used
    link = end = 0.0
    hits = loads = useful = 0
    for n in range(S):
        if len(v) > 20:
            break
        adds, evicts = plan.steps[n]
        r = need[n]
        ev, ad = evicts.tolist(), adds.tolist()
        bad = [u for u in (*ad, *ev) if not 0 <= u < U]
        if bad:
            v.append(f"step {n}: unit {bad[0]} outside 0..{U - 1}")
            continue
        if len(set(ev)) != len(ev) or not held[evicts].all():
            v.append(f"step {n}: evicts a unit not on the GPU (or twice)")
        if not set(ev).isdisjoint(r.tolist()):
            v.append(f"step {n}: evicts a unit this step uses")
        gone = evicts[held[evicts]]
        if len(gone) and np.any(arrive[gone] > end):
            v.append(f"step {n}: evicts a unit still in flight")
        held[gone] = False
        arrive[gone] = np.inf
        prefetched[gone] = False
        hits += int(np.count_nonzero(held[r] & (arrive[r] <= end)))
        if len(set(ad)) != len(ad) or held[adds].any():
            v.append(f"step {n}: loads a unit already on the GPU (or twice)")
        for u in adds[~held[adds]].tolist():
            start = max(end, link)
            link = start + tau
            arrive[u] = link
            held[u] = True
            prefetched[u] = u not in r
            loads += 1
        if int(held.sum()) > C:
            v.append(f"step {n}: {int(held.sum())} experts on the GPU, capacity {C}")
        if not held[r].all():
            v.append(f"step {n}: uses unit {int(r[~held[r]][0])}, neither on the GPU nor loaded")
            continue
        useful += int(np.count_nonzero(prefetched[r]))
        prefetched[r] = False
        begin = max(end, float(arrive[r].max()))
        end = begin + float(comp[n])
    uses = inst.uses
    details: dict[str, Any] = {
        "hit_rate": hits / uses,
        "reuse_rate": 1.0 - loads / uses,
        "loads": loads,
        "prefetches_used": useful,
        "stall_s": end - float(comp.sum()),
        "bytes_moved": loads * inst.expert_bytes,
    }
    return Verdict(end, tuple(v[:50]), details)
