"""The registry face of KV-cache placement (``optkit.problems``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from optkit.io import Refused
from optkit.kvcache import driver
from optkit.kvcache.bounds import BOUND_METHODS, bounds, unlimited_hbm
from optkit.kvcache.check import check
from optkit.kvcache.instance import KvInstance
from optkit.kvcache.plan import KvPlan
from optkit.problems import Problem, SimReport
from optkit.result import Bound, Result, Verdict, best_bound
from optkit.solvers import MILP_BACKENDS, SolverOptions

#: seconds the LP bound may take inside ``simulate`` (small models only)
SIMULATE_LP_S = 10.0
#: heat-map rows: token ranges whose share in HBM is drawn
HEATMAP_BINS = 64


class KvPlacement(Problem):
    keys = ("tiers", "unit_bytes", "layers", "prompt", "decode", "weight_bytes", "mode", "trace")
    name = "kv_placement"
    methods = driver.METHODS
    bound_methods = BOUND_METHODS
    policies = driver.POLICY_METHODS
    export_methods = ("milp",)
    backends = MILP_BACKENDS
    unit = "s"
    plan_type = KvPlan

    def instance_class(self) -> Any:
        return KvInstance

    def from_dict(self, data: dict[str, Any], base: Path | None = None) -> Any:
        return KvInstance.from_dict(data, base)  # the only format that points at other files

    def unsupported(self, inst: Any, method: str) -> str:
        return driver.unsupported(inst, method)

    def bounds_of(self, inst: Any, method: str, time_limit_s: float) -> list[Bound]:
        return bounds(inst, method, time_limit_s)

    def solve_with(
        self, inst: Any, method: str, options: SolverOptions | None, backend: str | None
    ) -> Result:
        return driver.solve(inst, method, options, backend or "highs")

    def check(self, inst: Any, plan: Any) -> Verdict:
        return check(inst, plan)

    def simulate(self, inst: Any, policy: str | None = None, **options: Any) -> SimReport:
        from optkit.kvcache.policies import make
        from optkit.kvcache.simulate import metrics, replay

        policy = policy or "reactive"
        other = set(options) - {"plot", "progress"}
        if other:
            raise Refused(f"kv_placement simulate takes no {', '.join(sorted(other))}")
        try:
            pol = make(policy)
        except ValueError as e:
            raise Refused(str(e)) from None
        t0 = time.perf_counter()
        bins = HEATMAP_BINS if options.get("plot") else 0
        try:
            rep = replay(inst, pol, progress=options.get("progress"), snapshot_bins=bins)
        except ValueError as e:  # an oracle on a generated trace, a page size that does not fit
            raise Refused(f"policy {policy}: {e}") from None
        # the best bound known: the LP too when the model is small (bounds' auto rule)
        b = best_bound(bounds(inst, "auto", SIMULATE_LP_S))
        m = metrics(inst, rep)
        m["unlimited_hbm_s"] = unlimited_hbm(inst)
        return SimReport(
            self.name, rep.policy, rep.total_time, b, m, time.perf_counter() - t0, raw=rep
        )

    def sim_length(self, inst: Any) -> int:
        return int(inst.steps)

    def plot_simulation(self, inst: Any, report: SimReport, path: Path) -> bool:
        from optkit import plot

        rep = report.raw
        if rep is None or rep.snapshots is None or rep.snapshot_tokens is None:
            return False
        plot.kv_heatmap(
            rep.snapshots,
            -(-inst.tokens // HEATMAP_BINS),
            rep.snapshot_tokens,
            path,
            title=f"{inst.name}: {report.policy}, hit rate {rep.hit_rate:.1%}",
        )
        return True

    def export(self, inst: Any, method: str, fmt: str, path: Path, **options: Any) -> str:
        from optkit.kvcache.exact import build, check_size, to_pulp
        from optkit.solvers import write_pulp

        if method != "milp":
            raise Refused(f"export method {method!r} does not apply to kv_placement; expected milp")
        check_size(inst)
        return write_pulp(to_pulp(build(inst, integer=True), inst.name or self.name)[0], fmt, path)


KV_PLACEMENT = KvPlacement()
