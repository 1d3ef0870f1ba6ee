"""KV-placement instances from the cost-model catalog (model shape, HBM, host memory, link)."""

from __future__ import annotations

import math
from typing import Any

from optkit.costmodel.catalog import Hardware, Model
from optkit.costmodel.roofline import Setup, kv_bytes_per_token_layer, weight_bytes
from optkit.kvcache.instance import KvInstance, Tier
from optkit.kvcache.patterns import Pattern, PatternTrace


def kv_instance(
    model: Model,
    hardware: Hardware,
    prompt: int,
    decode: int,
    pattern: Pattern,
    setup: Setup = Setup(),
    hbm_gb: float | None = None,
    kv_scale: float = 1.0,
    host_gbs: float | None = None,
    weights_per_step: bool = False,
    mode: str = "exclusive",
    name: str | None = None,
    host_tiers: tuple[Any, ...] = (),
    efficiency: str = "calibrated",
) -> KvInstance:
    """HBM (``hbm_gb`` or the device's memory) minus the weights holds KV; the host
    memory behind the host link is the external tier.

    ``host_tiers`` (catalog tiers, e.g. DDR5 behind a PCIe GPU, then CXL or NVMe) replace
    the device's host memory (its catalog platform: the DGX/HGX host's DDR for a PCIe
    GPU, LPDDR5X for GH200). Every host tier is reached through the GPU's one host link,
    so they share it: its bandwidth is charged once per direction for all of them.

    ``kv_scale`` multiplies the GQA-correct KV size (4 for LLaMA-3.1-8B gives every
    query head its own K/V, as the paper's simulator did); ``host_gbs`` overrides the
    host memory bandwidth; ``weights_per_step`` adds one layer's weight read to
    every step.

    ``efficiency``: ``calibrated`` reads HBM at the memory efficiency fitted to measured
    decode-attention kernels (the same KV read; ``optkit.costmodel`` calibration), a
    prediction of the real GPU; ``roofline`` at the datasheet bandwidth, so bounds of the
    instance are bounds on the real machine. Host tiers and links stay at their datasheet
    bandwidths either way (no measurement covers them). ``generated_by`` records which.
    """
    if efficiency not in ("calibrated", "roofline"):
        raise ValueError(f"efficiency: expected calibrated or roofline, got {efficiency!r}")
    if hardware.host_memory is None and not host_tiers:
        raise ValueError(
            f"hardware {hardware.key!r} has no host memory tier in the catalog: give the "
            "platform's host tiers (e.g. ddr5-4800-8ch; see `optkit catalog tiers`)"
        )
    if prompt < 1 or decode < 1:
        raise ValueError("prompt and decode must be >= 1")
    for what, v in (("hbm_gb", hbm_gb), ("host_gbs", host_gbs), ("kv_scale", kv_scale)):
        if v is not None and not 0 < v < math.inf:
            raise ValueError(f"{what}: expected a finite number > 0, got {v}")
    wb = float(weight_bytes(model, setup))
    hbm = (hbm_gb if hbm_gb is not None else hardware.memory_gb) * 1e9
    if hbm <= wb:
        raise ValueError(
            f"hbm_gb: {hbm / 1e9:g} GB of HBM does not hold the {wb / 1e9:.3g} GB of weights"
        )
    s = float(kv_bytes_per_token_layer(model, setup.precision)) * kv_scale
    link = hardware.host_link.bandwidth_gbs * 1e9
    external = tuple(host_tiers) or (hardware.host_memory,)
    hbm_peak = hardware.bandwidth_gbs * 1e9
    eta, meta = 1.0, {"times": "roofline", "hbm_bandwidth_peak": hbm_peak}
    if efficiency == "calibrated":
        from optkit.costmodel.fit import default_calibration
        from optkit.costmodel.predict import has_calibration

        if has_calibration(hardware):
            eta = default_calibration().eta_attn_decode
            meta.update(times="calibrated", hbm_efficiency=eta)
        else:
            meta["times_note"] = f"{hardware.key} has no calibration: datasheet bandwidths"
    meta["host_note"] = "host tiers and links at datasheet bandwidths (not measured)"
    tiers = (
        Tier("hbm", hbm - wb, hbm_peak * eta),
        *tuple(
            Tier(
                t.key,
                t.capacity_gb * 1000000000.0,
                ((host_gbs if i == 0 else None) or t.bandwidth_gbs) * 1000000000.0,
                link,
                link,
                hardware.host_link.key,
            )
            for i, t in enumerate(external)
        ),
    )
    L = model.layers
    label = name or (
        f"{model.key}-{hardware.key}-p{prompt}-d{decode}-{pattern.kind}-s{pattern.sparsity:g}"
        + (f"-kv{kv_scale:g}x" if kv_scale != 1 else "")
    )
    return KvInstance(
        tiers=tiers,
        unit_bytes=s,
        layers=L,
        prompt=prompt,
        decode=decode,
        trace=PatternTrace(pattern, L, prompt, decode),
        weight_bytes=wb / L if weights_per_step else 0.0,
        mode=mode,
        name=label,
        trace_spec=pattern.to_dict(),
        meta={"model": model.key, "hardware": hardware.key, **meta},
    )


def describe(inst: KvInstance) -> dict[str, Any]:
    """Sizes worth printing when an instance is written."""
    kv_total = inst.unit_bytes * inst.units_total
    return {
        "kv_gb_final": kv_total / 1e9,
        "hbm_kv_gb": inst.tiers[0].capacity / 1e9,
        "hbm_share_of_kv": inst.tiers[0].capacity / kv_total,
    }


def small_random(seed: int, mode: str = "exclusive") -> KvInstance:
    """A small instance in real units for property tests and cross-solver checks: the
    GH200 tiers (HBM 4.9 TB/s, LPDDR5X 500 GB/s behind a 450 GB/s link), 16 KiB units,
    2 layers, a 8-16 token prompt, 4-6 decode tokens, room for 4-8 units in HBM and a
    heavy-hitter trace; objectives are about a microsecond."""
    import numpy as np

    rng = np.random.default_rng(seed)
    s = 16384.0
    prompt, decode = int(rng.integers(8, 17)), int(rng.integers(4, 7))
    pattern = Pattern(
        "heavy-hitter",
        sparsity=float(rng.choice([0.3, 0.5, 0.6])),
        sinks=1,
        window=2,
        seed=int(rng.integers(0, 2**31)),
    )
    ext = s * 2 * (prompt + decode)
    tiers = (
        Tier("hbm", s * int(rng.integers(4, 9)), 4.9e12),
        Tier("lpddr5x", ext, 5e11, 4.5e11, 4.5e11),
    )
    return KvInstance(
        tiers,
        s,
        2,
        prompt,
        decode,
        PatternTrace(pattern, 2, prompt, decode),
        mode=mode,
        name=f"small-random-{seed}",
        trace_spec=pattern.to_dict(),
    )
