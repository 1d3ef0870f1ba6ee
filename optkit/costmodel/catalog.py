"""The catalog's schema: hardware, memory tiers, links and models, each number with
its source (``sources``). The YAML files are read by :mod:`optkit.costmodel.loader`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MATH_TYPES = ("fp16", "bf16", "fp8", "int8", "int4")
KINDS = ("gpu", "cpu", "npu", "fpga")


@dataclass(frozen=True)
class Link:
    """A point-to-point link; bandwidth is per direction."""

    key: str
    name: str
    bandwidth_gbs: float
    latency_us: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Tier:
    """A memory tier (device-local or behind a link)."""

    key: str
    name: str
    capacity_gb: float
    bandwidth_gbs: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Fpga:
    dsp: float
    clock_mhz: float
    macs_per_dsp: Mapping[str, float]
    onchip_mb: float


@dataclass(frozen=True)
class Hardware:
    """One device. ``tflops[t]`` is the dense peak for math type ``t`` (1e12 op/s)."""

    key: str
    name: str
    kind: str
    tflops: Mapping[str, float]
    memory_gb: float
    bandwidth_gbs: float
    interconnect: Link
    host_link: Link
    host_memory: Tier | None = None
    fpga: Fpga | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def peak_flops(self, math_type: str) -> float:
        """Dense peak in FLOP/s for ``math_type``; the 16-bit rate when the device lacks it
        (never a faster type's rate: that would under-estimate times)."""
        t = self.tflops.get(math_type) or self.tflops.get("fp16") or self.tflops["bf16"]
        return t * 1e12

    @property
    def onchip_bytes(self) -> float:
        return self.fpga.onchip_mb * 1e6 if self.fpga else 0.0


@dataclass(frozen=True)
class Model:
    """Transformer shape. MoE fields are 0 for a dense model."""

    key: str
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    ffn_gated: bool
    vocab: int
    context: int
    tied_embeddings: bool = False
    decoder: bool = True
    experts: int = 0
    top_k: int = 0
    expert_ffn: int = 0
    shared_ffn: int = 0
    dense_layers: int = 0
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def mlp_mats(self) -> int:
        """Weight matrices of one MLP: 3 for a gated MLP, 2 otherwise."""
        return 3 if self.ffn_gated else 2

    def parameters(self) -> dict[str, float]:
        """Parameter counts: ``total`` and ``active`` per token (norms and biases omitted)."""
        d, dh = self.hidden, self.head_dim
        attn = d * (self.heads + 2 * self.kv_heads) * dh + self.heads * dh * d
        emb = self.vocab * d * (1 if self.tied_embeddings else 2)
        dense_mlp = self.mlp_mats * d * self.ffn
        if not self.is_moe:
            total = self.layers * (attn + dense_mlp) + emb
            return {"total": float(total), "active": float(total)}
        moe_layers = self.layers - self.dense_layers
        per_expert = self.mlp_mats * d * self.expert_ffn
        shared = self.mlp_mats * d * self.shared_ffn
        router = d * self.experts
        base = self.layers * attn + self.dense_layers * dense_mlp + emb
        total = base + moe_layers * (self.experts * per_expert + shared + router)
        active = base + moe_layers * (self.top_k * per_expert + shared + router)
        return {"total": float(total), "active": float(active)}


@dataclass
class Catalog:
    links: dict[str, Link] = field(default_factory=dict)
    tiers: dict[str, Tier] = field(default_factory=dict)
    hardware: dict[str, Hardware] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)

    def get_hardware(self, key: str) -> Hardware:
        return _lookup(self.hardware, key, "hardware")

    def get_model(self, key: str) -> Model:
        return _lookup(self.models, key, "model")

    def get_tier(self, key: str) -> Tier:
        return _lookup(self.tiers, key, "tier")

    def get_link(self, key: str) -> Link:
        return _lookup(self.links, key, "link")


def _lookup(table: Mapping[str, Any], key: str, what: str) -> Any:
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, list(table), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"unknown {what} '{key}'{hint} (known: {', '.join(sorted(table))})")
