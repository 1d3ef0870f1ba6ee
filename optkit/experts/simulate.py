"""Replay a policy over an instance: the policy decides, the checker times the plan.

The replay keeps only the cache state a policy sees (which units are held, their last
use and use counts); the total time, hit rate and stalls come from ``check`` (one
timing model, independent of every policy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optkit.experts.check import check
from optkit.experts.instance import ExpertInstance
from optkit.experts.plan import ExpertPlan
from optkit.experts.policies import CacheState, Policy
from optkit.result import Verdict


@dataclass(frozen=True)
class Replay:
    policy: str
    plan: ExpertPlan
    verdict: Verdict


def replay(inst: ExpertInstance, policy: Policy) -> Replay:
    """The policy's plan, and its verdict from ``check``. The replay keeps its own
    estimate of arrivals (the link in issue order) so a policy can tell units in
    flight, which it must not evict; ``check`` recomputes the timeline on its own."""
    U, tau = inst.units, inst.load_time
    state = CacheState(
        np.zeros(U, dtype=bool),
        np.full(U, -1, dtype=np.int64),
        np.zeros(U),
        inst.capacity,
        np.full(U, np.inf),
    )
    policy.reset(inst)
    steps = []
    link = 0.0
    comp = inst.step_compute()
    for n, r in enumerate(inst.needed()):
        state.step = n
        adds, evicts = policy.decide(n, r, state)
        adds, evicts = np.asarray(adds, dtype=np.int64), np.asarray(evicts, dtype=np.int64)
        state.held[evicts] = False
        state.arrive[evicts] = np.inf
        for u in adds.tolist():
            link = max(state.now, link) + tau
            state.arrive[u] = link
        state.held[adds] = True
        state.last_use[r] = n
        state.uses[r] += 1
        state.now = max(state.now, float(state.arrive[r].max())) + float(comp[n])
        steps.append((adds, evicts))
    plan = ExpertPlan.of(steps)
    return Replay(policy.name, plan, check(inst, plan))
