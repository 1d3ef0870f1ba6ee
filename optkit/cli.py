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
from optkit.solvers import (
    ALL_BACKENDS,
    MILP_BACKENDS,
    SolverOptions,
    SolverUnavailable,
    write_pulp,
)

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


PACKING = ("makespan", "binpacking")


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
        why = _unsupported(inst, method)
        if why:
            _fail(f"{p}: {why}")
    if solver is not None:
        try:
            from optkit.solvers import require

            require(solver)
        except (ValueError, SolverUnavailable) as e:
            _fail(f"--solver: {e}")
        for p, inst in zip(files, insts, strict=True):
            if inst.problem in ("serving", "kv_placement") and solver not in MILP_BACKENDS:
                _fail(
                    f"{p}: --solver: expected {', '.join(MILP_BACKENDS)} for {inst.problem}, "
                    f"got {solver!r}"
                )
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
        if plot_dir is not None and res.plan is not None and inst.problem in PACKING:
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


def _unsupported(inst: Any, method: str) -> str:
    """Why ``method`` cannot solve ``inst`` ('' when it can)."""
    if inst.problem == "serving":
        from optkit.serving import METHODS

        if method in METHODS:
            return ""
        return f"--method: expected {', '.join(METHODS)} for serving, got {method!r}"
    if inst.problem == "kv_placement":
        from optkit.kvcache.driver import unsupported as kv_unsupported

        return kv_unsupported(inst, method)
    from optkit.packing.driver import unsupported

    return unsupported(inst, method)


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
        str, typer.Option(help="auto/cheap (closed forms) or lp (+ the bin-packing LP / LST LP).")
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
        b: Any  # each problem's bound type: a value and a kind
        each: list[Any]
        if inst.problem == "serving":
            from optkit.packing.bounds import Bound
            from optkit.serving import lower_bound

            sb = lower_bound(inst, lp=method == "lp")
            each = [Bound(sb.packing, "packing"), Bound(sb.chain, "chain")]
            b = Bound(sb.value, sb.kind)
        elif inst.problem == "kv_placement":
            from optkit.kvcache import bound_report

            b, each, _ = bound_report(inst, method, time_limit)
        else:
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
    methods = ("milp", "arcflow") if inst.problem in PACKING else ("milp",)
    if method not in methods:
        _fail(f"--method: expected {' or '.join(methods)} for {inst.problem}, got {method!r}")
    if format not in ("lp", "mps"):
        _fail(f"--format: expected lp or mps, got {format!r}")
    target = output or instance.with_suffix(f".{method}.{format}")
    try:
        if inst.problem in PACKING:
            note = ex.export_model(inst, method, format, target, capacity)
        else:
            note = write_pulp(_exact_model(inst), format, target)
    except ValueError as e:
        _fail(f"{instance}: {e}")
    err.print(f"wrote {target}" + (f" ({note})" if note else ""))


def _exact_model(inst: Any) -> Any:
    """The PuLP problem of a serving or kv_placement instance's exact model."""
    if inst.problem == "serving":
        from optkit.serving.bounds import lower_bound
        from optkit.serving.mip import build as serving_build

        return serving_build(inst, lower=lower_bound(inst).value, name=inst.name).prob
    from optkit.kvcache.exact import build as kv_build
    from optkit.kvcache.exact import check_size, to_pulp

    check_size(inst)
    return to_pulp(kv_build(inst, integer=True), inst.name or "kv_placement")[0]


# ------------------------------------------------------------------ cost model

