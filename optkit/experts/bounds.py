"""Lower bounds on the total time T (formulations/expert_cache.md, "Bounds")."""

from __future__ import annotations

from optkit.experts.instance import ExpertInstance
from optkit.experts.policies import Belady
from optkit.experts.simulate import Replay, replay
from optkit.result import Bound

BOUND_METHODS = ("auto", "cheap", "lp")


def min_loads(inst: ExpertInstance) -> int:
    """M*: the loads of Belady's MIN with C slots — the fewest any plan makes."""
    return replay(inst, Belady()).plan.loads


def bounds(
    inst: ExpertInstance,
    method: str = "auto",
    belady: Replay | None = None,
    time_limit_s: float = 60.0,
) -> list[Bound]:
    """``compute`` (Σ c + |R_0|·τ) and ``loads`` (M*·τ + the last step's compute);
    ``belady``: Belady's replay when the caller has it (it is not replayed twice). ``lp``
    adds the timed MILP's LP relaxation (tiny instances; formulations/expert_cache.md);
    ``auto`` adds it when the instance is within the MILP's size."""
    from optkit.experts.milp import MAX_VARIABLES, lp_bound, size
    from optkit.solvers import SolverOptions

    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}; expected auto, cheap or lp")
    comp = inst.step_compute()
    tau = inst.load_time
    out = [Bound(float(comp.sum()) + len(inst.needed()[0]) * tau, "compute")]
    opt = belady or replay(inst, Belady())
    out.append(Bound(opt.plan.loads * tau + float(comp[-1]), "loads"))
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
        opts = SolverOptions(time_limit_s=time_limit_s)
        lp = lp_bound(inst, opt.verdict.objective, opt.plan.loads, opts)
        out.append(
            Bound(lp, "lp")
            if lp is not None
            else Bound.missing("lp", "time_limit", f"the LP did not finish in {time_limit_s:g} s")
        )
    return out
