"""The ``optkit`` command line: parses, calls the library, prints tables or JSON Lines.

Exit codes: 0 success (whatever the status), 2 bad input (message on stderr
naming the file and the field), 1 internal error. No logic lives here.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from optkit import batch
from optkit.io import InputError, read_instance, read_plan, write_json
from optkit.result import Result
from optkit.solvers import ALL_BACKENDS, SolverOptions, SolverUnavailable

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Optimal plans, proven bounds and graded heuristics for LLM inference allocation.",
)
out = Console()
err = Console(stderr=True)


class BadInput(Exception):
    """Raised inside a command for exit code 2."""


def _fail(msg: str) -> None:
    raise BadInput(msg)


FilesArg = Annotated[
    list[Path], typer.Argument(help="Instance files (JSON, BPP or P||Cmax format).")
]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="json, bpp or pcmax (default: detect).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON Lines instead of a table.")]


def _read_all(files: list[Path], fmt: str | None) -> list[Any]:
    """Read every file before any work: one bad file stops the run with exit 2."""
    insts, errors = [], []
    for f in files:
        try:
            insts.append(read_instance(f, fmt))
        except InputError as e:
            errors.append(str(e))
    if errors:
        _fail("\n".join(errors))
    return insts


def _row(path: Path, inst: Any, res: Result) -> dict[str, Any]:
    return {"instance": str(path), "name": inst.name, "problem": inst.problem, **res.to_dict()}


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


@app.command()
def solve(
    files: FilesArg,
    method: Annotated[
        str, typer.Option(help="auto, or a heuristic / exact method of the problem.")
    ] = "auto",
    solver: Annotated[str | None, typer.Option(help="Back-end: " + ", ".join(ALL_BACKENDS))] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds per instance.")] = 60.0,
    threads: Annotated[int, typer.Option(help="Threads per solve.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Instances solved in parallel (process pool).")] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://host:port).")
    ] = None,
    json_out: JsonOpt = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write one result JSON per instance here.")
    ] = None,
    plot_dir: Annotated[
        Path | None, typer.Option("--plot", help="Write one PNG per instance here.")
    ] = None,
    fmt: FormatOpt = None,
) -> None:
    """Solve instances; print status, objective, bound and gap for each."""
    insts = _read_all(files, fmt)
    try:
        opts = SolverOptions(time_limit, threads, seed)
    except ValueError as e:
        _fail(f"bad option: {e}")
    for p, inst in zip(files, insts, strict=True):
        from optkit.packing.driver import unsupported

        why = unsupported(inst, method)
        if why:
            _fail(f"{p}: {why}")
    if solver is not None:
        try:
            from optkit.solvers import require

            require(solver)
        except (ValueError, SolverUnavailable) as e:
            _fail(f"--solver: {e}")
    jobs = [batch.Job(inst, method, solver, opts) for inst in insts]
    rows: list[dict[str, Any]] = []
    table = _table()
    show_progress = not json_out and len(files) > 1 and sys.stderr.isatty()
    for i, res in batch.run(jobs, workers=workers, scheduler=scheduler, progress=show_progress):
        path, inst = files[i], insts[i]
        row = _row(path, inst, res)
        rows.append(row)
        if out_dir is not None:
            write_json(out_dir / f"{Path(path).stem}.result.json", row)
        if plot_dir is not None and res.plan is not None:
            from optkit import plot

            plot.plan_png(
                inst,
                res.plan,
                plot_dir / f"{Path(path).stem}.png",
                title=res.status.value,
                bound=res.bound,
            )
        if json_out:
            print(json.dumps({k: v for k, v in row.items() if k != "plan"}), flush=True)
        else:
            table.add_row(
                row["name"] or str(path),
                row["status"],
                _fmt(res.objective),
                _fmt(res.bound),
                _gap(res.gap, res.status.value == "OPTIMAL"),
                f"{res.runtime_s:.2f}s",
                row["method"],
            )
    if not json_out:
        out.print(table)


def _gap(g: float, optimal: bool) -> str:
    if g == float("inf"):
        return "inf"
    if 0 < g < 5e-5 and not optimal:
        return "<0.01%"
    return f"{g:.2%}"


def _table() -> Table:
    t = Table(show_lines=False)
    for col in ("instance", "status", "objective", "bound", "gap", "time", "method"):
        t.add_column(
            col,
            justify="right" if col in ("objective", "bound", "gap", "time") else "left",
            no_wrap=col in ("instance", "status", "objective", "bound"),
        )
    return t


@app.command()
def bound(
    files: FilesArg,
    method: Annotated[
        str, typer.Option(help="auto/cheap (closed forms) or lp (+ arc-flow / LST LP).")
    ] = "auto",
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds per instance.")] = 10.0,
    json_out: JsonOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Compute proven lower bounds (every rule, and the best)."""
    from optkit.packing.bounds import best
    from optkit.packing.driver import BOUND_METHODS, bounds

    insts = _read_all(files, fmt)
    if method not in BOUND_METHODS:
        _fail(f"--method: expected auto, cheap or lp, got {method!r}")
    table = Table()
    for col in ("instance", "bound", "kind", "all bounds", "time (s)"):
        table.add_column(col)
    for path, inst in zip(files, insts, strict=True):
        t0 = time.perf_counter()
        each = bounds(inst, method, time_limit)
        b = best(each)
        dt = time.perf_counter() - t0
        row = {
            "instance": str(path),
            "name": inst.name,
            "problem": inst.problem,
            "bound": b.value if b.value != float("inf") else "inf",
            "bound_kind": b.kind,
            "bounds": {x.kind: x.value for x in each},
            "runtime_s": round(dt, 6),
        }
        if json_out:
            print(json.dumps(row), flush=True)
        else:
            table.add_row(
                inst.name or str(path),
                _fmt(b.value),
                b.kind,
                ", ".join(f"{x.kind}={x.value:g}" for x in each),
                f"{dt:.2f}",
            )
    if not json_out:
        out.print(table)


