"""The registry face of MoE expert caching (``optkit.problems``)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from optkit.experts.bounds import BOUND_METHODS, bounds
from optkit.experts.check import check
from optkit.experts.instance import ExpertInstance
from optkit.experts.plan import ExpertPlan
from optkit.experts.policies import POLICIES, make
from optkit.experts.simulate import Replay, replay
from optkit.io import Refused
from optkit.problems import Problem, SimReport
from optkit.result import Bound, Result, Verdict, best_bound, finalize
from optkit.solvers import SolverOptions

#: ``auto`` tries the policies in this order while time is left
AUTO_ORDER = ("belady", "forecast", "predict", "lru", "lfu", "pin")


class ExpertCache(Problem):
    name = "expert_cache"
    methods = ("auto", "milp", *POLICIES)
    bound_methods = BOUND_METHODS
    policies = tuple(POLICIES)
    unit = "s"
    plan_type = ExpertPlan
    keys = (
        "layers",
        "experts",
        "top_k",
        "expert_bytes",
        "capacity",
        "bandwidth",
        "latency",
        "compute",
        "routing",
        "train_routing",
        "batch",
    )

    def instance_class(self) -> Any:
        return ExpertInstance

    def from_dict(self, data: dict[str, Any], base: Path | None = None) -> Any:
        return ExpertInstance.from_dict(data, base)  # a routing file is relative to it

    def bounds_of(self, inst: Any, method: str, time_limit_s: float) -> list[Bound]:
        return bounds(inst, method, time_limit_s=time_limit_s)

    def solve_with(
        self, inst: Any, method: str, options: SolverOptions | None, backend: str | None
    ) -> Result:
        from optkit.experts.milp import MAX_VARIABLES, milp, size

        opts = options or SolverOptions()
        clock = opts.deadline()
        optimum = replay(inst, make("belady"))  # the loads bound, and auto's first plan
        bound = best_bound(bounds(inst, "cheap", belady=optimum))
        names = [] if method == "milp" else list(AUTO_ORDER) if method == "auto" else [method]
        best: Any = None
        log = [f"bound {bound.kind} = {bound.value:.6g}"]
        for name in names:
            if best is not None and clock.expired():
                log.append(f"{name}: skipped (time limit)")
                continue
            rep = optimum if name == "belady" else replay(inst, make(name))
            log.append(f"{name}: {rep.verdict.objective:.6g}")
            if rep.verdict.valid and (
                best is None or rep.verdict.objective < best.verdict.objective
            ):
                best = rep
        solver = "replay"
        small = size(inst) <= MAX_VARIABLES
        proven = best is not None and best.verdict.objective <= bound.value * (1 + 1e-9)
        if method == "milp" or (method == "auto" and small and not proven and not clock.expired()):
            upper = (best or optimum).verdict.objective
            left = replace(opts, time_limit_s=opts.remaining(clock.elapsed()))
            out = milp(inst, upper, optimum.plan.loads, left, backend or "highs")
            solver = backend or "highs"
            log.append(f"milp: {out.status}, bound {out.bound:.6g}")
            bound = max(bound, Bound(out.bound, "milp"), key=lambda b: b.value)
            if out.plan is not None:
                v = check(inst, out.plan)
                log.append(f"milp plan: {v.objective:.6g} (checked)")
                if v.valid and (best is None or v.objective < best.verdict.objective):
                    best = Replay("milp", out.plan, v)
            if best is None:  # the MILP found nothing in time: the optimum's plan
                best = optimum
        return finalize(
            objective=None if best is None else best.verdict.objective,
            bound=bound.value,
            plan=None if best is None else best.plan,
            violations=() if best is None else best.verdict.violations,
            runtime_s=clock.elapsed(),
            solver=solver,
            method=f"auto:{best.policy}" if method == "auto" and best else method,
            log=tuple(log),
        )

    def check(self, inst: Any, plan: Any) -> Verdict:
        return check(inst, plan)

    def simulate(self, inst: Any, policy: str | None = None, **options: Any) -> SimReport:
        policy = policy or "predict"
        self.require_policy(policy)
        other = set(options) - {"plot", "progress"}
        if other:
            raise Refused(f"expert_cache simulate takes no {', '.join(sorted(other))}")
        t0 = time.perf_counter()
        rep = replay(inst, make(policy))
        if not rep.verdict.valid:
            raise RuntimeError(
                f"policy {policy} broke its plan: " + "; ".join(rep.verdict.violations[:3])
            )
        lru = rep if policy == "lru" else replay(inst, make("lru"))
        opt = rep if policy == "belady" else replay(inst, make("belady"))
        d = rep.verdict.details
        m = {
            "hit_rate": d["hit_rate"],
            "reuse_rate": d["reuse_rate"],
            "reuse_rate_ceiling": opt.verdict.details["reuse_rate"],
            "loads": float(d["loads"]),
            "min_loads": float(opt.plan.loads),
            "prefetches_used": float(d["prefetches_used"]),
            "stall_s": d["stall_s"],
            "bytes_moved": d["bytes_moved"],
            "time_per_token_s": rep.verdict.objective / inst.tokens,
            "speedup_vs_lru": lru.verdict.objective / rep.verdict.objective,
        }
        b = best_bound(bounds(inst, belady=opt))
        return SimReport(
            self.name, policy, rep.verdict.objective, b, m, time.perf_counter() - t0, rep
        )

    def plot_simulation(self, inst: Any, report: SimReport, path: Path) -> bool:
        """Loads per layer: the policy's beside Belady's minimum."""
        import numpy as np

        from optkit import plot

        def per_layer(plan: ExpertPlan) -> list[float]:
            per_step = plan.loads_per_step()
            layer = np.arange(len(per_step)) % inst.layers
            return np.bincount(layer, weights=per_step, minlength=inst.layers).tolist()

        opt = replay(inst, make("belady")).plan
        layers = list(range(inst.layers))
        plot.curves(
            {
                report.policy: list(zip(layers, per_layer(report.raw.plan), strict=True)),
                "belady": list(zip(layers, per_layer(opt), strict=True)),
            },
            path,
            title=f"{inst.name}: expert loads per layer ({report.policy} vs the minimum)",
            xlabel="MoE layer",
            ylabel="experts loaded",
        )
        return True


EXPERT_CACHE = ExpertCache()
