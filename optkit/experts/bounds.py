"""Lower bounds on the total time T (formulations/expert_cache.md, "Bounds")."""

from __future__ import annotations

from optkit.experts.instance import ExpertInstance
from optkit.experts.policies import Belady
from optkit.experts.simulate import replay
from optkit.result import Bound

BOUND_METHODS = ("auto", "cheap")


def min_loads(inst: ExpertInstance) -> int:
    """M*: the loads of Belady's MIN with C slots — the fewest any plan makes."""
    return replay(inst, Belady()).plan.loads


def bounds(inst: ExpertInstance, method: str = "auto") -> list[Bound]:
    """``compute`` (Σ c + kτ) and ``loads`` (M*·τ + the last step's compute)."""
    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}; expected auto or cheap")
    comp = inst.step_compute()
    tau = inst.load_time
    out = [Bound(float(comp.sum()) + inst.top_k * tau, "compute")]
    out.append(Bound(min_loads(inst) * tau + float(comp[-1]), "loads"))
    return out
