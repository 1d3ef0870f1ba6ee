"""Operator-level roofline model of transformer inference (formulations/costmodel.md).

Every function is vectorised: batch sizes, token counts and context lengths
may be numpy arrays, and ``model`` / ``hardware`` may be sequences of
catalog entries (one per configuration), all broadcast together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from optkit.costmodel.catalog import Hardware, Model
from optkit.costmodel.precision import Precision

ArrayLike = Any
LAUNCH_S = 5e-6  # alpha_0 of a collective (GenZ uses the same 5 us)
BOUNDS = ("compute", "memory", "communication")


@dataclass(frozen=True)
class Attention:
    """Which cached tokens a query attends: ``full``, ``lambda`` (sinks + local
    window, Λ-shaped) or ``topk`` (k selected tokens)."""

    kind: str = "full"
    sinks: int = 4
    local: int = 1020
    k: int = 1024

    def __post_init__(self) -> None:
        if self.kind not in ("full", "lambda", "topk"):
            raise ValueError(f"attention kind must be full, lambda or topk, got '{self.kind}'")
        if min(self.sinks, self.local, self.k) < 0 or (
            self.kind == "lambda" and self.sinks + self.local < 1
        ):
            raise ValueError("attention window sizes must be >= 0 and the window non-empty")
        if self.kind == "topk" and self.k < 1:
            raise ValueError("top-k attention needs k >= 1")

    @property
    def window(self) -> float:
        """W: the most keys one query reads (inf for full attention)."""
        if self.kind == "lambda":
            return float(self.sinks + self.local)
        if self.kind == "topk":
            return float(self.k)
        return float("inf")


@dataclass(frozen=True)
class Efficiency:
    """Fractions of peak reached: compute, memory, network (1 = pure roofline)."""

    compute: float = 1.0
    memory: float = 1.0
    network: float = 1.0

    def __post_init__(self) -> None:
        for name in ("compute", "memory", "network"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"efficiency.{name} must be in (0, 1], got {v}")


@dataclass(frozen=True)
class KvTier:
    """A share ``fraction`` of the KV cache read at ``bandwidth_gbs`` (per direction)."""

    fraction: float
    bandwidth_gbs: float


@dataclass(frozen=True)
class Setup:
    """Everything except the workload shape: parallelism, formats, attention, tiers."""

    precision: Precision = field(default_factory=Precision)
    tp: int = 1
    pp: int = 1
    attention: Attention = field(default_factory=Attention)
    efficiency: Efficiency = field(default_factory=Efficiency)
    kv_tiers: tuple[KvTier, ...] = ()
    causal: bool = True

    def __post_init__(self) -> None:
        if self.tp < 1 or self.pp < 1:
            raise ValueError("tp and pp must be >= 1")
        share = sum(t.fraction for t in self.kv_tiers)
        if any(t.fraction < 0 or t.bandwidth_gbs <= 0 for t in self.kv_tiers) or share > 1 + 1e-12:
            raise ValueError(
                "kv_tiers: fractions must be >= 0 and sum to at most 1, bandwidths > 0"
            )


@dataclass
class Breakdown:
    """Times of one forward pass (seconds) and what it moved, per configuration."""

    time_s: np.ndarray
    compute_s: np.ndarray  # time of operators that are compute-bound
    memory_s: np.ndarray  # ... memory-bound
    comm_s: np.ndarray  # collectives and pipeline sends
    flops: np.ndarray
    bytes: np.ndarray
    ops: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def bottleneck(self) -> np.ndarray:
        parts = np.stack(np.broadcast_arrays(self.compute_s, self.memory_s, self.comm_s))
        return np.asarray(BOUNDS, dtype=object)[np.argmax(parts, axis=0)]


# ------------------------------------------------------------------ views


def _columns(entries: Any, kind: type) -> Any:
    """``col(f)``: f of each entry as a float (one entry) or an array (a sequence of entries)."""
    one = isinstance(entries, kind)
    items = [entries] if one else list(entries)

    def col(f: Any) -> Any:
        v = np.array([f(x) for x in items], dtype=float)
        return float(v[0]) if one else v

    return col


def model_view(model: Model | Sequence[Model]) -> SimpleNamespace:
    """The model's numbers as floats, or arrays when given one model per configuration."""
    col = _columns(model, Model)
    return SimpleNamespace(
        L=col(lambda m: m.layers),
        d=col(lambda m: m.hidden),
        H=col(lambda m: m.heads),
        Hkv=col(lambda m: m.kv_heads),
        dh=col(lambda m: m.head_dim),
        f=col(lambda m: m.ffn),
        g=col(lambda m: 1 if m.ffn_gated else 0),
        V=col(lambda m: m.vocab),
        E=col(lambda m: m.experts),
        k=col(lambda m: m.top_k),
        fe=col(lambda m: m.expert_ffn),
        fs=col(lambda m: m.shared_ffn),
        Ld=col(lambda m: m.dense_layers if m.is_moe else m.layers),
        decoder=col(lambda m: 1 if m.decoder else 0),
        tied=col(lambda m: 1 if m.tied_embeddings else 0),
    )


