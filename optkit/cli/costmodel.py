"""``optkit cost`` and ``optkit catalog``: the roofline cost model and its catalogs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from optkit.cli.common import JsonOpt, app, err, fail, out
from optkit.io import InputError

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
TimesOpt = Annotated[
    str,
    typer.Option(
        "--efficiency",
        help="calibrated (times predicted for the real GPU from measured kernels; the "
        "roofline where a device has no calibration) or roofline (datasheet peaks: a proven "
        "lower bound, with the --*-eff fractions where offered).",
    ),
]


def times_mode(efficiency: str, **fractions: float) -> str:
    """``efficiency`` checked (exit 2): calibrated or roofline, and efficiency fractions
    (option name -> value) only with roofline."""
    if efficiency not in ("calibrated", "roofline"):
        fail(f"--efficiency: expected calibrated or roofline, got {efficiency!r}")
    given = [k for k, v in fractions.items() if v != 1.0]
    if efficiency == "calibrated" and given:
        names = "/".join(f"--{k.replace('_', '-')}" for k in fractions)
        fail(f"{names} apply to --efficiency roofline")
    return efficiency


def catalog_of(files: list[Path] | None) -> Any:
    from optkit.costmodel import load_catalog

    try:
        return load_catalog(files or [])
    except InputError as e:
        fail(str(e))


def entries(files: list[Path] | None, model: str, hardware: str) -> tuple[Any, Any, Any]:
    """(catalog, model, hardware) from the built-in catalog plus ``--catalog`` files."""
    cat = catalog_of(files)
    try:
        return cat, cat.get_model(model), cat.get_hardware(hardware)
    except KeyError as e:
        fail(f"--model/--hardware: {e.args[0]}")
    raise AssertionError  # unreachable


def setup(
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
        fail(str(e.args[0] if isinstance(e, KeyError) else e))
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
    efficiency: TimesOpt = "calibrated",
    catalog: CatalogOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Latency, throughput, memory and bottleneck of one configuration; the roofline
    (a proven lower bound) beside the prediction."""
    times_mode(efficiency, compute_eff=compute_eff, memory_eff=memory_eff, network_eff=network_eff)
    from optkit.costmodel.summary import summary

    cat, m, hw = entries(catalog, model, hardware)
    st = setup(
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
        row = summary(m, hw, batch, input, output, st, efficiency)
    except ValueError as e:
        fail(str(e))
    if json_out:
        print(json.dumps(row))
        return
    kind = "calibrated" if row["calibrated"] else "roofline"
    t = Table(title=f"{m.name} on {st.tp * st.pp} x {hw.name} ({st.precision.label}, {kind})")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("roofline (lower bound)", justify="right")
    t.add_row(
        "prefill (TTFT)",
        f"{_secs(row['prefill_s'])}  [{row['prefill_bottleneck']}]",
        _secs(row["prefill_lb_s"]),
    )
    t.add_row(
        "decode step at final context",
        f"{_secs(row['decode_step_s'])}  [{row['decode_bottleneck']}]",
        _secs(row["decode_step_lb_s"]),
    )
    t.add_row("time per output token", _secs(row["tpot_s"]))
    t.add_row("whole request", _secs(row["request_s"]), _secs(row["request_lb_s"]))
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

    cat = catalog_of(catalog)
    tables = {
        "hardware": cat.hardware,
        "models": cat.models,
        "tiers": cat.tiers,
        "links": cat.links,
    }
    if section not in tables:
        fail(f"section: expected hardware, models, tiers or links, got {section!r}")
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


@app.command()
def calibrate(
    profiles: Annotated[
        Path, typer.Option("--profiles", help="Folder of kernel-time CSVs (Vidur layout).")
    ],
    hardware: Annotated[str, typer.Option(help="Catalog key of the profiled device.")],
    output: Annotated[
        Path | None, typer.Option("--out", help="Calibration YAML to write (default: stdout).")
    ] = None,
    catalog: Annotated[
        list[Path] | None, typer.Option(help="Extra catalog YAML files (repeatable).")
    ] = None,
) -> None:
    """Fit the calibrated kernel model to measured kernel times of one device."""
    import yaml

    from optkit.costmodel.fit import calibration_document, device_of, fit, read_profiles
    from optkit.io import atomic_write

    cat = catalog_of(catalog)
    try:
        hw = cat.get_hardware(hardware)
    except KeyError as e:
        fail(f"--hardware: {e.args[0] if e.args else e}")
    try:
        dev = device_of(hw)
    except KeyError as e:
        fail(f"--hardware: {e.args[0]}")
    try:
        kernels = read_profiles(profiles)
    except InputError as e:
        fail(str(e))
    n = sum(len(k) for k in kernels.values())
    files = sorted(p.name for p in profiles.glob("*.csv"))
    source = f"fitted by optkit calibrate on {n:,} kernels of {hardware} ({', '.join(files)})"
    cal = fit(kernels, dev, source)
    text = yaml.safe_dump(calibration_document(cal, hardware, dev, kernels), sort_keys=False)
    if output is None:
        out.print(text, end="", markup=False, highlight=False)
    else:
        atomic_write(output, text)
        err.print(f"wrote {output}: {n:,} kernels fitted")
