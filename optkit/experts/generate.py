"""Expert-cache instances from the catalog and a routing trace.

Expert bytes: ``mlp_mats × hidden × expert_ffn`` weights at the setup's stored bits
per weight. Compute per layer step (roofline): the layer's attention weights and the
experts the step uses read once from device memory, or the FLOP time when larger —
decode (batch 1): k experts, 2 FLOP per weight; prefill (``batch`` B tokens per step):
the mean size ū of the union of a batch's experts, 2·B·(attn + k·expert) weight FLOPs
(attention scores, quadratic in the prompt, are left out: a lower estimate). The link
is the hardware's host link (catalog, per direction) with its latency.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from optkit.experts.instance import ExpertInstance


def expert_instance(
    model: Any,
    hardware: Any,
    routing: np.ndarray,
    cache_share: float,
    setup: Any,
    name: str | None = None,
    source: dict[str, Any] | None = None,
    batch: int = 1,
) -> ExpertInstance:
    """``cache_share`` of all experts fit in the GPU's expert slots (at least top-k)."""
    if not model.is_moe:
        raise ValueError(f"model {model.key!r} is not a mixture of experts")
    if not 0 < cache_share <= 1:
        raise ValueError(f"cache share: expected a number in (0, 1], got {cache_share}")
    L, E, k = routing.shape[1], model.experts, model.top_k
    moe_layers = model.layers - model.dense_layers
    if moe_layers != L or routing.shape[2] != k or routing.max() >= E:
        raise ValueError(
            f"routing of {L} layers x top-{routing.shape[2]} does not fit {model.key} "
            f"({moe_layers} MoE layers, {E} experts, top-{k})"
        )
    bits = setup.precision.weight_storage_bits
    d, dh = model.hidden, model.head_dim
    expert_bytes = model.mlp_mats * d * model.expert_ffn * bits / 8
    attn_bytes = (d * (model.heads + 2 * model.kv_heads) * dh + model.heads * dh * d) * bits / 8
    if not 1 <= batch <= 100_000:
        raise ValueError(f"prefill batch: expected 1..100,000 tokens, got {batch}")
    union = float(k)
    if batch > 1:  # the mean number of distinct experts a batch's tokens use per layer
        n = -(-len(routing) // batch) * batch
        pad = np.concatenate([routing, np.repeat(routing[-1:], n - len(routing), axis=0)])
        chunks = pad.reshape(-1, batch, L, k)
        hit = np.zeros((len(chunks), L, E), dtype=bool)
        for j in range(batch):
            np.put_along_axis(hit, chunks[:, j], True, axis=2)
        union = float(hit.sum(axis=2).mean())
    layer_bytes = attn_bytes + union * expert_bytes
    flops = 2 * batch * (attn_bytes + k * expert_bytes) * 8 / bits  # 2 FLOP per weight
    peak = hardware.peak_flops(setup.precision.math_type) * setup.efficiency.compute
    bw = hardware.bandwidth_gbs * 1e9 * setup.efficiency.memory
    c = max(layer_bytes / bw, flops / peak)
    capacity = max(k, math.floor(cache_share * L * E))
    link = hardware.host_link
    return ExpertInstance(
        layers=L,
        experts=E,
        top_k=k,
        expert_bytes=float(expert_bytes),
        capacity=int(capacity),
        bandwidth=link.bandwidth_gbs * 1e9,
        latency=link.latency_us * 1e-6,
        compute=np.full(L, c),
        routing=routing,
        batch=batch,
        name=name
        or f"{model.key}-{hardware.key}-c{capacity}" + (f"-b{batch}" if batch > 1 else ""),
        meta={
            "model": model.key,
            "hardware": hardware.key,
            "link": link.key,
            "precision": setup.precision.label,
            "cache_share": cache_share,
            **(source or {}),
        },
    )
