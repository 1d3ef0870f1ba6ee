"""MoE expert caching and prefetching between host and GPU memory
(formulations/expert_cache.md)."""

from optkit.experts.bounds import BOUND_METHODS, bounds, min_loads
from optkit.experts.check import check
from optkit.experts.face import EXPERT_CACHE
from optkit.experts.instance import ExpertInstance
from optkit.experts.plan import ExpertPlan
from optkit.experts.policies import POLICIES, CacheState, make
from optkit.experts.simulate import Replay, replay
from optkit.experts.trace import problems_in, read_routing

__all__ = [
    "BOUND_METHODS",
    "EXPERT_CACHE",
    "POLICIES",
    "CacheState",
    "ExpertInstance",
    "ExpertPlan",
    "Replay",
    "bounds",
    "check",
    "make",
    "min_loads",
    "problems_in",
    "read_routing",
    "replay",
]
