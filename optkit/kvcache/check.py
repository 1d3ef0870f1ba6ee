"""Independent verifier of a placement plan.

A plan is, per step t, the units promoted and demoted during t (unit ids in
creation order, any layer) and whether the new unit goes to HBM. ``check``
replays it from the initial placement with its own bookkeeping (a residency
set over unit ids; it shares no code with the simulator but the instance's
placement rules) and recomputes every step time from the cost definitions of
formulations/kv_placement.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from optkit.kvcache.instance import KvInstance
from optkit.kvcache.plan import KvPlan
from optkit.result import Verdict

Plan = KvPlan | Sequence[tuple[np.ndarray, np.ndarray, bool]]


def check(inst: KvInstance, plan: Plan, progress: Callable[[int], None] | None = None) -> Verdict:
    """The objective Σ T_t recomputed from the instance, the violations, and the
    per-step times (``details``). ``progress(t)`` is called every 1024 steps (it may
    raise to stop the check)."""
    L, P, T, s = inst.layers, inst.prompt, inst.steps, inst.unit_bytes
    LP = L * P
    violations: list[str] = []
    if len(plan) != T:
        return Verdict(float("nan"), (f"plan has {len(plan)} steps, the trace {T}",), np.zeros(0))
    resident = np.zeros(LP + T, dtype=bool)
    for layer in range(L):
        resident[layer * P + inst.initial_hbm(layer)] = True
    homes = inst.unit_homes()
    excl = inst.mode == "exclusive"
    K = len(inst.tiers)
    times = np.zeros(T)
    # scratch arrays over unit ids, reset after each step: membership and duplicate
    # tests in O(len) instead of a sort per step
    read = np.zeros(LP + T, dtype=bool)
    slot = np.full(LP + T, -1, dtype=np.int64)
    for t, R in enumerate(inst.trace.steps()):
        if progress is not None and t % 1024 == 0:
            progress(t)
        layer = t % L
        if len(violations) > 20:
            break
        ids = inst.creation_index(layer, R.astype(np.int64))
        exists = LP + t
        hit = resident[ids]
        pro, dem, new = plan[t]
        pro = np.asarray(pro, dtype=np.int64)
        dem = np.asarray(dem, dtype=np.int64)
        for name, arr in (("promotes", pro), ("demotes", dem)):
            if len(arr) and (arr.min() < 0 or arr.max() >= exists):
                violations.append(f"step {t} {name} a unit that does not exist yet")
        pro = pro[(pro >= 0) & (pro < exists)]
        dem = dem[(dem >= 0) & (dem < exists)]
        for name, arr in (("promotes", pro), ("demotes", dem)):
            order = np.arange(len(arr))
            slot[arr] = order  # with a duplicate, the last write wins for both copies
            if np.any(slot[arr] != order):
                violations.append(f"step {t} {name} a unit twice")
            slot[arr] = -1
        if resident[pro].any():
            violations.append(f"step {t} promotes a unit already in HBM")
        if not resident[dem].all():
            violations.append(f"step {t} demotes a unit not in HBM")
        read[ids] = True
        in_r = read[pro]
        read[ids] = False
        hbm = inst.weight_bytes + s * (hit.sum() + len(pro) + (len(dem) if excl else 0) + int(new))
        t_max = hbm / inst.tiers[0].bandwidth
        fetched = np.zeros(K, dtype=np.int64)
        written = np.zeros(K, dtype=np.int64)
        for k in range(1, K):
            fetched[k] = np.count_nonzero(~hit & (homes[ids] == k)) + np.count_nonzero(
                ~in_r & (homes[pro] == k)
            )
            written[k] = (np.count_nonzero(homes[dem] == k) if excl else 0) + int(
                homes[exists] == k and not (excl and new)
            )
            t_max = max(t_max, s * (fetched[k] + written[k]) / inst.tiers[k].bandwidth)
        # a shared link carries its tiers' transfers, once each way
        link_in = np.bincount(inst.tier_link, fetched[1:], len(inst.links))
        link_out = np.bincount(inst.tier_link, written[1:], len(inst.links))
        for g, link in enumerate(inst.links):
            t_max = max(t_max, s * link_in[g] / link.link_in, s * link_out[g] / link.link_out)
        times[t] = t_max
        resident[dem] = False
        resident[pro] = True
        resident[exists] = bool(new)
        used = int(resident.sum())
        if used > inst.hbm_units:
            violations.append(
                f"step {t}: HBM holds {used} units after the moves, capacity {inst.hbm_units}"
            )
    return Verdict(float(times.sum()), tuple(violations), times)