def hardware_view(hw: Hardware | Sequence[Hardware], math_type: str) -> SimpleNamespace:
    col = _columns(hw, Hardware)
    return SimpleNamespace(
        P=col(lambda h: h.peak_flops(math_type)),
        BW=col(lambda h: h.bandwidth_gbs * 1e9),
        Blink=col(lambda h: h.interconnect.bandwidth_gbs * 1e9),
        alink=col(lambda h: h.interconnect.latency_us * 1e-6),
        act_off=col(lambda h: 0.0 if h.kind == "fpga" else 1.0),
        onchip=col(lambda h: h.onchip_bytes),
    )


# ------------------------------------------------------------------ model


def weight_bytes(model: Model | Sequence[Model], setup: Setup = Setup()) -> Any:
    """Bytes of all weights on one device (layers split tp x pp ways, embeddings tp ways)."""
    return weight_bytes_view(model_view(model), setup)


def kv_bytes_per_token_layer(
    model: Model | Sequence[Model], precision: Precision = Precision()
) -> Any:
    """KV bytes one token adds to one layer (all KV heads, before TP sharding)."""
    m = model_view(model)
    return 2 * m.Hkv * m.dh * precision.kv_storage_bits / 8


def attended_pairs(p: ArrayLike, s: ArrayLike, window: float, causal: bool = True) -> Any:
    """A(p, s): (query, key) pairs of s new tokens after p cached ones, each query
    reading at most ``window`` keys."""
    p = np.asarray(p, dtype=float)
    s = np.asarray(s, dtype=float)
    if not causal:
        return s * np.minimum(p + s, window)
    lo, hi = p + 1, p + s
    n1 = np.clip(np.minimum(hi, window) - lo + 1, 0, None)  # queries with x <= W
    return n1 * (2 * lo + n1 - 1) / 2 + (s - n1) * np.minimum(window, hi)


def kv_tokens_read(p: ArrayLike, s: ArrayLike, window: float) -> Any:
    """R(p, s): cached tokens read by s new queries after p cached tokens."""
    p = np.asarray(p, dtype=float)
    s = np.asarray(s, dtype=float)
    return np.minimum(p + s, window + s - 1)


