"""Replay a policy over an instance: the policy decides, the checker times the plan.

The replay keeps only the cache state a policy sees (which units are held, their last
use and use counts); the total time, hit rate and stalls come from ``check`` (one
timing model, independent of every policy). Built-in policies run inside the compiled
loop (``kernels.run_<policy>``); any other policy is called step by step from Python with the
same state update (``CacheState.apply``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optkit.experts.check import check
from optkit.experts.instance import ExpertInstance
from optkit.experts.plan import ExpertPlan
from optkit.experts.policies import CacheState, KernelPolicy, Policy
from optkit.result import Verdict


@dataclass(frozen=True)
class Replay:
    policy: str
    plan: ExpertPlan
    verdict: Verdict


def plan_of(inst: ExpertInstance, policy: Policy) -> ExpertPlan:
    """The policy's plan. The replay keeps its own estimate of arrivals (the link in
    issue order) so a policy can tell units in flight, which it must not evict;
    ``check`` recomputes the timeline on its own."""
    flat, off = inst.needed_csr()
    comp = inst.step_compute()
    tau = inst.load_time
    state = CacheState(inst.units, inst.capacity)
    policy.reset(inst)
    if isinstance(policy, KernelPolicy):
        lf, lo, ef, eo = policy.runner(policy.p, flat, off, comp, tau, inst.capacity, state.c)
        return ExpertPlan(lf, lo, ef, eo)
    steps = []
    for n in range(inst.steps):
        r = flat[off[n] : off[n + 1]]
        state.step = n
        adds, evicts = policy.decide(n, r, state)
        adds, evicts = np.asarray(adds, dtype=np.int64), np.asarray(evicts, dtype=np.int64)
        for a in (adds, evicts):
            if a.ndim != 1 or (len(a) and (a.min() < 0 or a.max() >= inst.units)):
                raise ValueError(
                    f"policy {policy.name!r} at step {n}: loads and evictions must be unit "
                    f"ids in 0..{inst.units - 1}, got {a.tolist()}"
                )
        state.apply(n, r, adds, evicts, tau, float(comp[n]))
        steps.append((adds, evicts))
    return ExpertPlan.of(steps)


def replay(inst: ExpertInstance, policy: Policy) -> Replay:
    """The policy's plan, and its verdict from ``check``."""
    plan = plan_of(inst, policy)
    return Replay(policy.name, plan, check(inst, plan))
