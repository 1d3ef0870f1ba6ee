"""The registry face of real-time SoC scheduling (``optkit.problems``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from optkit.io import Refused
from optkit.problems import Problem, SimReport
from optkit.realtime.bounds import BOUND_METHODS, bounds, ttft_bound
from optkit.realtime.check import check, completions
from optkit.realtime.exact import MAX_INTERVALS, intervals, solve_cpsat
from optkit.realtime.instance import RealtimeInstance
from optkit.realtime.plan import RtPlan
from optkit.realtime.policies import POLICIES, PlanGuided, Table, homes_of, make
from optkit.realtime.simulate import Replay, replay
from optkit.result import Bound, Result, Verdict, best_bound, finalize
from optkit.solvers import Deadline, SolverOptions, TooLarge

#: ``auto`` replays the policies in this order while time is left, then runs CP-SAT
AUTO_ORDER = ("plan", "edf", "lsf", "heft", "static", "fcfs", "rr")


def _better(a: Replay, b: Replay) -> bool:
    """Fewer weighted misses, then the earlier median first token."""
    ka = (a.verdict.objective, a.verdict.details.get("ttft_p50_s", 0.0))
    kb = (b.verdict.objective, b.verdict.details.get("ttft_p50_s", 0.0))
    return ka < kb


class Realtime(Problem):
    name = "realtime"
    methods = ("auto", "cpsat", *POLICIES)
    bound_methods = BOUND_METHODS
    policies = tuple(POLICIES)
    unit = "misses"
    export_methods = ("lp",)
    plan_type = RtPlan
    keys = (
        "horizon",
        "seed",
        "interference",
        "shared_bandwidth",
        "backends",
        "networks",
        "tasks",
        "llm",
        "times",
    )

    def instance_class(self) -> Any:
        return RealtimeInstance

    def bounds_of(self, inst: Any, method: str, time_limit_s: float) -> list[Bound]:
        return bounds(inst, method, time_limit_s)

    def unsupported(self, inst: Any, method: str) -> str:
        why = super().unsupported(inst, method)
        if not why and method == "cpsat" and intervals(inst) > MAX_INTERVALS:
            why = (
                f"the CP-SAT model would have {intervals(inst):,} optional intervals, more "
                f"than the limit of {MAX_INTERVALS:,} (shorten the horizon, or use auto)"
            )
        return why

    def solve_with(
        self, inst: Any, method: str, options: SolverOptions | None, backend: str | None
    ) -> Result:
        opts = options or SolverOptions()
        clock = opts.deadline()
        log: list[str] = []
        best: Replay | None = None
        names = AUTO_ORDER if method in ("auto", "cpsat") else (method,)
        if method == "cpsat":
            names = ("plan",)  # the hint
        for name in names:
            if best is not None and clock.expired():
                log.append(f"{name}: skipped (time limit)")
                continue
            rep: Replay | None = replay(inst, make(name))
            assert rep is not None
            log.append(f"{name}: {rep.verdict.objective:g} misses")
            if rep.verdict.valid and (best is None or _better(rep, best)):
                best = rep
        bs = bounds(inst, "cheap")
        lp_share = 0.3 if method in ("auto", "cpsat") else 0.9
        if not clock.expired():
            bs += bounds(inst, "lp", max(0.01, clock.part(lp_share) or 60.0))[1:]
        bound = best_bound(bs)
        log += [
            f"bound {b.kind} = {b.value:g}" if b.obtained else f"{b.kind}: {b.reason}" for b in bs
        ]
        solver = "replay"
        more: list[tuple[str, float]] = []
        closed = best is not None and bound.obtained and best.verdict.objective <= bound.value
        if method in ("auto", "cpsat") and not closed and intervals(inst) <= MAX_INTERVALS:
            lower = bound.value if bound.obtained else 0.0
            rep, cp_bound = self._cpsat(inst, opts, clock, best, log, lower)
            if cp_bound is not None:
                more.append(("cpsat bound model", cp_bound))
            if rep is not None:
                solver = "cp-sat"
                if best is None or _better(rep, best):
                    best = rep
        return finalize(
            objective=None if best is None else best.verdict.objective,
            bound=bound.value if bound.obtained else None,
            plan=None if best is None else best.plan,
            violations=() if best is None else best.verdict.violations,
            runtime_s=clock.elapsed(),
            solver=solver,
            method=f"{method}:{best.policy}" if method == "auto" and best else method,
            log=tuple(log),
            more_bounds=more,
        )

    def _cpsat(
        self,
        inst: Any,
        opts: SolverOptions,
        clock: Deadline,
        best: Replay | None,
        log: list[str],
        lower: float = 0.0,
    ) -> tuple[Replay | None, float | None]:
        """The plan model (its schedule, replayed by ``table`` under interference), then
        the bound model with what is left when the plan is not proven."""
        left = clock.left()
        if left is not None and left < 0.05:
            log.append("cp-sat: skipped (time limit)")
            return None, None
        hint = None if best is None else (best.plan.backend, best.plan.start)
        try:
            ans = solve_cpsat(
                inst, clock.slice(0.6).options(opts), "plan", hint, ttft=True, lower=lower
            )
        except TooLarge as e:
            log.append(f"cp-sat: {e}")
            return None, None
        log.append(f"cp-sat plan model: {ans.status} {ans.objective}")
        rep = None
        if ans.backend is not None and ans.start is not None:
            if inst.interference:
                # the plan assumed no interference: replay its order, and the plan policy
                # with the CP-SAT plan's backend per task as homes; keep the better
                table = replay(inst, Table(ans.backend, ans.start))
                guided = replay(inst, PlanGuided(homes_of(inst, ans.backend)))
                log.append(
                    f"cp-sat replayed: order {table.verdict.objective:g}, plan policy with "
                    f"its homes {guided.verdict.objective:g} misses"
                )
                rep = min((table, guided), key=lambda r: r.verdict.objective)
                rep = Replay("cpsat", rep.plan, rep.verdict, rep.decisions)
            else:
                plan = RtPlan(ans.backend, ans.start)
                rep = Replay("cpsat", plan, check(inst, plan), 0)
            log.append(f"cp-sat plan checked: {rep.verdict.objective:g} misses")
        cp_bound = None
        target = rep.verdict.objective if rep is not None and rep.verdict.valid else None
        if best is not None and best.verdict.valid:
            target = (
                best.verdict.objective if target is None else min(target, best.verdict.objective)
            )
        if not clock.expired() and (target is None or target > 0):
            low = solve_cpsat(inst, clock.options(opts), "bound")
            cp_bound = low.objective if low.status == "OPTIMAL" else low.bound
            log.append(f"cp-sat bound model: {low.status}, bound {cp_bound:g}")
        return rep, cp_bound

    def check(self, inst: Any, plan: Any) -> Verdict:
        return check(inst, plan)

    def export(self, inst: Any, method: str, fmt: str, path: Path, **options: Any) -> str:
        from optkit.realtime.bounds import export_lp

        return export_lp(inst, fmt, path)

    def simulate(self, inst: Any, policy: str | None = None, **options: Any) -> SimReport:
        policy = policy or "plan"
        self.require_policy(policy)
        other = set(options) - {"plot", "progress"}
        if other:
            raise Refused(f"realtime simulate takes no {', '.join(sorted(other))}")
        t0 = time.perf_counter()
        rep = replay(inst, make(policy), options.get("progress"))
        if not rep.verdict.valid:
            raise RuntimeError(
                f"policy {policy} broke its plan: " + "; ".join(rep.verdict.violations[:3])
            )
        m = {k: float(v) for k, v in rep.verdict.details.items()}
        m["ttft_lb_s"] = ttft_bound(inst)
        m["decisions"] = float(rep.decisions)
        b = best_bound(bounds(inst, "auto", 30.0))
        return SimReport(
            self.name, policy, rep.verdict.objective, b, m, time.perf_counter() - t0, rep
        )

    def sim_length(self, inst: Any) -> int:
        return int((inst.jobs.pred < 0).sum())

    def _gantt(self, inst: Any, plan: RtPlan, path: Path, title: str) -> None:
        from optkit import plot

        C = completions(inst, plan.backend, plan.start)
        plot.realtime_gantt(inst, plan.backend, plan.start, C, path, title)

    def plot(self, inst: Any, result: Result, path: Path) -> bool:
        if result.plan is None:
            return False
        self._gantt(
            inst, result.plan, path, f"{inst.name}: {result.method}, {result.objective:g} misses"
        )
        return True

    def plot_simulation(self, inst: Any, report: SimReport, path: Path) -> bool:
        title = (
            f"{inst.name}: {report.policy}, {report.objective:g} misses "
            f"(bound {report.bound.value:g})"
        )
        self._gantt(inst, report.raw.plan, path, title)
        return True


REALTIME = Realtime()