class _Terms:
    """FLOPs and bytes of each operator of one forward (formulation table)."""

    def __init__(
        self, m: SimpleNamespace, h: SimpleNamespace, setup: Setup, b: Any, s: Any
    ) -> None:
        pr = setup.precision
        K = setup.tp
        self.m, self.h, self.setup = m, h, setup
        self.wb = pr.weight_storage_bits / 8
        self.ab = pr.act_bits / 8
        self.kb = pr.kv_storage_bits / 8
        self.b = np.asarray(b, dtype=float)
        self.N = self.b * np.asarray(s, dtype=float)
        self.Hd = m.H / K
        self.Hkvd = np.maximum(m.Hkv / K, 1.0)  # KV heads are replicated when tp > kv_heads
        fits = weight_bytes_view(m, setup) <= h.onchip
        self.wfac = np.where(fits, 0.0, 1.0)  # FPGA: weights held on chip when they fit
        self.act = h.act_off * self.ab
        self.Pc = h.P * setup.efficiency.compute
        self.Bm = h.BW * setup.efficiency.memory

    def time(self, F: Any, M: Any) -> tuple[Any, Any]:
        """(operator time, whether it is compute-bound)."""
        tc, tm = F / self.Pc, M / self.Bm
        return np.maximum(tc, tm), tc >= tm

    def qkv(self) -> tuple[Any, Any]:
        m, N = self.m, self.N
        w = m.d * (self.Hd + 2 * self.Hkvd) * m.dh
        F = 2 * N * w
        M = w * self.wb * self.wfac + self.act * N * (m.d + (self.Hd + 2 * self.Hkvd) * m.dh)
        M = M + N * 2 * self.Hkvd * m.dh * self.kb  # writing the new K, V
        return F, M

    def attn_unit(self) -> tuple[Any, Any, Any]:
        """(FLOPs per attended pair, activation bytes, KV bytes per cached token read)."""
        m = self.m
        f1 = 4 * self.b * self.Hd * m.dh
        other = self.act * 2 * self.N * self.Hd * m.dh
        kv1 = self.b * 2 * self.Hkvd * m.dh * self.kb
        return f1, other, kv1

    def attn_terms(self, F: Any, other: Any, kv: Any) -> list[Any]:
        """The candidates of the attention max, each linear in (F, other, kv): compute,
        local memory (activations + its KV share), and each other tier's KV share, the
        tiers being read concurrently."""
        tiers = self.setup.kv_tiers
        local = 1.0 - sum(t.fraction for t in tiers)
        eff = self.setup.efficiency.memory
        return [F / self.Pc, (other + local * kv) / self.Bm] + [
            t.fraction * kv / (t.bandwidth_gbs * 1e9 * eff) for t in tiers
        ]

    def attn_time(self, F: Any, other: Any, kv: Any) -> tuple[Any, Any]:
        tc, *tm = self.attn_terms(F, other, kv)
        mem = np.max(np.stack(np.broadcast_arrays(*tm)), axis=0)
        return np.maximum(tc, mem), tc >= mem

    def out(self) -> tuple[Any, Any]:
        m, N = self.m, self.N
        w = self.Hd * m.dh * m.d
        return 2 * N * w, w * self.wb * self.wfac + self.act * N * (self.Hd * m.dh + m.d)

    def mlp(self, f: Any) -> tuple[Any, Any]:
        """A dense (gated) MLP of intermediate size f."""
        m, N, K = self.m, self.N, self.setup.tp
        w = (2 + m.g) * m.d * f / K
        acts = N * (2 * m.d + (2 + m.g) * f / K)
        return 2 * N * w, w * self.wb * self.wfac + self.act * acts

    def experts(self) -> tuple[Any, Any]:
        m, N, K = self.m, self.N, self.setup.tp
        E = np.maximum(m.E, 1.0)
        touched = E * (1 - (1 - m.k / E) ** N)  # distinct experts hit by N tokens
        w = (2 + m.g) * m.d * m.fe / K
        acts = N * (2 * m.d + m.k * (2 + m.g) * m.fe / K)
        return 2 * N * m.k * w, touched * w * self.wb * self.wfac + self.act * acts

    def router(self) -> tuple[Any, Any]:
        m, N = self.m, self.N
        return 2 * N * m.d * m.E, m.d * m.E * self.wb * self.wfac + self.act * N * (m.d + m.E)

    def head(self) -> tuple[Any, Any]:
        """LM head on the last position of each sequence (decoders only)."""
        m, b, K = self.m, self.b, self.setup.tp
        w = m.d * m.V / K * m.decoder
        return 2 * b * w, w * self.wb * self.wfac + self.act * b * m.decoder * (m.d + m.V / K)

    def embed(self) -> tuple[Any, Any]:
        return 0.0 * self.N, self.N * self.m.d * (self.wb + self.act)

    def allreduce(self, nbytes: Any, gather: bool = False) -> Any:
        K = self.setup.tp
        if K == 1:
            return 0.0 * nbytes
        steps = (K - 1) * (1 if gather else 2)
        bw = self.h.Blink * self.setup.efficiency.network
        return LAUNCH_S + steps * self.h.alink + steps / K * nbytes / bw

    def p2p(self) -> Any:
        Q = self.setup.pp
        msg = self.N * self.m.d * self.ab
        bw = self.h.Blink * self.setup.efficiency.network
        return (Q - 1) * (self.h.alink + msg / bw)


def weight_bytes_view(m: SimpleNamespace, setup: Setup) -> Any:
    wb = setup.precision.weight_storage_bits / 8
    attn = m.d * (m.H + 2 * m.Hkv) * m.dh + m.H * m.dh * m.d
    mats = 2 + m.g
    moe_mlp = m.E * mats * m.d * m.fe + mats * m.d * m.fs + m.d * m.E
    layers = m.L * attn + m.Ld * mats * m.d * m.f + (m.L - m.Ld) * moe_mlp
    emb = m.V * m.d * (2 - m.tied)
    return (layers / setup.pp + emb) * wb / setup.tp


def _layer_static(t: _Terms) -> list[tuple[str, Any, Any, Any]]:
    """(name, multiplier, FLOPs, bytes) of the context-independent operators of a forward."""
    m = t.m
    ops: list[tuple[str, Any, Any, Any]] = [
        ("qkv", m.L, *t.qkv()),
        ("out", m.L, *t.out()),
        ("mlp", m.Ld, *t.mlp(m.f)),
    ]
    moe_layers = m.L - m.Ld
    if np.any(moe_layers > 0):
        ops += [("router", moe_layers, *t.router()), ("experts", moe_layers, *t.experts())]
        ops.append(("shared_mlp", moe_layers * (m.fs > 0), *t.mlp(m.fs)))
    ops += [("head", 1.0, *t.head()), ("embed", 1.0, *t.embed())]
    return ops