CatalogOpt = Annotated[
    list[Path] | None, typer.Option("--catalog", help="Extra catalog YAML file(s) (repeatable).")
]
ModelOpt = Annotated[str, typer.Option("--model", help="Model key (optkit catalog models).")]
HardwareOpt = Annotated[
    str, typer.Option("--hardware", help="Hardware key (optkit catalog hardware).")
]
TpOpt = Annotated[int, typer.Option("--tp", help="Tensor-parallel degree.")]
PpOpt = Annotated[int, typer.Option("--pp", help="Pipeline stages.")]
DtypeOpt = Annotated[
    str, typer.Option("--dtype", help="fp16, bf16, fp8, int8, int4 or wXaY[kvZ] (w4a16, w2a8kv4).")
]
GroupOpt = Annotated[int, typer.Option("--group-size", help="Quantisation group size.")]
AttnOpt = Annotated[str, typer.Option("--attention", help="full, lambda or topk.")]
SinksOpt = Annotated[int, typer.Option("--sinks", help="Λ-shaped: attention-sink tokens.")]
LocalOpt = Annotated[int, typer.Option("--local", help="Λ-shaped: local window tokens.")]
TopkOpt = Annotated[int, typer.Option("--topk", help="top-k attention: tokens read per step.")]
KvTierOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--kv-tier",
        help="FRACTION:TIER of the KV cache read from a tier over the host link "
        "(repeatable; TIER empty = the device's host memory).",
    ),
]
EffOpt = Annotated[float, typer.Option(help="Fraction of peak reached (1 = pure roofline).")]


def _catalog(files: list[Path] | None) -> Any:
    from optkit.costmodel import load_catalog

    try:
        return load_catalog(files or [])
    except InputError as e:
        _fail(str(e))


def _entries(files: list[Path] | None, model: str, hardware: str) -> tuple[Any, Any, Any]:
    """(catalog, model, hardware) from the built-in catalog plus ``--catalog`` files."""
    cat = _catalog(files)
    try:
        return cat, cat.get_model(model), cat.get_hardware(hardware)
    except KeyError as e:
        _fail(f"--model/--hardware: {e.args[0]}")
    raise AssertionError  # unreachable


def _setup(
    cat: Any,
    hw: Any,
    tp: int = 1,
    pp: int = 1,
    dtype: str = "fp16",
    group_size: int = 128,
    attention: str = "full",
    sinks: int = 4,
    local: int = 1020,
    topk: int = 1024,
    kv_tier: list[str] | None = None,
    compute_eff: float = 1.0,
    memory_eff: float = 1.0,
    network_eff: float = 1.0,
) -> Any:
    from optkit.costmodel import Attention, Efficiency, Precision, Setup
    from optkit.costmodel.summary import kv_tiers_from_spec

    try:
        return Setup(
            precision=Precision.parse(dtype, group_size),
            tp=tp,
            pp=pp,
            attention=Attention(attention, sinks, local, topk),
            efficiency=Efficiency(compute_eff, memory_eff, network_eff),
            kv_tiers=kv_tiers_from_spec(kv_tier or [], hw, cat),
        )
    except (ValueError, KeyError) as e:
        _fail(str(e.args[0] if isinstance(e, KeyError) else e))
    raise AssertionError  # unreachable


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _secs(x: float) -> str:
    return f"{x * 1e3:.4g} ms" if x < 1 else f"{x:.4g} s"


