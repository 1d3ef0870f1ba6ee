"""One configuration's headline numbers (the ``optkit cost`` contract)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from optkit.costmodel.catalog import Catalog, Hardware, Model
from optkit.costmodel.predict import decode_total_time as calibrated_decode_total
from optkit.costmodel.predict import forward_time, has_calibration
from optkit.costmodel.roofline import (
    Efficiency,
    KvTier,
    Setup,
    decode_total_time,
    forward,
    memory_bytes,
)


def kv_tiers_from_spec(
    specs: list[str], hardware: Hardware, catalog: Catalog
) -> tuple[KvTier, ...]:
    """``FRACTION:TIER`` items -> tiers read over the device's host link.

    The bandwidth seen from the device is ``min(tier bandwidth, host link per direction)``.
    """
    out = []
    for spec in specs:
        frac, _, key = spec.partition(":")
        try:
            f = float(frac)
        except ValueError:
            raise ValueError(
                f"kv tier '{spec}': expected FRACTION:TIER, e.g. 0.3:ddr5-4800-8ch"
            ) from None
        tier = catalog.get_tier(key) if key else hardware.host_memory
        if tier is None:
            raise ValueError(f"kv tier '{spec}': {hardware.key} has no host memory; name a tier")
        out.append(KvTier(f, min(tier.bandwidth_gbs, hardware.host_link.bandwidth_gbs)))
    return tuple(out)


def summary(
    model: Model,
    hardware: Hardware,
    batch: int,
    input_tokens: int,
    output_tokens: int,
    setup: Setup = Setup(),
    efficiency: str = "calibrated",
) -> dict[str, Any]:
    """Prefill, one decode step at the final context, the whole request, memory, bottleneck.

    ``efficiency="calibrated"`` (default) predicts real hardware with the calibrated
    kernel model where the device has calibration data (``calibrated`` says whether it
    did); ``"roofline"`` gives the roofline with the setup's efficiencies. The pure
    roofline, a proven lower bound, is always beside them as ``*_lb_s``."""
    if efficiency not in ("calibrated", "roofline"):
        raise ValueError(f"efficiency: expected calibrated or roofline, got {efficiency!r}")
    if batch < 1 or input_tokens < 1 or output_tokens < 1:
        raise ValueError("batch, input and output must be >= 1")
    if not model.decoder and output_tokens > 1:
        raise ValueError(f"{model.key} is an encoder: it has no decode (use one output token)")
    pre = forward(model, hardware, batch, input_tokens, 0, setup)
    final_ctx = input_tokens + output_tokens - 1
    dec = forward(model, hardware, batch, 1, max(final_ctx - 1, 0), setup)
    prefill_s = float(pre.time_s)
    # request_time = prefill + the decode steps; the prefill is already computed above
    decode_total = float(
        decode_total_time(model, hardware, batch, input_tokens, output_tokens - 1, setup)
    )
    req = prefill_s + decode_total
    pure = replace(setup, efficiency=Efficiency())
    lb = {
        "prefill_lb_s": float(forward(model, hardware, batch, input_tokens, 0, pure).time_s),
        "decode_step_lb_s": float(
            forward(model, hardware, batch, 1, max(final_ctx - 1, 0), pure).time_s
        ),
    }
    lb["request_lb_s"] = lb["prefill_lb_s"] + float(
        decode_total_time(model, hardware, batch, input_tokens, output_tokens - 1, pure)
    )
    calibrated = efficiency == "calibrated" and has_calibration(hardware)
    decode_step_s = float(dec.time_s)
    if calibrated:
        prefill_s = float(forward_time(model, hardware, batch, input_tokens, 0, pure)[0])
        decode_step_s = float(
            forward_time(model, hardware, batch, 1, max(final_ctx - 1, 0), pure)[0]
        )
        decode_total = float(
            calibrated_decode_total(model, hardware, batch, input_tokens, output_tokens - 1, pure)
        )
        req = prefill_s + decode_total
    mem = memory_bytes(model, batch, final_ctx, setup, tokens=input_tokens)
    devices = setup.tp * setup.pp
    phase = dec if decode_total > prefill_s else pre
    capacity = hardware.memory_gb * 1e9
    return {
        "model": model.key,
        "hardware": hardware.key,
        "batch": batch,
        "input": input_tokens,
        "output": output_tokens,
        "tp": setup.tp,
        "pp": setup.pp,
        "devices": devices,
        "precision": setup.precision.label,
        "attention": setup.attention.kind,
        "efficiency": "calibrated" if calibrated else "roofline",
        "calibrated": calibrated,
        "prefill_s": prefill_s,
        "decode_step_s": decode_step_s,
        "request_s": req,
        **lb,
        "ttft_s": prefill_s,
        "tpot_s": decode_total / (output_tokens - 1) if output_tokens > 1 else 0.0,
        "throughput_tok_s": batch * output_tokens / req,
        "memory_bytes": float(mem["total"]),
        "memory": {k: float(v) for k, v in mem.items()},
        "memory_capacity_bytes": capacity,
        "fits": bool(mem["total"] <= capacity),
        "bottleneck": str(phase.bottleneck),
        "prefill_bottleneck": str(pre.bottleneck),
        "decode_bottleneck": str(dec.bottleneck),
        "decode_ops_s": {k: float(np.asarray(v)) for k, v in dec.ops.items()},
    }
