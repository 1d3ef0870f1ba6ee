"""``solve``, ``bound``, ``check``, ``simulate`` and ``export``: the same face for every
problem, reached only through the registry (``optkit.problems``)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from optkit import batch
from optkit import problems as registry
from optkit.cli.common import (
    BadInput,
    FilesArg,
    FormatOpt,
    JsonOpt,
    app,
    err,
    fail,
    fmt_num,
    out,
    read_all,
)
from optkit.io import (
    FieldError,
    InputError,
    Refused,
    load_json,
    read_instance,
    read_text,
    write_json,
)
from optkit.solvers import ALL_BACKENDS, SolverOptions, process_age, require


def _options(time_limit: float, threads: int = 1, seed: int = 0) -> SolverOptions:
    try:
        return SolverOptions(time_limit, threads, seed)
    except ValueError as e:
        fail(f"--time-limit/--threads: {e}")


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
        Path | None,
        typer.Option("--out", help="Write one result JSON (with the plan) per instance here."),
    ] = None,
    plot_dir: Annotated[
        Path | None, typer.Option("--plot", help="Write one PNG per instance here.")
    ] = None,
    fmt: FormatOpt = None,
    keep_going: Annotated[
        bool,
        typer.Option(
            "--keep-going", help="Solve the good files when some are bad (exit 2 at the end)."
        ),
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="With --out: skip instances already solved there.")
    ] = False,
) -> None:
    """Solve instances; print status, objective, bound and gap for each."""
    opts = _options(time_limit, threads, seed)
    if workers < 1:
        fail(f"--workers: expected an integer >= 1, got {workers}")
    if scheduler is not None and not _address(scheduler):
        fail(
            "--scheduler: expected a Dask scheduler address such as tcp://host:8786, "
            f"got {scheduler!r}"
        )
    if resume and out_dir is None:
        fail("--resume: needs --out DIR (the results to resume from)")
    insts: list[Any] = []
    bad: dict[int, str] = {}  # file index -> why it is not solved
    for i, p in enumerate(files):
        try:
            inst = read_instance(p, fmt)
            _solvable(p, inst, method, solver)
        except (InputError, BadInput) as e:
            inst, bad[i] = None, str(e)
        insts.append(inst)
    if bad and not keep_going:
        fail("\n".join(bad.values()))
    done = _resumable(files, out_dir) if resume else {}
    todo = [i for i in range(len(files)) if i not in bad and i not in done]
    jobs = [batch.Job(insts[i], method, solver, opts) for i in todo]
    if jobs and opts.time_limit_s is not None:  # the limit runs from process start
        first = max(0.2 * opts.time_limit_s, opts.time_limit_s - process_age())
        jobs[0] = batch.Job(jobs[0].instance, method, solver, replace(opts, time_limit_s=first))
    results = batch.run(
        jobs,
        workers=workers,
        scheduler=scheduler,
        progress=not json_out and len(jobs) > 1 and sys.stderr.isatty(),
    )
    table = _solve_table()
    for i, path in enumerate(files):
        if i in bad:
            row = {"instance": str(path), "problem": None, "status": "ERROR", "reason": bad[i]}
        elif i in done:
            row = done[i]
        else:
            _, res = next(results)
            row = registry.solve_row(str(path), insts[i], res)
            if out_dir is not None:
                write_json(out_dir / f"{Path(path).stem}.result.json", row)
            if plot_dir is not None:
                png = plot_dir / f"{Path(path).stem}.png"
                if not registry.of(insts[i]).plot(insts[i], res, png):
                    err.print(f"{path}: no plan chart for {insts[i].problem} (nothing drawn)")
        if json_out:
            print(json.dumps({k: v for k, v in row.items() if k != "plan"}), flush=True)
        else:
            table.add_row(*_table_row(str(path), row))
    if not json_out:
        out.print(table)
    if bad:
        lines = [*bad.values(), f"{len(bad)} of {len(files)} instances not solved (see above)"]
        fail("\n".join(lines))


def _solvable(path: Path, inst: Any, method: str, solver: str | None) -> None:
    """Refuse (BadInput) a method or back-end the instance's problem does not offer."""
    prob = registry.of(inst)
    why = prob.unsupported(inst, method)
    if why:
        fail(f"{path}: --method: {why}")
    if solver is not None:
        try:
            prob.require_backend(solver, method)
            require(solver)
        except Refused as e:
            fail(f"{path}: --solver: {e}")


