"""Calibrated forward passes (formulations/costmodel.md, "Calibrated kernel times"): a
decoder layer as the kernels a serving engine launches (norms, QKV, RoPE, attention,
output projection, residual adds, MLP, all-reduces), each timed by the calibrated
kernel model, never below the roofline of the same pass (the proven bound).

Vectorised over batch, tokens and context (arrays broadcast) for one model on one
device. Devices without calibration data (no compute-unit count: CPUs, NPUs, FPGAs)
raise :class:`KeyError`; :func:`has_calibration` says which devices are covered.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optkit.costmodel.calibrated import (
    Calibration,
    Device,
    all_reduce,
    attn_prefill,
    elementwise,
    gemm,
)
from optkit.costmodel.roofline import (
    Setup,
    _comm,
    _Terms,
    forward,
    hardware_view,
    model_view,
    window_sum,
)

ArrayLike = Any


def _device(hardware: Any, setup: Setup, cal: Calibration | None) -> tuple[Device, Calibration]:
    from optkit.costmodel.fit import default_calibration, device_of

    return device_of(hardware, setup.precision.math_type), cal or default_calibration()


def _layer_parts(
    model: Any, dev: Device, cal: Calibration, setup: Setup, b: Any, s: Any
) -> dict[str, Any]:
    """Seconds of the context-independent kernels of one forward of ``b`` sequences of
    ``s`` new tokens, by part (already multiplied by their layer counts)."""
    m = model_view(model)
    pr = setup.precision
    ab, wb = pr.act_bits / 8, pr.weight_storage_bits / 8
    K = setup.tp
    N = np.asarray(b, dtype=float) * np.asarray(s, dtype=float)
    Hd, Hkvd = m.H / K, np.maximum(m.Hkv / K, 1.0)
    g = m.g
    parts: dict[str, Any] = {}
    parts["qkv"] = m.L * gemm(N, m.d, (Hd + 2 * Hkvd) * m.dh, dev, cal, ab, wb)
    parts["out"] = m.L * gemm(N, Hd * m.dh, m.d, dev, cal, ab, wb)
    parts["norm_add_rope"] = m.L * (
        2 * elementwise("norm", 2 * N * m.d * ab, dev, cal)
        + 2 * elementwise("add", 2 * N * m.d * ab, dev, cal)
        + elementwise("rope", 2 * N * (Hd + Hkvd) * m.dh * ab, dev, cal)
    )

    def mlp(f: Any, rows: Any) -> Any:
        return (
            gemm(rows, m.d, (1 + g) * f / K, dev, cal, ab, wb)
            + gemm(rows, f / K, m.d, dev, cal, ab, wb)
            + elementwise("act", (2 + g) * rows * f / K * ab, dev, cal)
        )

    parts["mlp"] = m.Ld * mlp(m.f, N)
    moe = m.L - m.Ld
    if np.any(moe > 0):
        E = np.maximum(m.E, 1.0)
        touched = np.maximum(E * (1 - (1 - m.k / E) ** N), 1.0)
        rows = N * m.k / touched
        parts["router"] = moe * gemm(N, m.d, m.E, dev, cal, ab, wb)
        parts["experts"] = moe * touched * mlp(m.fe, rows)
        parts["shared_mlp"] = moe * np.where(m.fs > 0, mlp(np.maximum(m.fs, 1.0), N), 0.0)
    parts["allreduce"] = 2 * m.L * all_reduce(N * m.d * ab, dev, K, cal)
    parts["head"] = m.decoder * gemm(b, m.d, m.V / K, dev, cal, ab, wb)
    return parts


def _attention_lines(
    model: Any, hardware: Any, dev: Device, cal: Calibration, setup: Setup, b: Any
) -> tuple[Any, Any]:
    """Decode attention of one layer as lines a + β·m in m = attended tokens: the
    calibrated kernel's, then the roofline's (whose KV tiers the calibration does not
    know); the time is their upper envelope, so never below the roofline."""
    m = model_view(model)
    t = _Terms(m, hardware_view(hardware, setup.precision.math_type), setup, b, 1)
    kb = setup.precision.kv_storage_bits / 8
    K = setup.tp
    Hd, Hkvd = m.H / K, np.maximum(m.Hkv / K, 1.0)
    bb = np.asarray(b, dtype=float)
    slope = np.maximum(
        2 * bb * Hkvd * m.dh * kb / (dev.bandwidth * cal.eta_attn_decode),
        4 * bb * Hd * m.dh / dev.flops,
    )
    f1, other, kv1 = t.attn_unit()
    a = [cal.o_attn_decode + bb * cal.o_attn_seq + 0.0 * slope, *t.attn_terms(0.0, other, 0.0)]
    beta = [slope, *t.attn_terms(f1, 0.0, kv1)]
    zero = 0.0 * (bb + slope)
    return np.stack([x + zero for x in a], -1), np.stack([x + zero for x in beta], -1)


def forward_time(
    model: Any,
    hardware: Any,
    batch: ArrayLike,
    tokens: ArrayLike,
    cached: ArrayLike = 0,
    setup: Setup = Setup(),
    cal: Calibration | None = None,
) -> tuple[Any, dict[str, Any]]:
    """(seconds, seconds by part) of one calibrated forward: ``batch`` sequences adding
    ``tokens`` new tokens after ``cached`` ones (prefill: cached = 0; decode: tokens = 1)."""
    dev, cal = _device(hardware, setup, cal)
    m = model_view(model)
    b = np.asarray(batch, dtype=float)
    s = np.asarray(tokens, dtype=float)
    c = np.asarray(cached, dtype=float)
    parts = _layer_parts(model, dev, cal, setup, b, s)
    K = setup.tp
    kb = setup.precision.kv_storage_bits / 8
    Hd, Hkvd = m.H / K, np.maximum(m.Hkv / K, 1.0)
    W = setup.attention.window
    # attention: a decode step reads min(c + 1, W) tokens; a prefill chunk attends its
    # own tokens after min(c, W) cached ones
    a, beta = _attention_lines(model, hardware, dev, cal, setup, b)
    dec = np.max(a + beta * np.minimum(c + 1, W)[..., None], axis=-1)
    pre = b * attn_prefill(s, np.minimum(c, W), Hd, Hkvd, m.dh, dev, cal, kb)
    roof = forward(model, hardware, batch, tokens, cached, setup)
    parts["attn"] = np.maximum(m.L * np.where(s == 1, dec, pre), roof.ops["attn"])
    t = _Terms(m, hardware_view(hardware, setup.precision.math_type), setup, b, s)
    _, extra = _comm(t)
    parts["allgather"] = extra["allgather"]
    parts["pipeline"] = extra["pipeline"]
    total = sum(parts.values())
    return np.maximum(total, roof.time_s), parts


def decode_total_time(
    model: Any,
    hardware: Any,
    batch: ArrayLike,
    first_context: ArrayLike,
    steps: ArrayLike,
    setup: Setup = Setup(),
    cal: Calibration | None = None,
) -> Any:
    """Σ over ``steps`` decode steps from ``first_context`` of the calibrated step time,
    in closed form (the attention of a step is the envelope of lines in min(c + 1, W)).
    Each step is kept at or above its roofline by the same envelope."""
    from optkit.costmodel.roofline import decode_total_time as roof_total

    dev, cal = _device(hardware, setup, cal)
    m = model_view(model)
    b = np.asarray(batch, dtype=float)
    c0 = np.asarray(first_context, dtype=float)
    n = np.asarray(steps, dtype=float)
    parts = _layer_parts(model, dev, cal, setup, b, 1.0)
    t = _Terms(m, hardware_view(hardware, setup.precision.math_type), setup, b, 1)
    _, extra = _comm(t)
    const = sum(parts.values()) + extra["allgather"] + extra["pipeline"]
    a, beta = _attention_lines(model, hardware, dev, cal, setup, b)
    zero = 0.0 * (c0 + n)
    a, beta = a + zero[..., None], beta + zero[..., None]
    total = n * const + m.L * window_sum(a, beta, c0, n, setup.attention.window)
    return np.maximum(total, roof_total(model, hardware, batch, first_context, steps, setup))


def has_calibration(hardware: Any) -> bool:
    """True when the calibration data covers ``hardware``."""
    from optkit.costmodel.fit import _calibration_data

    return hardware.key in _calibration_data()["compute_units"]
