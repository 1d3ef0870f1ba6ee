"""Number formats of weights, activations and the KV cache."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    """Bits of weights, activations and KV; integer formats below 8 bits carry
    one ``scale_bits`` scale (and a zero point if ``zero_point``) per group.

    ``float8`` says an 8-bit format is FP8 rather than INT8 (which math unit runs it).
    """

    weight_bits: float = 16
    act_bits: float = 16
    kv_bits: float = 16
    group_size: int = 128
    kv_group_size: int = 64
    scale_bits: float = 16
    zero_point: bool = False
    float8: bool = False

    def __post_init__(self) -> None:
        for name in ("weight_bits", "act_bits", "kv_bits"):
            v = getattr(self, name)
            if not 1 <= v <= 32:
                raise ValueError(f"{name} must be between 1 and 32, got {v}")
        if self.group_size < 1 or self.kv_group_size < 1:
            raise ValueError("group sizes must be positive")

    def _stored(self, bits: float, group: int) -> float:
        if bits >= 8:
            return float(bits)  # per-channel / per-tensor scales: negligible
        return bits + self.scale_bits * (2 if self.zero_point else 1) / group

    @property
    def weight_storage_bits(self) -> float:
        """Bits stored per weight including group scales: ``b_w'`` in the formulation."""
        return self._stored(self.weight_bits, self.group_size)

    @property
    def kv_storage_bits(self) -> float:
        return self._stored(self.kv_bits, self.kv_group_size)

    @property
    def math_type(self) -> str:
        """Math unit: 8-bit (or less) weights and activations run on fp8/int8, else fp16."""
        if self.weight_bits <= 8 and self.act_bits <= 8:
            return "fp8" if self.float8 else "int8"
        return "fp16"

    @property
    def label(self) -> str:
        w, a, k = (f"{x:g}" for x in (self.weight_bits, self.act_bits, self.kv_bits))
        if w == a == k:
            return {"16": "fp16", "8": "fp8" if self.float8 else "int8", "32": "fp32"}.get(
                w, f"w{w}a{a}kv{k}"
            )
        return f"w{w}a{a}kv{k}"

    @classmethod
    def parse(cls, text: str, group_size: int = 128) -> Precision:
        """``fp16``, ``bf16``, ``fp8``, ``int8``, ``fp32``, or ``wXaY[kvZ]`` (``w2a8kv4``)."""
        t = text.strip().lower()
        named = {
            "fp16": cls(),
            "bf16": cls(),
            "fp32": cls(32, 32, 32),
            "fp8": cls(8, 8, 8, float8=True),
            "int8": cls(8, 8, 8),
            "int4": cls(4, 16, 16, group_size=group_size),
        }
        if t in named:
            return named[t]
        m = re.fullmatch(r"w(\d+)a(\d+)(?:kv(\d+))?", t)
        if not m:
            raise ValueError(
                f"unknown precision '{text}': expected fp16, bf16, fp32, fp8, int8, int4 "
                "or wXaY[kvZ] such as w4a16, w8a8, w2a8kv4"
            )
        w, a = int(m.group(1)), int(m.group(2))
        kv = int(m.group(3)) if m.group(3) else max(a, 8) if a < 16 else 16
        return cls(w, a, kv, group_size=group_size)