def _resumable(files: list[Path], out_dir: Path | None) -> dict[int, dict[str, Any]]:
    """The results already in ``out_dir`` for these files (same instance path, a status
    that is an answer): they are reported, not solved again."""
    done: dict[int, dict[str, Any]] = {}
    for i, p in enumerate(files):
        f = (out_dir or Path(".")) / f"{Path(p).stem}.result.json"
        try:
            row = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if (
            isinstance(row, dict)
            and row.get("instance") == str(p)
            and row.get("status")
            in (
                "OPTIMAL",
                "FEASIBLE",
                "INFEASIBLE",
            )
        ):
            done[i] = row
    return done


def _table_row(path: str, row: dict[str, Any]) -> tuple[str, ...]:
    optimal = row.get("status") == "OPTIMAL"
    gap = row.get("gap")
    return (
        row.get("name") or path,
        str(row.get("status")),
        _short(row.get("objective")),
        _short(row.get("bound")),
        "-" if gap is None else _gap(float(gap), optimal),
        "-" if row.get("runtime_s") is None else f"{row['runtime_s']:.1f}s",
        str(row.get("method", "-")).removeprefix("auto:"),  # the stage auto chose
    )


def _address(addr: str) -> bool:
    """A Dask scheduler address: [tcp|tls|ucx|inproc]://host:port (or host:port)."""
    import re

    return (
        re.fullmatch(r"((tcp|tls|ucx|inproc)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", addr) is not None
    )


def _gap(g: float, optimal: bool) -> str:
    if g == float("inf"):
        return "inf"
    if 0 < g < 5e-5 and not optimal:
        return "<0.01%"
    return f"{g:.2%}"


def _short(x: float | str | None) -> str:
    """5 significant digits; None as "-", the JSON strings "inf"/"nan" as they are."""
    return "-" if x is None else x if isinstance(x, str) else f"{x:.5g}"


def _solve_table() -> Table:
    """Fits an 80-column terminal: a long instance or method name is cut with an
    ellipsis; numbers have 5 significant digits (the JSON output has them all)."""
    t = Table(box=box.SIMPLE_HEAD, padding=(0, 0))
    t.add_column("instance", no_wrap=True, overflow="ellipsis", max_width=20)
    t.add_column("status", no_wrap=True, min_width=8)
    for col in ("objective", "bound"):
        t.add_column(col, justify="right", no_wrap=True, min_width=10)
    t.add_column("gap", justify="right", no_wrap=True, min_width=6)
    t.add_column("time", justify="right", no_wrap=True, min_width=5)
    t.add_column("method", no_wrap=True, overflow="ellipsis", max_width=14)
    return t


