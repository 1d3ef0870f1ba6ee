"""KV-cache placement across memory tiers (formulations/kv_placement.md)."""

from optkit.kvcache.bounds import BOUND_METHODS, bounds, per_step, unlimited_hbm
from optkit.kvcache.check import check
from optkit.kvcache.driver import (
    METHODS,
    POLICY_METHODS,
    solve,
)
from optkit.kvcache.exact import MILP_MAX_VARIABLES, lp_bound, milp
from optkit.kvcache.face import KV_PLACEMENT
from optkit.kvcache.instance import KvInstance, Tier, make_instance
from optkit.kvcache.patterns import Pattern, PatternTrace
from optkit.kvcache.plan import KvPlan
from optkit.kvcache.policies import (
    POLICIES,
    Balanced,
    HeavyHitter,
    Lru,
    Oracle,
    Static,
    anneal,
    make,
)
from optkit.kvcache.simulate import Moves, Policy, PolicyError, Replay, StepView, metrics, replay
from optkit.kvcache.trace import CsrTrace, read_npz, write_npz
from optkit.solvers import TooLarge

__all__ = [
    "BOUND_METHODS",
    "KV_PLACEMENT",
    "METHODS",
    "MILP_MAX_VARIABLES",
    "POLICIES",
    "POLICY_METHODS",
    "Balanced",
    "CsrTrace",
    "HeavyHitter",
    "KvInstance",
    "KvPlan",
    "Lru",
    "Moves",
    "Oracle",
    "Pattern",
    "PatternTrace",
    "Policy",
    "PolicyError",
    "Replay",
    "Static",
    "StepView",
    "Tier",
    "TooLarge",
    "anneal",
    "bounds",
    "check",
    "lp_bound",
    "make",
    "make_instance",
    "metrics",
    "milp",
    "per_step",
    "read_npz",
    "replay",
    "solve",
    "unlimited_hbm",
    "write_npz",
]
