"""Result conventions shared by every problem package.

A :class:`Result` never claims more than was proven: ``OPTIMAL`` is set only by
:func:`finalize`, when a plan that passed the problem's ``check()`` has an
objective equal to a proven bound within tolerance.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
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


#: Relative tolerance under which an objective and a bound count as equal. Every
#: comparison of an objective with a bound goes through :func:`tolerance`, so scaling
#: an instance's units (seconds to microseconds, bytes to gigabytes) scales the
#: tolerance with it and changes no status.
OPT_TOL = 1e-6


class BoundConflict(UserWarning):
    """A "proven" bound lay beyond a verified objective: a solver's tolerances failed.

    :func:`finalize` drops such a bound and warns; the test suite turns this warning
    into an error, so it is counted as a bug wherever it happens.
    """


def gap(objective: float | None, bound: float | None) -> float:
    """``|objective - bound| / max(|objective|, 1e-9)``; ``inf`` without a solution or bound."""
    if objective is None or bound is None:
        return math.inf
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    return abs(objective - bound) / max(abs(objective), 1e-9)


def tolerance(objective: float, bound: float, atol: float = 0.0) -> float:
    """How far ``objective`` and ``bound`` may differ and still count as equal:
    :data:`OPT_TOL` relative to their magnitude, plus ``atol``, an absolute floor that a
    problem derives from its own instance (a fraction of the smallest change of the
    objective), never a constant in some unit."""
    return OPT_TOL * max(abs(objective), abs(bound)) + atol


def meets(objective: float, bound: float, sense: str = "min", atol: float = 0.0) -> bool:
    """True when ``objective`` equals ``bound`` within :func:`tolerance`."""
    tol = tolerance(objective, bound, atol)
    if sense == "min":
        return objective <= bound + tol
    return objective >= bound - tol


@dataclass(frozen=True)
class Bound:
    """A bound on the optimum and the rule that produced it.

    ``value`` is a lower bound for minimisation problems, an upper bound for
    maximisation ones. A bound that was asked for and not obtained is still returned,
    with ``value`` NaN (every comparison with it is false: it can bound nothing),
    ``status`` saying why (``time_limit``, ``too_large``, ``not_applicable``,
    ``failed``) and ``reason`` in words: nothing asked for is dropped silently.
    """

    value: float
    kind: str
    status: str = "ok"
    reason: str = ""

    @classmethod
    def missing(cls, kind: str, status: str, reason: str) -> Bound:
        return cls(math.nan, kind, status, reason)

    @property
    def obtained(self) -> bool:
        return self.status == "ok" and not math.isnan(self.value)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "value": _num(self.value)}
        if not self.obtained:
            d.update(status=self.status, reason=self.reason)
        elif self.reason:  # obtained, with a caveat (e.g. weaker than its name says)
            d.update(reason=self.reason)
        return d


def best_bound(bounds: Sequence[Bound], sense: str = "min") -> Bound:
    """The strongest obtained bound (on a tie the later: stronger by construction);
    a ``Bound(None, "none")`` when none was obtained."""
    got = [b for b in bounds if b.obtained]
    if not got:
        return Bound.missing("none", "failed", "no bound obtained")
    key = (lambda b: b.value) if sense == "min" else (lambda b: -b.value)
    return max(reversed(got), key=key)


@dataclass(frozen=True)
class Verdict:
    """What a problem's independent ``check(inst, plan)`` finds: the objective it
    recomputed from the instance alone, and every violation (empty: the plan is valid)."""

    objective: float
    violations: tuple[str, ...] = ()
    details: Any = None  # problem-specific extras (per-step times, finish times)

    @property
    def valid(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class Result:
    """What a solver returns: the best verified plan, the best proven bound, and the gap.

    ``bound`` is a lower bound for minimisation problems and an upper bound for
    maximisation ones. ``plan`` is typed for the problem and serialisable through
    its registry entry (``optkit.problems``): packing's machine / bin index per job,
    KV placement's moves, serving's whole schedule.
    """

    status: Status
    objective: float | None
    bound: float | None
    runtime_s: float
    solver: str
    method: str
    plan: Any = None
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
            "plan": plan_json(self.plan),
        }


def plan_json(plan: Any) -> Any:
    """A plan as JSON: its own ``to_json()``, or a list of ints (packing)."""
    if plan is None:
        return None
    if hasattr(plan, "to_json"):
        return plan.to_json()
    return [int(x) for x in plan]


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
    plan: Any,
    violations: Sequence[str],
    runtime_s: float,
    solver: str,
    method: str,
    sense: str = "min",
    infeasible_reason: str = "",
    log: tuple[str, ...] = (),
    more_bounds: Sequence[tuple[str, float]] = (),
    atol: float = 0.0,
) -> Result:
    """Build a :class:`Result` from a checked plan and proven bounds.

    ``objective`` must be the verifier's recomputed objective. A plan with
    violations is dropped (status ERROR with the violations as reason).
    ``bound`` and ``more_bounds`` (``(source, value)`` pairs, e.g. a MILP back-end's
    dual bound) are the proven bounds; the best one is reported. A bound beyond the
    verified objective (more than :func:`tolerance`) is no bound: it is dropped, the
    log says why, a :class:`BoundConflict` warning is raised, and the status is at
    most FEASIBLE. ``atol`` is the problem's absolute floor for :func:`tolerance`.
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
    best: float | None = None
    conflict = False
    other = "max" if sense == "min" else "min"
    candidates = ([("bound", bound)] if bound is not None else []) + list(more_bounds)
    for source, value in candidates:
        if not meets(objective, value, other, atol):
            # A proven bound can never be better than a verified objective: beyond the
            # tolerance a solver's numerics failed. Keep the plan, never the claim.
            conflict = True
            msg = (
                f"{source} {value!r} dropped: better than the verified objective "
                f"{objective!r} (a solver tolerance failure)"
            )
            log = (*log, msg)
            warnings.warn(msg, BoundConflict, stacklevel=2)
            continue
        value = min(value, objective) if sense == "min" else max(value, objective)
        if best is None or (value > best if sense == "min" else value < best):
            best = value
    optimal = best is not None and not conflict and meets(objective, best, sense, atol)
    status = Status.OPTIMAL if optimal else Status.FEASIBLE
    return Result(status, objective, best, runtime_s, solver, method, plan, True, sense, "", log)
