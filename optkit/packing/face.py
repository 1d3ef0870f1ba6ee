"""The registry faces of makespan scheduling and bin packing (``optkit.problems``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optkit.io import FieldError, Refused, is_int
from optkit.packing import driver, portfolio
from optkit.packing.instance import BinPackingInstance, MakespanInstance
from optkit.problems import Problem
from optkit.result import Bound, Result, Verdict
from optkit.solvers import ALL_BACKENDS, MILP_BACKENDS, SolverOptions


class Assignment:
    """A packing plan: the machine (makespan) or bin (bin packing) of each job / item,
    saved as a JSON list of integers."""

    @staticmethod
    def from_json(data: Any) -> tuple[int, ...]:
        if not isinstance(data, list):
            raise FieldError("plan", "a list of machine/bin indices", type(data).__name__)
        for i, v in enumerate(data):
            if not is_int(v):
                raise FieldError(f"plan[{i}]", "an integer index", v)
        return tuple(data)


class _Packing(Problem):
    plan_type = Assignment
    bound_methods = driver.BOUND_METHODS
    export_methods = ("milp", "arcflow")
    backends = ALL_BACKENDS

    def unsupported(self, inst: Any, method: str) -> str:
        return driver.unsupported(inst, method)

    def backend_for(self, method: str, backend: str | None) -> str:
        fits = {
            "milp": MILP_BACKENDS,
            "cpsat": ("cpsat",),
            "arcflow": ("highs",),
            "bnp": ("highs",),
        }
        if backend is not None and method in fits and backend not in fits[method]:
            return (
                f"solver {backend!r} does not run method {method!r}; expected one of "
                + ", ".join(fits[method])
            )
        return ""

    def bounds_of(self, inst: Any, method: str, time_limit_s: float) -> list[Bound]:
        return driver.bounds(inst, method, time_limit_s)

    def solve_with(
        self, inst: Any, method: str, options: SolverOptions | None, backend: str | None
    ) -> Result:
        return portfolio.solve(inst, method, options, backend)

    def check(self, inst: Any, plan: Any) -> Verdict:
        return driver.check(inst, plan)

    def export(self, inst: Any, method: str, fmt: str, path: Path, **options: Any) -> str:
        from optkit.packing.export import export_model

        try:
            return export_model(inst, method, fmt, path, options.get("capacity"))
        except ValueError as e:
            raise Refused(str(e)) from None


class Makespan(_Packing):
    keys = ("machines", "durations", "speeds", "times", "job_ids")
    name = "makespan"
    methods = driver.MAKESPAN_METHODS
    text_formats = ("pcmax",)

    def instance_class(self) -> Any:
        return MakespanInstance

    def sniff(self, text: str) -> bool:
        from optkit.packing.textformats import is_pcmax

        return is_pcmax(text)

    def read_text(self, fmt: str, text: str, name: str) -> Any:
        from optkit.packing.textformats import read_pcmax

        return read_pcmax(text, name)

    def plot(self, inst: Any, result: Result, path: Path) -> bool:
        """Gantt chart: one row per machine, the bound as a dashed line."""
        if result.plan is None:
            return False
        from optkit import plot

        plot.gantt(inst, result.plan, path, title=result.status.value, bound=result.bound)
        return True


class BinPacking(_Packing):
    keys = ("capacity", "sizes", "item_ids")
    name = "binpacking"
    methods = driver.BINPACKING_METHODS
    text_formats = ("bpp",)
    unit = "bins"

    def instance_class(self) -> Any:
        return BinPackingInstance

    def sniff(self, text: str) -> bool:
        return True  # any other text: BPPLIB's format (its reader says what is wrong)

    def read_text(self, fmt: str, text: str, name: str) -> Any:
        from optkit.packing.textformats import read_bpp

        return read_bpp(text, name)

    def plot(self, inst: Any, result: Result, path: Path) -> bool:
        """Bin fill chart: one bar per bin."""
        if result.plan is None:
            return False
        from optkit import plot

        plot.bin_fill(inst, result.plan, path, title=result.status.value)
        return True


MAKESPAN = Makespan()
BINPACKING = BinPacking()