@app.command()
def cost(
    model: ModelOpt,
    hardware: HardwareOpt,
    batch: Annotated[int, typer.Option(help="Sequences in the batch.")] = 1,
    input: Annotated[int, typer.Option("--input", help="Prompt tokens per sequence.")] = 512,
    output: Annotated[int, typer.Option("--output", help="Output tokens per sequence.")] = 128,
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    dtype: DtypeOpt = "fp16",
    group_size: GroupOpt = 128,
    attention: AttnOpt = "full",
    sinks: SinksOpt = 4,
    local: LocalOpt = 1020,
    topk: TopkOpt = 1024,
    kv_tier: KvTierOpt = None,
    compute_eff: EffOpt = 1.0,
    memory_eff: EffOpt = 1.0,
    network_eff: EffOpt = 1.0,
    catalog: CatalogOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Latency, throughput, memory and bottleneck of one configuration (roofline model)."""
    from optkit.costmodel.summary import summary

    cat, m, hw = _entries(catalog, model, hardware)
    st = _setup(
        cat,
        hw,
        tp,
        pp,
        dtype,
        group_size,
        attention,
        sinks,
        local,
        topk,
        kv_tier,
        compute_eff,
        memory_eff,
        network_eff,
    )
    try:
        row = summary(m, hw, batch, input, output, st)
    except ValueError as e:
        _fail(str(e))
    if json_out:
        print(json.dumps(row))
        return
    t = Table(title=f"{m.name} on {st.tp * st.pp} x {hw.name} ({st.precision.label})")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("prefill (TTFT)", f"{_secs(row['prefill_s'])}  [{row['prefill_bottleneck']}]")
    t.add_row(
        "decode step at final context",
        f"{_secs(row['decode_step_s'])}  [{row['decode_bottleneck']}]",
    )
    t.add_row("time per output token", _secs(row["tpot_s"]))
    t.add_row("whole request", _secs(row["request_s"]))
    t.add_row("throughput", f"{row['throughput_tok_s']:.4g} tok/s")
    mem = row["memory"]
    t.add_row(
        "memory per device",
        f"{_si(mem['total'], 'B')} (weights {_si(mem['weights'], 'B')}, "
        f"KV {_si(mem['kv_cache'], 'B')})",
    )
    t.add_row("bottleneck", row["bottleneck"])
    out.print(t)
    if not row["fits"]:
        err.print(
            f"[yellow]warning:[/yellow] needs {_si(mem['total'], 'B')} per device, "
            f"{hw.key} has {_si(row['memory_capacity_bytes'], 'B')}; raise --tp/--pp or quantise"
        )


@app.command(name="catalog")
def catalog_cmd(
    section: Annotated[str, typer.Argument(help="hardware, models, tiers or links.")] = "hardware",
    catalog: CatalogOpt = None,
    sources: Annotated[bool, typer.Option("--sources", help="Show every number's source.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List the hardware, models, memory tiers or links the cost model knows."""
    from dataclasses import asdict

    cat = _catalog(catalog)
    tables = {
        "hardware": cat.hardware,
        "models": cat.models,
        "tiers": cat.tiers,
        "links": cat.links,
    }
    if section not in tables:
        _fail(f"section: expected hardware, models, tiers or links, got {section!r}")
    entries = tables[section]
    if json_out:
        for e in entries.values():
            d = asdict(e)
            d["sources"] = dict(e.sources)
            print(json.dumps(d, default=str))
        return
    t = Table()
    cols: tuple[str, ...]
    rows: list[tuple[str, ...]]
    if section == "hardware":
        cols = ("key", "name", "kind", "fp16 TFLOP/s", "int8/fp8", "memory", "bandwidth", "link")
        rows = [
            (
                k,
                h.name,
                h.kind,
                f"{h.tflops.get('fp16', h.tflops.get('bf16', 0)):g}",
                f"{max(h.tflops.get('int8', 0), h.tflops.get('fp8', 0)):g}",
                f"{h.memory_gb:g} GB",
                f"{h.bandwidth_gbs:g} GB/s",
                f"{h.interconnect.name} {h.interconnect.bandwidth_gbs:g} GB/s",
            )
            for k, h in entries.items()
        ]
    elif section == "models":
        cols = (
            "key",
            "name",
            "layers",
            "hidden",
            "heads/kv",
            "ffn",
            "experts",
            "params",
            "context",
        )
        rows = [
            (
                k,
                m.name,
                str(m.layers),
                str(m.hidden),
                f"{m.heads}/{m.kv_heads}",
                str(m.ffn),
                f"{m.top_k}/{m.experts}" if m.is_moe else "-",
                f"{m.parameters()['total'] / 1e9:.3g} B",
                str(m.context),
            )
            for k, m in entries.items()
        ]
    elif section == "tiers":
        cols = ("key", "name", "capacity", "bandwidth")
        rows = [
            (k, x.name, f"{x.capacity_gb:g} GB", f"{x.bandwidth_gbs:g} GB/s")
            for k, x in entries.items()
        ]
    else:
        cols = ("key", "name", "bandwidth / direction", "latency")
        rows = [
            (k, x.name, f"{x.bandwidth_gbs:g} GB/s", f"{x.latency_us:g} us")
            for k, x in entries.items()
        ]
    if sources:
        cols = (*cols, "sources")
        rows = [
            (*r, "\n".join(f"{f}: {s}" for f, s in entries[r[0]].sources.items())) for r in rows
        ]
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*r)
    out.print(t)


