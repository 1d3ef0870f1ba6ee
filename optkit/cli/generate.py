"""``optkit generate``: instances built from request traces and the cost model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from optkit.cli.common import app, err, fail
from optkit.cli.costmodel import (
    CatalogOpt,
    DtypeOpt,
    EffOpt,
    GroupOpt,
    HardwareOpt,
    ModelOpt,
    PpOpt,
    TimesOpt,
    TpOpt,
    entries,
    setup,
    times_mode,
)
from optkit.io import InputError, write_json

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
        fail(str(e))
    if len(tr) == 0:
        fail(f"{path}: --offset {offset}: no requests left (the trace has fewer)")
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

    cat, m, hw = entries(catalog, model, hardware)
    st = setup(cat, hw, tp, pp, dtype, group_size, compute_eff=compute_eff, memory_eff=memory_eff)
    tr = _trace(trace, offset, limit)
    try:
        doc = makespan_instance(tr, m, hw, devices, st, batch, name)
    except ValueError as e:
        fail(f"--devices/--batch: {e}")
    _emit(doc, output_file, f"{len(tr)} jobs on {doc['machines']} machines")


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
    efficiency: TimesOpt = "calibrated",
    catalog: CatalogOpt = None,
) -> None:
    """A serving instance: clients of K devices each, iteration model from the cost model."""
    from optkit.serving.generate import serving_instance

    times_mode(efficiency, compute_eff=compute_eff, memory_eff=memory_eff)
    cat, m, hw = entries(catalog, model, hardware)
    st = setup(cat, hw, tp, dtype=dtype, compute_eff=compute_eff, memory_eff=memory_eff)
    tr = _trace(trace, offset, limit)
    try:
        inst = serving_instance(
            tr, m, hw, clients, st, max_batch, memory_fraction, arrivals, name, efficiency
        )
    except ValueError as e:
        fail(f"{trace}: {e}")
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
    host_tier: Annotated[
        list[str] | None,
        typer.Option(
            "--host-tier",
            help="Catalog tier behind the host link (repeatable, in order: DRAM, then CXL or "
            "NVMe); default: the device's own host memory.",
        ),
    ] = None,
    name: NameOpt = None,
    dtype: DtypeOpt = "fp16",
    efficiency: TimesOpt = "calibrated",
    catalog: CatalogOpt = None,
) -> None:
    """A KV-placement instance: tiers from the catalog, KV size from the model, a trace pattern."""
    from optkit.io import FieldError
    from optkit.kvcache.generate import describe, kv_instance
    from optkit.kvcache.patterns import Pattern

    times_mode(efficiency)
    cat, m, hw = entries(catalog, model, hardware)
    st = setup(cat, hw, dtype=dtype)
    try:
        pat = Pattern(pattern, sparsity, sinks, window, drift, alpha, page, seed)
        inst = kv_instance(
            m,
            hw,
            prompt,
            decode,
            pat,
            st,
            hbm_gb,
            kv_scale,
            host_gbs,
            weights,
            mode,
            name,
            tuple(_tier(cat, k) for k in host_tier or ()),
            efficiency,
        )
    except FieldError as e:
        fail(f"--{e.field.split('.')[-1]}: expected {e.expected}, got {e.got!r}")
    except ValueError as e:
        fail(str(e))
    d = describe(inst)
    _emit(
        inst.to_dict(),
        output_file,
        f"{inst.layers} layers x {prompt}+{decode} tokens, {inst.unit_bytes / 1024:g} KiB per "
        f"unit, HBM holds {d['hbm_share_of_kv']:.0%} of the final KV",
    )


@generate_app.command("experts")
def generate_experts(
    routing: Annotated[
        Path, typer.Option("--routing", help="Routing JSON Lines (Mixtral format).")
    ],
    model: ModelOpt,
    hardware: HardwareOpt,
    output_file: OutFileOpt = None,
    problem_id: Annotated[
        int | None, typer.Option("--problem-id", help="Problem of the routing file.")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset of the routing file.")] = None,
    cache_share: Annotated[
        float, typer.Option("--cache-share", help="Share of all experts the GPU holds.")
    ] = 0.25,
    name: NameOpt = None,
    dtype: DtypeOpt = "fp16",
    catalog: CatalogOpt = None,
    synthetic: Annotated[
        int | None,
        typer.Option(
            "--synthetic",
            help="Generate this many tokens from statistics fitted to the routing file "
            "(popularity, layer-to-layer transitions, token-to-token reuse).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --synthetic.")] = 0,
    prefill_batch: Annotated[
        int,
        typer.Option(
            "--prefill-batch",
            help="Prefill: this many tokens pass each layer together and need the union "
            "of their experts (1: decode, token by token).",
        ),
    ] = 1,
) -> None:
    """An expert-cache instance: a routing trace on a model and a GPU from the catalog."""
    from optkit.experts.generate import expert_instance
    from optkit.experts.trace import read_routing
    from optkit.io import FieldError

    cat, m, hw = entries(catalog, model, hardware)
    st = setup(cat, hw, dtype=dtype)
    try:
        r = read_routing(routing, dataset, problem_id)
        source: dict[str, Any] = {
            "routing": str(routing),
            "dataset": dataset,
            "problem_id": problem_id,
        }
        if synthetic is not None:
            from optkit.experts.synth import fit, generate

            if not 1 <= synthetic <= 1_000_000:
                fail(f"--synthetic: expected 1..1,000,000 tokens, got {synthetic}")
            r = generate(fit(r, m.experts), synthetic, seed)
            source = {"fitted_to": source, "synthetic_tokens": synthetic, "seed": seed}
        inst = expert_instance(
            m,
            hw,
            r,
            cache_share,
            st,
            name,
            source,
            prefill_batch,
        )
    except FieldError as e:
        fail(f"{routing}: {e}")
    except ValueError as e:
        fail(str(e))
    _emit(
        inst.to_dict(),
        output_file,
        f"{inst.tokens} tokens"
        + (f" in batches of {inst.batch}" if inst.batch > 1 else "")
        + f" x {inst.layers} layers, {inst.capacity} of {inst.units} experts "
        f"on the GPU, {inst.expert_bytes / 1e6:.0f} MB each, load {inst.load_time * 1e3:.2f} ms",
    )


def _tier(cat: Any, key: str) -> Any:
    try:
        return cat.get_tier(key)
    except KeyError as e:
        fail(f"--host-tier: {e.args[0]}")


@generate_app.command("realtime")
def generate_realtime(
    scenario: Annotated[Path, typer.Option("--scenario", help="XRBench usage scenario (.m file).")],
    output_file: OutFileOpt = None,
    platform: Annotated[str, typer.Option(help="Platform of catalog backends.")] = "ryzen-ai",
    llm: Annotated[
        str | None, typer.Option("--llm", help="LLM assistant from the catalog (needs --trace).")
    ] = None,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="Request trace for the assistant (Azure CSV).")
    ] = None,
    offset: OffsetOpt = 0,
    rate: Annotated[float, typer.Option(help="Assistant requests per second.")] = 0.5,
    ttft: Annotated[float, typer.Option(help="TTFT target (s).")] = 1.0,
    tps: Annotated[float, typer.Option(help="Decode target (tokens/s).")] = 10.0,
    max_output: Annotated[
        int | None, typer.Option("--max-output", help="Cap on output tokens per request.")
    ] = None,
    horizon: Annotated[float, typer.Option(help="Seconds of releases.")] = 1.0,
    efficiency: Annotated[
        float, typer.Option(help="Fraction of peak FLOP/s and bandwidth reached (0, 1].")
    ] = 1.0,
    dtype: Annotated[str, typer.Option(help="Datatype of the perception networks.")] = "int8",
    jitter: Annotated[float, typer.Option(help="Release jitter (s, at most half a period).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of jitter and cascade activations.")] = 0,
    no_interference: Annotated[
        bool, typer.Option("--no-interference", help="Backends do not share bandwidth.")
    ] = False,
    name: NameOpt = None,
) -> None:
    """A real-time instance: an XRBench scenario on a SoC, with an LLM assistant."""
    from optkit.io import FieldError
    from optkit.realtime.generate import realtime_instance
    from optkit.realtime.instance import RealtimeInstance

    tr = None
    if llm is not None:
        if trace is None:
            fail("--llm needs --trace (the requests' arrivals and lengths)")
        tr = _trace(trace, offset, None)
    try:
        doc = realtime_instance(
            scenario,
            platform=platform,
            dtype=dtype,
            horizon=horizon,
            llm=llm,
            trace=tr,
            rate=rate,
            ttft=ttft,
            tps=tps,
            max_output=max_output,
            efficiency=efficiency,
            jitter=jitter,
            seed=seed,
            interference=not no_interference,
            name=name,
        )
        inst = RealtimeInstance.from_dict(doc)
        n = len(inst.jobs)
    except InputError as e:
        fail(str(e))
    except FieldError as e:
        fail(f"{scenario}: {e}")
    except ValueError as e:
        fail(str(e))
    _emit(
        doc,
        output_file,
        f"{len(inst.tasks)} tasks, {len(inst.sessions)} LLM sessions, {n} jobs on "
        + ", ".join(inst.backend_names),
    )
