"""The registry face of prefill/decode serving (``optkit.problems``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from optkit.io import Refused
from optkit.problems import Problem, SimReport
from optkit.result import Bound, Result, Verdict, best_bound
from optkit.serving import driver
from optkit.serving.bounds import BOUND_METHODS, bounds
from optkit.serving.check import check
from optkit.serving.instance import ServingInstance
from optkit.serving.policies import SCHEDULERS
from optkit.serving.schedule import Schedule
from optkit.solvers import MILP_BACKENDS, SolverOptions

ASSIGNMENTS = ("online", "plan")


class Serving(Problem):
    keys = (
        "clients",
        "max_batch",
        "kv_tokens",
        "iteration",
        "arrival",
        "prompt",
        "output",
        "request_ids",
    )
    name = "serving"
    methods = driver.METHODS
    bound_methods = BOUND_METHODS
    policies = tuple(SCHEDULERS)
    export_methods = ("milp",)
    backends = MILP_BACKENDS
    unit = "s"
    plan_type = Schedule

    def instance_class(self) -> Any:
        return ServingInstance

    def unsupported(self, inst: Any, method: str) -> str:
        from optkit.serving.mip import check_size
        from optkit.solvers import TooLarge

        why = super().unsupported(inst, method)
        if not why and method == "mip":
            try:
                check_size(inst)
            except TooLarge as e:
                return f"method 'mip': {e}"
        return why

    def bounds_of(self, inst: Any, method: str, time_limit_s: float) -> list[Bound]:
        return bounds(inst, method)

    def solve_with(
        self, inst: Any, method: str, options: SolverOptions | None, backend: str | None
    ) -> Result:
        return driver.solve(inst, method, options, backend or "highs")

    def check(self, inst: Any, plan: Any) -> Verdict:
        return check(inst, plan)

    def simulate(self, inst: Any, policy: str | None = None, **options: Any) -> SimReport:
        from optkit.serving.heuristics import packing_assignment
        from optkit.serving.simulate import simulate

        policy = policy or "hybrid"
        self.require_policy(policy)
        other = set(options) - {"plot", "progress", "assignment", "order", "token_budget"}
        if other:
            raise Refused(f"serving simulate takes no {', '.join(sorted(other))}")
        assignment = options.get("assignment") or "online"
        if assignment not in ASSIGNMENTS:
            raise Refused(f"assignment {assignment!r}: expected one of {', '.join(ASSIGNMENTS)}")
        kwargs = {k: options[k] for k in ("order", "token_budget") if options.get(k) is not None}
        t0 = time.perf_counter()
        assign = packing_assignment(inst)[0] if assignment == "plan" else None
        try:
            res = simulate(inst, policy, assign, record=True, **kwargs)
        except (ValueError, TypeError) as e:  # an order or budget the scheduler refuses
            raise Refused(f"policy {policy}: {e}") from None
        verdict = check(inst, res.schedule)
        if not verdict.valid:
            raise RuntimeError(
                "simulated schedule failed its check: " + "; ".join(verdict.violations[:3])
            )
        b = best_bound(bounds(inst, "cheap"))
        return SimReport(
            self.name,
            f"{policy} ({assignment} assignment)",
            verdict.objective,
            b,
            driver.metrics(inst, res),
            time.perf_counter() - t0,
            raw=res,
        )

    def export(self, inst: Any, method: str, fmt: str, path: Path, **options: Any) -> str:
        from optkit.serving.bounds import lower_bound
        from optkit.serving.mip import build, check_size
        from optkit.solvers import write_pulp

        if method != "milp":
            raise Refused(f"export method {method!r} does not apply to serving; expected milp")
        check_size(inst)
        lower = lower_bound(inst).value
        return write_pulp(build(inst, lower=lower, name=inst.name).prob, fmt, path)

    def plot(self, inst: Any, result: Result, path: Path) -> bool:
        if result.plan is None:
            return False
        from optkit import plot
        from optkit.serving.report import occupancy

        plot.serving_gantt(
            result.plan,
            path,
            title=f"{inst.name}: {result.method}",
            bound=result.bound,
            occupancy=occupancy(inst, result.plan),
            limits=(inst.max_batch, inst.kv_tokens),
        )
        return True

    def plot_simulation(self, inst: Any, report: SimReport, path: Path) -> bool:
        from optkit import plot
        from optkit.serving.report import occupancy

        title = f"{inst.name}: {report.policy}"
        schedule = report.raw.schedule
        plot.serving_gantt(
            schedule,
            path,
            title=title,
            bound=report.bound.value,
            occupancy=occupancy(inst, schedule),
            limits=(inst.max_batch, inst.kv_tokens),
        )
        return True


SERVING = Serving()
