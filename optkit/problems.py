"""The registry: every problem registered once, with one face.

The CLI, :mod:`optkit.batch`, :mod:`optkit.io` and :mod:`optkit.plot` reach a
problem only through :func:`get` / :func:`of`. A problem package provides a
:class:`Problem` subclass (its ``face.py``) and one line in :data:`REGISTRY`;
the contract tests (``tests/test_contract.py``) then run over it.

Errors: a method, policy or back-end the problem does not offer, or a model above a
size limit, raises :class:`Refused` (exit 2 in the CLI: a refusal of input, not a
bug). Messages name the option and what is accepted, never a CLI flag.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from optkit.io import FieldError, Refused
from optkit.result import Bound, Result, Verdict, _num, best_bound
from optkit.solvers import SolverOptions

#: problem name (the ``"problem"`` value in files) -> "module:attribute" of its face.
REGISTRY: dict[str, str] = {
    "makespan": "optkit.packing.face:MAKESPAN",
    "binpacking": "optkit.packing.face:BINPACKING",
    "kv_placement": "optkit.kvcache.face:KV_PLACEMENT",
    "serving": "optkit.serving.face:SERVING",
    "expert_cache": "optkit.experts.face:EXPERT_CACHE",
    "realtime": "optkit.realtime.face:REALTIME",
}


@dataclass(frozen=True)
class SimReport:
    """``simulate``'s answer: a policy's objective graded against a bound
    (the ``optkit simulate --json`` contract), and the raw replay for plots."""

    problem: str
    policy: str
    objective: float
    bound: Bound
    metrics: dict[str, float]
    runtime_s: float
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def ratio_to_bound(self) -> float:
        b = self.bound.value
        if self.objective == b:
            return 1.0  # also 0 / 0: the policy meets the bound
        return self.objective / b if b else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "policy": self.policy,
            "objective": _num(self.objective),
            "bound": _num(self.bound.value),
            "bound_kind": self.bound.kind,
            "ratio_to_bound": _num(self.ratio_to_bound),
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "runtime_s": round(self.runtime_s, 6),
        }


class Problem(ABC):
    """One problem's face. Subclasses set the class attributes (``plan_type`` among
    them) and implement the abstract methods; an optional room (simulate, export, plot,
    text formats) refuses by default with a message saying the problem lacks it."""

    #: the problem's plan class: ``plan_type.from_json(data)`` parses a saved plan
    plan_type: Any = None

    def __init__(self) -> None:
        if self.plan_type is None or not hasattr(self.plan_type, "from_json"):
            raise TypeError(f"{type(self).__name__}: plan_type with a from_json is required")

    name: str = ""
    sense: str = "min"
    #: solve methods; the first is the default
    methods: tuple[str, ...] = ("auto",)
    bound_methods: tuple[str, ...] = ("auto",)
    #: online policies ``simulate`` replays (empty: the problem is not online)
    policies: tuple[str, ...] = ()
    #: exact models ``export`` writes
    export_methods: tuple[str, ...] = ()
    #: back-ends ``solve`` accepts (empty: none to choose)
    backends: tuple[str, ...] = ()
    #: unit of the objective, for tables
    unit: str = ""
    #: the top-level keys of the problem's JSON instances (besides io.COMMON_KEYS)
    keys: tuple[str, ...] = ()
    #: text formats ``read_text`` reads besides JSON (the first is the default)
    text_formats: tuple[str, ...] = ()

    # --- instances -------------------------------------------------------------
    @abstractmethod
    def instance_class(self) -> Any:
        """The instance class, with ``from_dict``."""

    def from_dict(self, data: dict[str, Any], base: Path | None = None) -> Any:
        return self.instance_class().from_dict(data)

    def sniff(self, text: str) -> bool:
        """True when ``text`` (not JSON) is in this problem's text format."""
        return False

    def read_text(self, fmt: str, text: str, name: str) -> Any:
        raise Refused(f"{self.name} has no text format {fmt!r}")

    # --- the face ----------------------------------------------------------------
    def unsupported(self, inst: Any, method: str) -> str:
        """Why ``method`` cannot solve ``inst`` ('' when it can)."""
        if method not in self.methods:
            return f"method {method!r} does not apply to {self.name}; expected one of " + (
                ", ".join(self.methods)
            )
        return ""

    def bound(
        self, inst: Any, method: str = "auto", options: SolverOptions | None = None
    ) -> list[Bound]:
        """Every bound ``method`` asks for (one not obtained says why), within the
        options' time limit (default 60 s)."""
        if method not in self.bound_methods:
            raise Refused(
                f"bound method {method!r} does not apply to {self.name}; expected one of "
                + ", ".join(self.bound_methods)
            )
        limit = (options or SolverOptions(60.0)).time_limit_s or 60.0
        return self.bounds_of(inst, method, limit)

    def solve(
        self,
        inst: Any,
        method: str = "auto",
        options: SolverOptions | None = None,
        backend: str | None = None,
    ) -> Result:
        """The best verified plan of ``method`` with the best proven bound; a method or
        back-end the problem does not offer is refused."""
        self.require_method(inst, method)
        return self.solve_with(inst, method, options, self.require_backend(backend, method))

    # --- what a face implements ----------------------------------------------------
    @abstractmethod
    def bounds_of(self, inst: Any, method: str, time_limit_s: float) -> list[Bound]:
        """Every bound of a ``method`` already validated by :meth:`bound`."""

    @abstractmethod
    def solve_with(
        self, inst: Any, method: str, options: SolverOptions | None, backend: str | None
    ) -> Result:
        """:meth:`solve` once the method and back-end are validated."""

    @abstractmethod
    def check(self, inst: Any, plan: Any) -> Verdict:
        """The independent verdict on ``plan``: objective from the instance, violations."""

    def plan_from_json(self, data: Any) -> Any:
        """The typed plan of ``Result.to_dict()["plan"]``; :class:`FieldError` if malformed."""
        return self.plan_type.from_json(data)

    def simulate(self, inst: Any, policy: str | None = None, **options: Any) -> SimReport:
        """Replay ``policy`` (None: the problem's default). ``options``: ``plot`` (record
        what ``plot_simulation`` draws), ``progress`` (called with the steps done, up to
        :meth:`sim_length`), and the problem's own (serving: assignment, order,
        token_budget); an option the problem does not take is refused."""
        raise Refused(f"{self.name} has no online policies to simulate")

    def sim_length(self, inst: Any) -> int:
        """Steps a simulation reports progress over (0: no progress bar)."""
        return 0

    def export(self, inst: Any, method: str, fmt: str, path: Path, **options: Any) -> str:
        """Write the exact model as LP/MPS; returns a note for the user."""
        raise Refused(f"{self.name} has no exact model to export")

    def plot(self, inst: Any, result: Result, path: Path) -> bool:
        """Draw a solved plan (False: nothing to draw for this problem)."""
        return False

    def plot_simulation(self, inst: Any, report: SimReport, path: Path) -> bool:
        return False

    # --- shared checks -------------------------------------------------------------
    def backend_for(self, method: str, backend: str | None) -> str:
        """Why ``backend`` cannot run ``method`` ('' when it can)."""
        return ""

    def require_backend(self, backend: str | None, method: str = "auto") -> str | None:
        why = self.backend_for(method, backend) if backend is not None else ""
        if why:
            raise Refused(why)
        if backend is not None and backend not in self.backends:
            if not self.backends:
                raise Refused(f"{self.name} has no solver back-end to choose (got {backend!r})")
            raise Refused(
                f"solver {backend!r} does not apply to {self.name}; expected one of "
                + ", ".join(self.backends)
            )
        return backend

    def require_method(self, inst: Any, method: str) -> None:
        why = self.unsupported(inst, method)
        if why:
            raise Refused(why)

    def require_policy(self, policy: str) -> None:
        if policy not in self.policies:
            raise Refused(
                f"policy {policy!r} does not apply to {self.name}; expected one of "
                + ", ".join(self.policies)
            )


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(name: str) -> Problem:
    """The registered problem ``name``; :class:`FieldError` on an unknown one."""
    if name not in REGISTRY:
        raise FieldError("problem", "one of " + ", ".join(sorted(REGISTRY)), name)
    module, _, attr = REGISTRY[name].partition(":")
    face: Problem = getattr(import_module(module), attr)
    return face


