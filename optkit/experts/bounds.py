"""Lower bounds on the total time T (formulations/expert_cache.md, "Bounds")."""

from __future__ import annotations

from optkit.experts.instance import ExpertInstance
from optkit.experts.policies import Belady
from optkit.experts.simulate import replay
from optkit.result import Bound

BOUND_METHODS = ("auto", "cheap", "lp")


def min_loads(inst: ExpertInstance) -> int:
    """M*: the loads of Belady's MIN with C slots — the fewest any plan makes."""
    return replay(inst, Belady()).plan.loads


def bounds(
    inst: ExpertInstance,
    method: str = "auto",
    loads: int | None = None,
    time_limit_s: float = 60.0,
) -> list[Bound]:
    """``compute`` (Σ c + |R_0|·τ) and ``loads`` (M*·τ + the last step's compute); ``loads``:
    M* when the caller has replayed Belady already (it is not replayed twice). ``lp``
    adds the timed MILP's LP relaxation (tiny instances; formulations/expert_cache.md);
    ``auto`` adds it when the instance is within the MILP's size."""
    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}; expected auto, cheap or lp")
    comp = inst.step_compute()
    tau = inst.load_time
    first = len(inst.needed()[0]) if inst.batch > 1 else inst.top_k
    out = [Bound(float(comp.sum()) + first * tau, "compute")]
    m = min_loads(inst) if loads is None else loads
    out.append(Bound(m * tau + float(comp[-1]), "loads"))
    from optkit.experts.milp import MAX_VARIABLES, lp_bound, size
    from optkit.solvers import SolverOptions

    small = size(inst) <= MAX_VARIABLES
    if method == "lp" and not small:
        out.append(
            Bound.missing(
                "lp",
                "too_large",
                f"the timed MILP's LP would have {size(inst):,} variables (limit "
                f"{MAX_VARIABLES:,})",
            )
        )
    elif method == "lp" or (method == "auto" and small):
        upper = replay(inst, Belady()).verdict.objective
        lp = lp_bound(inst, upper, SolverOptions(time_limit_s=time_limit_s))
        out.append(
            Bound(lp, "lp")
            if lp is not None
            else Bound.missing("lp", "time_limit", f"the LP did not finish in {time_limit_s:g} s")
        )
    return out