def _comm(t: _Terms) -> tuple[Any, dict[str, Any]]:
    m = t.m
    ar = 2 * m.L * t.allreduce(t.N * m.d * t.ab)
    ag = m.decoder * t.allreduce(t.b * m.V * t.ab, gather=True)  # logits of the LM head
    p2p = t.p2p()
    return ar + ag + p2p, {"allreduce": ar, "allgather": ag, "pipeline": p2p}


def forward(
    model: Model | Sequence[Model],
    hardware: Hardware | Sequence[Hardware],
    batch: ArrayLike,
    tokens: ArrayLike,
    cached: ArrayLike = 0,
    setup: Setup = Setup(),
) -> Breakdown:
    """One forward pass: ``batch`` sequences each adding ``tokens`` new tokens after
    ``cached`` tokens already in the KV cache (prefill: cached = 0; decode: tokens = 1)."""
    m = model_view(model)
    h = hardware_view(hardware, setup.precision.math_type)
    t = _Terms(m, h, setup, batch, tokens)
    W = setup.attention.window
    zero = 0.0 * (t.N + np.asarray(cached, dtype=float) + m.L + h.P)
    comp, mem, F_tot, M_tot = zero.copy(), zero.copy(), zero.copy(), zero.copy()
    ops: dict[str, Any] = {}
    for name, mult, F, M in _layer_static(t):
        tt, cb = t.time(F, M)
        ops[name] = mult * tt
        comp = comp + np.where(cb, mult * tt, 0.0)
        mem = mem + np.where(cb, 0.0, mult * tt)
        F_tot, M_tot = F_tot + mult * F, M_tot + mult * M
    f1, other, kv1 = t.attn_unit()
    A = attended_pairs(cached, tokens, W, setup.causal)
    R = kv_tokens_read(cached, tokens, W)
    Fa, Ma_kv = f1 * A, kv1 * R
    ta, cb = t.attn_time(Fa, other, Ma_kv)
    ops["attn"] = m.L * ta
    comp = comp + np.where(cb, m.L * ta, 0.0)
    mem = mem + np.where(cb, 0.0, m.L * ta)
    F_tot, M_tot = F_tot + m.L * Fa, M_tot + m.L * (other + Ma_kv)
    comm, parts = _comm(t)
    ops.update(parts)
    total = comp + mem + comm
    return Breakdown(
        total + zero, comp + zero, mem + zero, comm + zero, F_tot + zero, M_tot + zero, ops
    )


def prefill_time(
    model: Any,
    hardware: Any,
    batch: ArrayLike,
    tokens: ArrayLike,
    cached: ArrayLike = 0,
    setup: Setup = Setup(),
) -> Any:
    """Seconds to prefill ``tokens`` per sequence for ``batch`` sequences.

    With ``cached`` > 0 this is a chunk of a chunked prefill."""
    return forward(model, hardware, batch, tokens, cached, setup).time_s


def decode_step_time(
    model: Any, hardware: Any, batch: ArrayLike, context: ArrayLike, setup: Setup = Setup()
) -> Any:
    """Seconds of one decode iteration of ``batch`` sequences with ``context`` cached tokens."""
    return forward(model, hardware, batch, 1, context, setup).time_s