generate_app = typer.Typer(no_args_is_help=True, help="Build instances from request traces.")
app.add_typer(generate_app, name="generate")

TraceOpt = Annotated[
    Path, typer.Option("--trace", help="Trace CSV (Azure, ShareGPT, arXiv, GSM8K).")
]
OutFileOpt = Annotated[
    Path | None, typer.Option("--out", help="Instance file to write (default: stdout).")
]
LimitOpt = Annotated[int | None, typer.Option(help="Use at most this many requests.")]
OffsetOpt = Annotated[int, typer.Option(help="Skip this many requests first.")]
NameOpt = Annotated[str | None, typer.Option(help="Instance name.")]


def _trace(path: Path, offset: int, limit: int | None) -> Any:
    """The requests ``offset`` .. ``offset + limit`` of a trace file (exit 2 on bad input)."""
    from optkit.costmodel.traces import read_trace

    try:
        tr = read_trace(path).slice(offset, limit)
    except InputError as e:
        _fail(str(e))
    if len(tr) == 0:
        _fail(f"{path}: --offset {offset}: no requests left (the trace has fewer)")
    return tr


def _emit(doc: dict[str, Any], output_file: Path | None, summary: str) -> None:
    """Print the instance document, or write it atomically and say what was written."""
    if output_file is None:
        print(json.dumps(doc))
    else:
        write_json(output_file, doc)
        err.print(f"wrote {output_file}: {summary}")


@generate_app.command("makespan")
def generate_makespan(
    trace: TraceOpt,
    model: ModelOpt,
    hardware: HardwareOpt,
    devices: Annotated[int, typer.Option("--devices", help="Devices in the fleet.")],
    output_file: OutFileOpt = None,
    batch: Annotated[
        int, typer.Option(help="Requests per batch; a job's duration is its share of the batch.")
    ] = 1,
    limit: LimitOpt = None,
    offset: OffsetOpt = 0,
    name: NameOpt = None,
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    dtype: DtypeOpt = "fp16",
    group_size: GroupOpt = 128,
    compute_eff: EffOpt = 1.0,
    memory_eff: EffOpt = 1.0,
    catalog: CatalogOpt = None,
) -> None:
    """A makespan instance whose job durations come from the cost model."""
    from optkit.costmodel.generate import makespan_instance

    cat, m, hw = _entries(catalog, model, hardware)
    st = _setup(cat, hw, tp, pp, dtype, group_size, compute_eff=compute_eff, memory_eff=memory_eff)
    tr = _trace(trace, offset, limit)
    try:
        doc = makespan_instance(tr, m, hw, devices, st, batch, name)
    except ValueError as e:
        _fail(f"--devices/--batch: {e}")
    _emit(doc, output_file, f"{len(tr)} jobs on {doc['machines']} machines")


