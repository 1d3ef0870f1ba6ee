"""Calibrated kernel times (formulations/costmodel.md, "Calibrated kernel times"):
the roofline's FLOPs and bytes of a kernel, divided by shape-dependent efficiencies,
plus per-kernel floors. The constants are device-independent (fitted on A100 kernel
measurements by :mod:`optkit.costmodel.fit`); a device enters through its datasheet
peak FLOP/s, bandwidth and SM count. Vectorised: every shape argument may be an array.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

ArrayLike = Any
TILE = 128  # output tile edge of a tensor-core GEMM (cuBLAS/CUTLASS on A100/H100)


@dataclass(frozen=True)
class Calibration:
    """Efficiencies (fractions of peak, ≤ 1) and floors (seconds). ``source`` says what
    they were fitted on."""

    eta_gemm: float = 1.0  # GEMM compute efficiency at full waves
    eta_gemm_mem: float = 1.0  # GEMM memory efficiency (weight streaming)
    o_gemm: float = 0.0
    #: element-wise operators (norm, rope, act, add): (memory efficiency, floor s)
    elem: dict[str, tuple[float, float]] = field(default_factory=dict)
    eta_attn_decode: float = 1.0
    o_attn_decode: float = 0.0
    o_attn_seq: float = 0.0  # per sequence of a decode batch
    eta_attn_prefill: float = 1.0
    eta_attn_prefill_mem: float = 1.0
    o_attn_prefill: float = 0.0
    #: all-reduce per GPU count: (latency s, bus bandwidth as a fraction of the link's)
    allreduce: dict[int, tuple[float, float]] = field(default_factory=dict)
    source: str = "the roofline (no calibration)"

    def __post_init__(self) -> None:
        for op, (eta, o) in self.elem.items():
            if not 0 < eta <= 1 or o < 0:
                raise ValueError(f"elem.{op}: expected an efficiency in (0, 1] and a floor >= 0")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("eta") and not 0 < v <= 1:
                raise ValueError(f"{f.name}: expected a fraction of peak in (0, 1], got {v}")
            if f.name.startswith("o_") and v < 0:
                raise ValueError(f"{f.name}: expected seconds >= 0, got {v}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["allreduce"] = {str(k): list(v) for k, v in self.allreduce.items()}
        d["elem"] = {k: list(v) for k, v in self.elem.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown calibration fields: {', '.join(sorted(unknown))}")
        d = dict(d)
        d["allreduce"] = {
            int(k): (float(a), float(b)) for k, (a, b) in d.get("allreduce", {}).items()
        }
        d["elem"] = {str(k): (float(a), float(b)) for k, (a, b) in d.get("elem", {}).items()}
        return cls(**d)


ROOFLINE = Calibration()


@dataclass(frozen=True)
class Device:
    """The datasheet numbers a calibrated time needs."""

    flops: float  # peak FLOP/s of the math type
    bandwidth: float  # bytes/s
    sms: int  # streaming multiprocessors (compute units)
    link: float = 0.0  # GPU-to-GPU link, bytes/s per direction


def waves(M: ArrayLike, N: ArrayLike, sms: int, K: ArrayLike = 0) -> Any:
    """u(M, N, K) = work units / (waves · SMs): the share of the SMs a GEMM keeps busy.
    Units are 128×128 output tiles; when there are fewer tiles than SMs the K dimension
    is split (split-K, as cuBLAS does) into up to ⌊SMs / tiles⌋ slices of ≥ 256."""
    tiles = np.ceil(np.asarray(M, dtype=float) / TILE) * np.ceil(np.asarray(N, dtype=float) / TILE)
    split = np.maximum(1.0, np.minimum(np.floor(sms / tiles), np.floor(np.asarray(K) / 256)))
    units = tiles * split
    return units / (np.ceil(units / sms) * sms)


def gemm(
    M: ArrayLike,
    K: ArrayLike,
    N: ArrayLike,
    dev: Device,
    cal: Calibration,
    act_bytes: float = 2.0,
    weight_bytes: float | None = None,
) -> Any:
    """Seconds of an M×K activation by K×N weight GEMM (fp16 by default)."""
    M, K, N = (np.asarray(x, dtype=float) for x in (M, K, N))
    wb = act_bytes if weight_bytes is None else weight_bytes
    F = 2 * M * N * K
    B = act_bytes * (M * K + M * N) + wb * K * N
    u = waves(M, N, dev.sms, K) if cal.eta_gemm < 1 else 1.0
    return cal.o_gemm + np.maximum(
        F / (dev.flops * cal.eta_gemm * u), B / (dev.bandwidth * cal.eta_gemm_mem)
    )


#: element-wise operator classes of a decoder layer
ELEM_OPS = ("norm", "rope", "act", "add")


def elementwise(op: str, nbytes: ArrayLike, dev: Device, cal: Calibration) -> Any:
    """An element-wise operator (``norm`` has a reduction per row) moving ``nbytes``."""
    eta, o = cal.elem.get(op, (1.0, 0.0))
    return o + np.asarray(nbytes, dtype=float) / (dev.bandwidth * eta)


def attn_decode(
    batch: ArrayLike,
    kv_len: ArrayLike,
    kv_heads: ArrayLike,
    q_heads: ArrayLike,
    head_dim: ArrayLike,
    dev: Device,
    cal: Calibration,
    kv_bytes: float = 2.0,
) -> Any:
    """One decode step's attention: each of ``batch`` sequences reads ``kv_len`` cached
    K and V of ``kv_heads`` heads."""
    b, L = np.asarray(batch, dtype=float), np.asarray(kv_len, dtype=float)
    B = 2 * b * L * np.asarray(kv_heads) * head_dim * kv_bytes
    F = 4 * b * L * np.asarray(q_heads) * head_dim
    t = np.maximum(B / (dev.bandwidth * cal.eta_attn_decode), F / dev.flops)
    return cal.o_attn_decode + b * cal.o_attn_seq + t


def attn_prefill(
    chunk: ArrayLike,
    cached: ArrayLike,
    q_heads: ArrayLike,
    kv_heads: ArrayLike,
    head_dim: ArrayLike,
    dev: Device,
    cal: Calibration,
    kv_bytes: float = 2.0,
) -> Any:
    """Causal attention of a chunk of ``chunk`` tokens after ``cached`` tokens: the
    kernel's FLOPs counted over the whole chunk × (cached + chunk) rectangle (tiles on
    the diagonal are computed whole) plus reading K, V, Q and writing the output, each at
    its fitted efficiency (a sum: the two phases of a tile overlap poorly at these sizes)."""
    c, p = np.asarray(chunk, dtype=float), np.asarray(cached, dtype=float)
    qh, kh, dh = (np.asarray(x, dtype=float) for x in (q_heads, kv_heads, head_dim))
    F = 4 * qh * dh * c * (p + c)
    B = 2 * (p + c) * kh * dh * kv_bytes + 2 * c * qh * dh * kv_bytes
    return (
        cal.o_attn_prefill
        + F / (dev.flops * cal.eta_attn_prefill)
        + B / (dev.bandwidth * cal.eta_attn_prefill_mem)
    )


def all_reduce(nbytes: ArrayLike, dev: Device, gpus: int, cal: Calibration) -> Any:
    """Ring all-reduce among ``gpus``: the fitted latency and share of the link's
    bandwidth for that many GPUs (the nearest fitted count), or the link alone."""
    S = np.asarray(nbytes, dtype=float)
    if gpus <= 1:
        return 0.0 * S
    if cal.allreduce:
        n = min(cal.allreduce, key=lambda k: (abs(k - gpus), k))
        alpha, eta = cal.allreduce[n]
    else:
        alpha, eta = 0.0, 1.0
    return alpha + 2 * (gpus - 1) / gpus * S / (dev.link * eta)