@app.command()
def check(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    plan: Annotated[
        Path, typer.Argument(help="Plan: JSON list of machine/bin indices or a result file.")
    ],
    json_out: JsonOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Verify a plan independently; exit 2 (with the violations) when it is invalid."""
    from optkit.packing import check as verify

    inst = _read_all([instance], fmt)[0]
    try:
        assignment = read_plan(plan)
    except InputError as e:
        _fail(str(e))
    objective, violations = verify(inst, assignment)
    row = {
        "instance": str(instance),
        "problem": inst.problem,
        "plan": str(plan),
        "valid": not violations,
        "objective": objective if not violations else None,
        "violations": violations,
    }
    if json_out:
        print(json.dumps(row))
    elif not violations:
        out.print(f"[green]valid[/green] plan, objective {objective:g}")
    if violations:
        _fail(f"{plan}: field 'plan': " + "; ".join(violations[:10]))


@app.command()
def export(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    method: Annotated[str, typer.Option(help="milp or arcflow.")] = "milp",
    format: Annotated[str, typer.Option("--format", help="lp or mps.")] = "lp",
    output: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: INSTANCE.METHOD.FORMAT).")
    ] = None,
    capacity: Annotated[
        int | None, typer.Option(help="Makespan arc-flow: bin capacity C (default: best bound).")
    ] = None,
) -> None:
    """Write the exact model of an instance as an LP or MPS file."""
    from optkit.packing import export as ex

    inst = _read_all([instance], None)[0]
    if method not in ("milp", "arcflow"):
        _fail(f"--method: expected milp or arcflow, got {method!r}")
    if format not in ("lp", "mps"):
        _fail(f"--format: expected lp or mps, got {format!r}")
    target = output or instance.with_suffix(f".{method}.{format}")
    try:
        note = ex.export_model(inst, method, format, target, capacity)
    except ValueError as e:
        _fail(f"{instance}: {e}")
    err.print(f"wrote {target}" + (f" ({note})" if note else ""))


def main() -> None:
    """Console entry point with the exit-code contract."""
    try:
        app(standalone_mode=False)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)  # plain: one line per problem, never wrapped
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:  # usage errors (unknown option, missing argument) are bad input too
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(2)
        print(f"internal error: {e.__class__.__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
