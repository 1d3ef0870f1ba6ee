"""Result conventions shared by every problem package.

A :class:`Result` never claims more than was proven: ``OPTIMAL`` is set only by
:func:`finalize`, when a plan that passed the problem's ``check()`` has an
objective equal to a proven bound within tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


class Status(str, Enum):
    """Outcome of a solve."""

    OPTIMAL = "OPTIMAL"  # verified plan whose objective meets a proven bound
    FEASIBLE = "FEASIBLE"  # verified plan, optimality not proven
    INFEASIBLE = "INFEASIBLE"  # proven that no plan exists
    UNBOUNDED = "UNBOUNDED"
    NO_SOLUTION = "NO_SOLUTION"  # stopped without a plan (e.g. time limit)
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


#: Relative tolerance under which an objective and a bound count as equal.
OPT_TOL = 1e-6


def gap(objective: float | None, bound: float | None) -> float:
    """``|objective - bound| / max(|objective|, 1e-9)``; ``inf`` without a solution or bound."""
    if objective is None or bound is None:
        return math.inf
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    return abs(objective - bound) / max(abs(objective), 1e-9)


def meets(objective: float, bound: float, sense: str = "min") -> bool:
    """True when ``objective`` equals ``bound`` within :data:`OPT_TOL` (relative)."""
    tol = OPT_TOL * max(1.0, abs(objective))
    if sense == "min":
        return objective <= bound + tol
    return objective >= bound - tol


@dataclass(frozen=True)
class Result:
    """What a solver returns: the best verified plan, the best proven bound, and the gap.

    ``bound`` is a lower bound for minimisation problems and an upper bound for
    maximisation ones. ``plan`` is problem-specific (for ``packing``: a tuple
    with the machine / bin index of each job / item).
    """

    status: Status
    objective: float | None
    bound: float | None
    runtime_s: float
    solver: str
    method: str
    plan: tuple[int, ...] | None = None
    verified: bool = False
    sense: str = "min"
    reason: str = ""
    log: tuple[str, ...] = field(default_factory=tuple)

    @property
    def gap(self) -> float:
        if self.status is Status.INFEASIBLE:
            return 0.0 if self.bound is not None and math.isinf(self.bound) else math.inf
        return gap(self.objective, self.bound)

    def replace(self, **changes: Any) -> Result:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``optkit solve --json`` (without ``instance``/``problem``)."""
        return {
            "method": self.method,
            "solver": self.solver,
            "status": self.status.value,
            "objective": _num(self.objective),
            "bound": _num(self.bound),
            "gap": _num(self.gap),
            "runtime_s": round(self.runtime_s, 6),
            "verified": self.verified,
            "reason": self.reason,
            "plan": list(self.plan) if self.plan is not None else None,
        }


def _num(x: float | None) -> float | str | None:
    """JSON has no inf/nan: write them as strings so every line stays valid JSON."""
    if x is None:
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if math.isnan(x):
        return "nan"
    return float(x)


def finalize(
    *,
    objective: float | None,
    bound: float | None,
    plan: tuple[int, ...] | None,
    violations: list[str],
    runtime_s: float,
    solver: str,
    method: str,
    sense: str = "min",
    infeasible_reason: str = "",
    log: tuple[str, ...] = (),
) -> Result:
    """Build a :class:`Result` from a checked plan and a proven bound.

    ``objective`` must be the verifier's recomputed objective. A plan with
    violations is dropped (status ERROR with the violations as reason).
    """

    def failed(status: Status, bound: float | None, reason: str) -> Result:
        return Result(
            status, None, bound, runtime_s, solver, method, None, False, sense, reason, log
        )

    if infeasible_reason:
        return failed(
            Status.INFEASIBLE, math.inf if sense == "min" else -math.inf, infeasible_reason
        )
    if plan is None:
        return failed(Status.NO_SOLUTION, bound, "no plan found")
    if violations:
        return failed(Status.ERROR, bound, "plan failed check(): " + "; ".join(violations[:5]))
    assert objective is not None
    if bound is not None:
        # A proven bound can never be better than a verified objective: beyond
        # numerical noise that is a bug, and we refuse to hide it.
        if not meets(objective, bound, "max" if sense == "min" else "min"):
            raise RuntimeError(
                f"internal error: bound {bound!r} is better than verified objective {objective!r}"
            )
        bound = min(bound, objective) if sense == "min" else max(bound, objective)
    status = (
        Status.OPTIMAL if bound is not None and meets(objective, bound, sense) else Status.FEASIBLE
    )
    return Result(status, objective, bound, runtime_s, solver, method, plan, True, sense, "", log)