def _sum_envelope(a: np.ndarray, b: np.ndarray, lo: Any, hi: Any) -> Any:
    """Σ_{m=lo}^{hi} max_i (a_i + b_i·m) for integer m, exactly; a, b have shape (..., n)."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    n = a.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (a[..., None, :] - a[..., :, None]) / (b[..., :, None] - b[..., None, :])
    x = np.where(np.isfinite(x), x, -np.inf).reshape(*x.shape[:-2], n * n)
    lo_ = np.broadcast_to(lo[..., None], (*x.shape[:-1], 1))
    hi_ = np.broadcast_to(hi[..., None] + 1, (*x.shape[:-1], 1))
    inner = np.clip(np.ceil(x), lo_, hi_)
    cuts = np.sort(np.concatenate([lo_, inner, hi_], axis=-1), axis=-1)
    s_lo, s_hi = cuts[..., :-1], cuts[..., 1:]
    cnt = np.clip(s_hi - s_lo, 0, None)
    mid = (s_lo + s_hi - 1) / 2
    vals = a[..., None, :] + b[..., None, :] * mid[..., :, None]
    i = np.argmax(vals, axis=-1)[..., None]
    a_s = np.take_along_axis(np.broadcast_to(a[..., None, :], vals.shape), i, -1)[..., 0]
    b_s = np.take_along_axis(np.broadcast_to(b[..., None, :], vals.shape), i, -1)[..., 0]
    return np.sum(cnt * a_s + b_s * (s_lo + s_hi - 1) * cnt / 2, axis=-1)


def decode_total_time(
    model: Any,
    hardware: Any,
    batch: ArrayLike,
    first_context: ArrayLike,
    steps: ArrayLike,
    setup: Setup = Setup(),
) -> Any:
    """Σ_{c=first_context}^{first_context+steps-1} decode_step_time(c), in closed form."""
    m = model_view(model)
    h = hardware_view(hardware, setup.precision.math_type)
    t = _Terms(m, h, setup, batch, 1)
    steps = np.asarray(steps, dtype=float)
    c0 = np.asarray(first_context, dtype=float)
    const = _comm(t)[0]
    for _, mult, F, M in _layer_static(t):
        const = const + mult * t.time(F, M)[0]
    f1, other, kv1 = t.attn_unit()
    # attention time as the envelope of lines a + b·m, m = attended tokens = min(c + 1, W):
    # every term of the max is linear, so a = terms at m = 0, b = terms per unit of m
    zero = 0.0 * (t.N + c0 + steps + m.L + h.P)
    a = np.stack([x + zero for x in t.attn_terms(0.0, other, 0.0)], -1)
    b = np.stack([x + zero for x in t.attn_terms(f1, 0.0, kv1)], -1)
    return steps * const + m.L * window_sum(a, b, c0, steps, setup.attention.window) + zero


def window_sum(a: np.ndarray, b: np.ndarray, c0: Any, steps: Any, W: float) -> Any:
    """Σ_{c=c0}^{c0+steps-1} max_i (a_i + b_i·min(c + 1, W)): the growing part by
    :func:`_sum_envelope`, the steps past the window at its cap."""
    growing = np.clip(np.minimum(W - c0, steps), 0, None)  # steps with c + 1 <= W
    s1 = _sum_envelope(a, b, c0 + 1, c0 + growing)
    capped = steps - growing
    s2 = capped * np.max(a + b * W, axis=-1) if np.isfinite(W) else 0.0
    return s1 + s2


def request_time(
    model: Any,
    hardware: Any,
    batch: ArrayLike,
    input_tokens: ArrayLike,
    output_tokens: ArrayLike,
    setup: Setup = Setup(),
) -> Any:
    """Prefill of ``input_tokens``, then ``output_tokens - 1`` decode steps.

    The prefill yields the first output token."""
    n_in = np.asarray(input_tokens, dtype=float)
    n_out = np.asarray(output_tokens, dtype=float)
    pre = prefill_time(model, hardware, batch, n_in, 0, setup)
    dec = decode_total_time(model, hardware, batch, n_in, np.maximum(n_out - 1, 0), setup)
    return pre + dec


def memory_bytes(
    model: Any, batch: ArrayLike, context: ArrayLike, setup: Setup = Setup(), tokens: ArrayLike = 1
) -> dict[str, Any]:
    """Per-device bytes: weights, KV cache of ``context`` tokens per sequence, activations."""
    m = model_view(model)
    pr = setup.precision
    b = np.asarray(batch, dtype=float)
    ctx = np.asarray(context, dtype=float)
    W = setup.attention.window
    # a Λ-shaped cache evicts what no query will read; top-k must keep every token reachable
    kept = np.minimum(ctx, W) if setup.attention.kind == "lambda" else ctx
    hkv = np.maximum(m.Hkv / setup.tp, 1.0)
    kv = b * kept * (m.L / setup.pp) * 2 * hkv * m.dh * pr.kv_storage_bits / 8
    N = b * np.asarray(tokens, dtype=float)
    widest = np.maximum(np.maximum(m.f, m.fs), m.k * m.fe) * (1 + m.g) / setup.tp
    # the widest operator's input + output for N rows, plus last-position logits
    act = (N * (m.d + widest) + b * m.V / setup.tp) * pr.act_bits / 8
    w = weight_bytes_view(m, setup)
    off = sum(t.fraction for t in setup.kv_tiers) * kv  # KV held in other tiers
    local = kv - off
    return {
        "weights": w + 0 * kv,
        "kv_cache": local,
        "kv_offloaded": off + 0 * kv,
        "activations": act + 0 * kv,
        "total": w + local + act,
    }