@app.command()
def simulate(
    file: Annotated[Path, typer.Argument(help="A serving or kv_placement instance.")],
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
        str, typer.Option(help="serving: online (least-work dispatch) or plan (packing).")
    ] = "online",
    order: Annotated[
        str | None, typer.Option(help="hybrid: prompt, output-desc or arrival.")
    ] = None,
    token_budget: Annotated[int | None, typer.Option(help="sarathi: tokens per iteration.")] = None,
    json_out: JsonOpt = False,
    plot_file: Annotated[
        Path | None,
        typer.Option("--plot", help="PNG: per-client Gantt (serving), placement heat map (KV)."),
    ] = None,
) -> None:
    """Run an online scheduler or placement policy over an instance, graded against a bound."""
    inst = _read_all([file], None)[0]
    if inst.problem == "kv_placement":
        res, row = _simulate_kv(inst, policy or "reactive", plot_file, json_out)
    elif inst.problem == "serving":
        res, row = _simulate_serving(inst, policy or "hybrid", assignment, order, token_budget)
        if plot_file is not None:
            from optkit import plot

            title = f"{inst.name}: {row['policy']}"
            plot.serving_gantt(res, plot_file, title=title, bound=row["bound"])
    else:
        _fail(
            f"{file}: field 'problem': expected serving or kv_placement for simulate, "
            f"got {inst.problem!r}"
        )
    row["instance"] = str(file)
    if json_out:
        print(json.dumps(row))
        return
    t = Table(title=f"{inst.name or file}: {row['policy']}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("objective", f"{row['objective']:.6g} s")
    t.add_row("lower bound", f"{row['bound']:.6g} s ({row['bound_kind']})")
    t.add_row("ratio to bound", f"{row['ratio_to_bound']:.4f}")
    for k, v in row["metrics"].items():
        t.add_row(k, f"{v:.4g}")
    out.print(t)


def _simulate_serving(
    inst: Any, scheduler: str, assignment: str, order: str | None, token_budget: int | None
) -> tuple[Any, dict[str, Any]]:
    from optkit.serving import SCHEDULERS, simulate_report

    if scheduler not in SCHEDULERS:
        _fail(f"--policy: expected {', '.join(SCHEDULERS)} for serving, got {scheduler!r}")
    kwargs: dict[str, Any] = {}
    if order is not None:
        kwargs["order"] = order
    if token_budget is not None:
        kwargs["token_budget"] = token_budget
    try:
        res, row = simulate_report(inst, scheduler, assignment, **kwargs)
    except (ValueError, TypeError) as e:
        _fail(f"--assignment/--order/--token-budget: {e}")
    row["policy"] = f"{scheduler} ({assignment} assignment)"
    return res, row


def _simulate_kv(
    inst: Any, policy: str, plot_file: Path | None, quiet: bool
) -> tuple[Any, dict[str, Any]]:
    from optkit.kvcache import make
    from optkit.kvcache.driver import simulate_report

    try:
        make(policy)
    except ValueError as e:
        _fail(f"--policy: {e}")
    bar = None
    if not quiet and sys.stderr.isatty() and inst.steps >= 4096:
        from rich.progress import Progress

        bar = Progress(console=err, transient=True)
        bar.start()
        task = bar.add_task("replay", total=inst.steps)
    try:
        progress = (lambda t: bar.update(task, completed=t)) if bar is not None else None
        bins = 64 if plot_file is not None else 0
        try:
            rep, row = simulate_report(inst, policy, progress=progress, snapshot_bins=bins)
        except ValueError as e:
            _fail(f"--policy {policy}: {e}")
    finally:
        if bar is not None:
            bar.stop()
    if plot_file is not None:
        from optkit import plot

        assert rep.snapshots is not None and rep.snapshot_tokens is not None
        plot.kv_heatmap(
            rep.snapshots,
            -(-inst.tokens // 64),
            rep.snapshot_tokens,
            plot_file,
            title=f"{inst.name}: {row['policy']}, hit rate {rep.hit_rate:.1%}",
        )
    return rep, row


@generate_app.command("serving")
def generate_serving(
    trace: TraceOpt,
    model: ModelOpt,
    hardware: HardwareOpt,
    clients: Annotated[int, typer.Option("--clients", help="Serving instances.")],
    output_file: OutFileOpt = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Batch slots per client.")] = 256,
    memory_fraction: Annotated[
        float, typer.Option(help="Share of device memory usable for weights + KV.")
    ] = 0.9,
    arrivals: Annotated[
        bool, typer.Option(help="Keep the trace's arrival times (else all arrive at 0).")
    ] = True,
    limit: LimitOpt = None,
    offset: OffsetOpt = 0,
    name: NameOpt = None,
    tp: TpOpt = 1,
    dtype: DtypeOpt = "fp16",
    compute_eff: EffOpt = 1.0,
    memory_eff: EffOpt = 1.0,
    catalog: CatalogOpt = None,
) -> None:
    """A serving instance: clients of K devices each, iteration model from the cost model."""
    from optkit.serving.generate import serving_instance

    cat, m, hw = _entries(catalog, model, hardware)
    st = _setup(cat, hw, tp, dtype=dtype, compute_eff=compute_eff, memory_eff=memory_eff)
    tr = _trace(trace, offset, limit)
    try:
        inst = serving_instance(tr, m, hw, clients, st, max_batch, memory_fraction, arrivals, name)
    except ValueError as e:
        _fail(f"{trace}: {e}")
    _emit(
        inst.to_dict(),
        output_file,
        f"{inst.n} requests, {inst.clients} clients x {tp} {hw.key}, "
        f"{inst.kv_tokens} KV tokens and {inst.max_batch} slots per client",
    )


@generate_app.command("kv")
def generate_kv(
    model: ModelOpt,
    hardware: HardwareOpt,
    prompt: Annotated[int, typer.Option(help="Prompt tokens (KV after prefill).")],
    decode: Annotated[int, typer.Option(help="Decode tokens replayed.")],
    output_file: OutFileOpt = None,
    pattern: Annotated[
        str, typer.Option(help="full, lambda, heavy-hitter or page (Quest-like).")
    ] = "heavy-hitter",
    sparsity: Annotated[float, typer.Option(help="Share of the context NOT read per step.")] = 0.6,
    sinks: Annotated[int, typer.Option(help="Attention-sink tokens always read.")] = 4,
    window: Annotated[int, typer.Option(help="Most recent tokens always read.")] = 64,
    drift: Annotated[float, typer.Option(help="Share of the heavy set replaced per token.")] = 0.02,
    alpha: Annotated[float, typer.Option(help="Zipf exponent of token popularity.")] = 1.0,
    page: Annotated[int, typer.Option(help="Tokens per page (pattern page).")] = 16,
    seed: Annotated[int, typer.Option(help="Trace seed.")] = 0,
    hbm_gb: Annotated[
        float | None, typer.Option("--hbm-gb", help="HBM size (default: the device's).")
    ] = None,
    host_gbs: Annotated[
        float | None, typer.Option("--host-gbs", help="Host memory bandwidth override (GB/s).")
    ] = None,
    kv_scale: Annotated[
        float, typer.Option(help="Multiply the KV size (4: one K/V per query head, LLaMA-3.1-8B).")
    ] = 1.0,
    weights: Annotated[
        bool, typer.Option(help="Charge one layer's weight read to every step.")
    ] = False,
    mode: Annotated[str, typer.Option(help="exclusive or inclusive.")] = "exclusive",
    name: NameOpt = None,
    dtype: DtypeOpt = "fp16",
    catalog: CatalogOpt = None,
) -> None:
    """A KV-placement instance: tiers from the catalog, KV size from the model, a trace pattern."""
    from optkit.io import FieldError
    from optkit.kvcache.generate import describe, kv_instance
    from optkit.kvcache.trace import Pattern

    cat, m, hw = _entries(catalog, model, hardware)
    st = _setup(cat, hw, dtype=dtype)
    try:
        pat = Pattern(pattern, sparsity, sinks, window, drift, alpha, page, seed)
        inst = kv_instance(
            m, hw, prompt, decode, pat, st, hbm_gb, kv_scale, host_gbs, weights, mode, name
        )
    except FieldError as e:
        _fail(f"--{e.field.split('.')[-1]}: expected {e.expected}, got {e.got!r}")
    except ValueError as e:
        _fail(str(e))
    d = describe(inst)
    _emit(
        inst.to_dict(),
        output_file,
        f"{inst.layers} layers x {prompt}+{decode} tokens, {inst.unit_bytes / 1024:g} KiB per "
        f"unit, HBM holds {d['hbm_share_of_kv']:.0%} of the final KV",
    )


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