def of(inst: Any) -> Problem:
    """The problem of an instance object."""
    return get(inst.problem)


# --- rows the CLI prints (JSON Lines and tables) -----------------------------------


def solve_row(path: str, inst: Any, res: Result, plan: bool = True) -> dict[str, Any]:
    """The ``optkit solve --json`` contract (DESIGN.md) for one instance."""
    row = {"instance": str(path), "name": inst.name, "problem": inst.problem, **res.to_dict()}
    if not plan:
        row.pop("plan")
    return row


def bound_row(path: str, inst: Any, bounds: Sequence[Bound], runtime_s: float) -> dict[str, Any]:
    """The ``optkit bound --json`` contract: the best bound and every one asked for
    (a bound not obtained says why under ``not_obtained``; one obtained with a caveat,
    e.g. a pass stopped at the time limit, says it under ``notes``)."""
    prob = of(inst)
    best = best_bound(bounds, prob.sense)
    return {
        "instance": str(path),
        "name": inst.name,
        "problem": inst.problem,
        "bound": _num(best.value),
        "bound_kind": best.kind,
        "bounds": {b.kind: _num(b.value) for b in bounds if b.obtained},
        "not_obtained": {b.kind: f"{b.status}: {b.reason}" for b in bounds if not b.obtained},
        "notes": {b.kind: b.reason for b in bounds if b.obtained and b.reason},
        "runtime_s": round(runtime_s, 6),
    }


def check_row(path: str, inst: Any, plan_path: str, verdict: Verdict) -> dict[str, Any]:
    return {
        "instance": str(path),
        "problem": inst.problem,
        "plan": str(plan_path),
        "valid": verdict.valid,
        "objective": _num(verdict.objective) if verdict.valid else None,
        "violations": list(verdict.violations),
    }


def check_claim(verdict: Verdict, claimed: Any, sense: str = "min") -> Verdict:
    """A result file's ``objective`` must be what its plan achieves: a mismatch beyond
    1e-9 (relative) is a violation, so a tampered duration or assignment is caught even
    when the tampered plan is still feasible."""
    if not verdict.valid or claimed is None or isinstance(claimed, str):
        return verdict
    obj = verdict.objective
    if abs(obj - float(claimed)) > 1e-9 * max(abs(obj), abs(float(claimed))):
        msg = f"the plan's objective is {obj:.10g}, the file claims {float(claimed):.10g}"
        return Verdict(obj, (*verdict.violations, msg), verdict.details)
    return verdict


def timed_bounds(
    prob: Problem, inst: Any, method: str, options: SolverOptions
) -> tuple[list[Bound], float]:
    t0 = time.perf_counter()
    bs = prob.bound(inst, method, options)
    return bs, time.perf_counter() - t0
