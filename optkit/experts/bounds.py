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


def bounds(inst: ExpertInstance, method: str = "auto", loads: int | None = None) -> list[Bound]:
    """``compute`` (Σ c + kτ) and ``loads`` (M*·τ + the last step's compute); ``loads``:
    M* when the caller has replayed Belady already (it is not replayed twice)."""
    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}; expected auto or cheap")
    comp = inst.step_compute()
    tau = inst.load_time
    out = [Bound(float(comp.sum()) + inst.top_k * tau, "compute")]
    m = min_loads(inst) if loads is None else loads
    out.append(Bound(m * tau + float(comp[-1]), "loads"))
    return out