@app.command()
def bound(
    files: FilesArg,
    method: Annotated[
        str,
        typer.Option(help="auto, cheap (closed forms) or lp (adds the problem's LP bound)."),
    ] = "auto",
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds per instance.")] = 10.0,
    json_out: JsonOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Compute proven bounds (every rule, and the best); a bound asked for and not
    obtained is listed with the reason."""
    insts = read_all(files, fmt)
    opts = _options(time_limit)
    for p, inst in zip(files, insts, strict=True):
        if method not in registry.of(inst).bound_methods:
            expected = ", ".join(registry.of(inst).bound_methods)
            fail(f"{p}: --method: expected {expected} for {inst.problem}, got {method!r}")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    table.add_column("instance", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("bound", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("every bound", overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)
    missing: list[str] = []
    for path, inst in zip(files, insts, strict=True):
        t0 = time.perf_counter()
        bs = registry.of(inst).bound(inst, method, opts)
        row = registry.bound_row(str(path), inst, bs, time.perf_counter() - t0)
        if json_out:
            print(json.dumps(row), flush=True)
            continue
        each = ", ".join(f"{k}={_short(v)}" for k, v in row["bounds"].items())
        table.add_row(
            inst.name or str(path),
            _short(row["bound"]),
            row["bound_kind"],
            each,
            f"{row['runtime_s']:.2f}s",
        )
        missing += [
            f"{inst.name or path}: {k} not obtained ({why})"
            for k, why in row["not_obtained"].items()
        ]
        missing += [f"{inst.name or path}: {k}: {why}" for k, why in row["notes"].items()]
    if not json_out:
        out.print(table)
        for line in missing:
            err.print(line, highlight=False)


@app.command()
def check(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    plan: Annotated[
        Path, typer.Argument(help="Plan: a result file written by solve --out, or a bare plan.")
    ],
    json_out: JsonOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Verify a plan from the instance alone; exit 2 (with the violations) when it is
    invalid or its result file claims an objective the plan does not achieve."""
    inst = read_all([instance], fmt)[0]
    prob = registry.of(inst)
    data, claimed = _read_plan(plan, inst.problem)
    try:
        typed = prob.plan_from_json(data)
    except FieldError as e:
        fail(f"{plan}: {e}")
    verdict = registry.check_claim(prob.check(inst, typed), claimed, prob.sense)
    if json_out:
        print(json.dumps(registry.check_row(str(instance), inst, str(plan), verdict)))
    elif verdict.valid:
        out.print(f"[green]valid[/green] plan, objective {verdict.objective:.10g}")
    if not verdict.valid:
        fail(f"{plan}: field 'plan': " + "; ".join(verdict.violations[:10]))


def _read_plan(path: Path, problem: str) -> tuple[Any, Any]:
    """(the plan's JSON, the objective its result file claims or None)."""
    data = load_json(path, read_text(path, "plan file"))
    if isinstance(data, dict) and "plan" in data:  # a result file
        if data.get("problem", problem) != problem:
            fail(f"{path}: field 'problem': expected {problem!r}, got {data['problem']!r}")
        if data["plan"] is None:
            fail(f"{path}: field 'plan': the result has no plan (status {data.get('status')})")
        return data["plan"], data.get("objective")
    return data, None


@app.command()
def simulate(
    file: Annotated[Path, typer.Argument(help="An instance of an online problem.")],
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            "--scheduler",
            help="serving: fcfs, sarathi, hybrid (default); kv_placement: static, reactive "
            "(default), page[-P], heavy-hitter, balanced, belady, oracle.",
        ),
    ] = None,
    assignment: Annotated[
        str | None, typer.Option(help="serving: online (least-work dispatch) or plan (packing).")
    ] = None,
    order: Annotated[
        str | None, typer.Option(help="hybrid: output-desc (default), prompt or arrival.")
    ] = None,
    token_budget: Annotated[int | None, typer.Option(help="sarathi: tokens per iteration.")] = None,
    json_out: JsonOpt = False,
    plot_file: Annotated[
        Path | None,
        typer.Option("--plot", help="PNG: per-client Gantt (serving), placement heat map (KV)."),
    ] = None,
) -> None:
    """Run an online scheduler or placement policy over an instance, graded against a bound."""
    inst = read_all([file], None)[0]
    prob = registry.of(inst)
    if not prob.policies:
        fail(f"{file}: field 'problem': {inst.problem} has no online policies to simulate")
    given = {"assignment": assignment, "order": order, "token_budget": token_budget}
    extra: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    total = prob.sim_length(inst)
    bar = None
    if not json_out and sys.stderr.isatty() and total >= 4096:
        from rich.progress import Progress

        bar = Progress(console=err, transient=True)
        bar.start()
        task = bar.add_task("replay", total=total)
        extra["progress"] = lambda t: bar.update(task, completed=t)
    try:
        rep = prob.simulate(inst, policy, plot=plot_file is not None, **extra)
    except Refused as e:
        fail(f"{file}: {e}")
    finally:
        if bar is not None:
            bar.stop()
    if plot_file is not None and not prob.plot_simulation(inst, rep, plot_file):
        err.print(f"{file}: no simulation chart for {inst.problem} (nothing drawn)")
    row = {"instance": str(file), **rep.to_dict()}
    if json_out:
        print(json.dumps(row))
        return
    t = Table(title=f"{inst.name or file}: {rep.policy}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("objective", f"{rep.objective:.6g} {prob.unit}")
    t.add_row("bound", f"{fmt_num(rep.bound.value)} {prob.unit} ({rep.bound.kind})")
    t.add_row("ratio to bound", f"{rep.ratio_to_bound:.4f}")
    for k, v in rep.metrics.items():
        t.add_row(k, f"{v:.4g}")
    out.print(t)


@app.command()
def export(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    method: Annotated[
        str, typer.Option(help="milp, arcflow (packing) or lp (realtime: the window LP).")
    ] = "milp",
    format: Annotated[str, typer.Option("--format", help="lp or mps.")] = "lp",
    output: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: INSTANCE.METHOD.FORMAT).")
    ] = None,
    capacity: Annotated[
        int | None, typer.Option(help="Makespan arc-flow: bin capacity C (default: best bound).")
    ] = None,
) -> None:
    """Write the exact model of an instance as an LP or MPS file."""
    inst = read_all([instance], None)[0]
    prob = registry.of(inst)
    if method not in prob.export_methods:
        expected = " or ".join(prob.export_methods) or "nothing (no exact model)"
        fail(f"{instance}: --method: expected {expected} for {inst.problem}, got {method!r}")
    if format not in ("lp", "mps"):
        fail(f"--format: expected lp or mps, got {format!r}")
    target = output or instance.with_suffix(f".{method}.{format}")
    try:
        note = prob.export(inst, method, format, target, capacity=capacity)
    except Refused as e:
        fail(f"{instance}: {e}")
    err.print(f"wrote {target}" + (f" ({note})" if note else ""))
