"""Serving instances: identical clients, requests, and the iteration-time model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optkit.io import FORMAT_VERSION, FieldError, is_int, is_real


@dataclass(frozen=True)
class IterationModel:
    """τ(N, A, C) = max(τ_w, κ·N) + γ·A + δ·C + τ_c  (formulations/serving.md), seconds."""

    tau_w: float  # weights streamed once per iteration
    kappa: float  # GEMM compute per new token
    gamma: float  # attention compute per prefill (query, key) pair
    delta: float  # KV read per cached token of a decoding sequence
    tau_c: float = 0.0  # collectives per iteration

    def time(self, N: float, A: float, C: float) -> float:
        return max(self.tau_w, self.kappa * N) + self.gamma * A + self.delta * C + self.tau_c

    def prefill(self, s: float, p: float = 0.0) -> float:
        """One iteration prefilling s tokens after p already prefilled (no decodes)."""
        return self.time(s, s * p + s * (s + 1) / 2, 0.0)

    @classmethod
    def from_costmodel(cls, model: Any, hardware: Any, setup: Any) -> IterationModel:
        """Coefficients from the roofline of ``optkit.costmodel`` (per device, TP-sharded)."""
        from optkit.costmodel.roofline import LAUNCH_S, weight_bytes

        K = setup.tp
        P = hardware.peak_flops(setup.precision.math_type) * setup.efficiency.compute
        BW = hardware.bandwidth_gbs * 1e9 * setup.efficiency.memory
        active = model.parameters()["active"] - model.vocab * model.hidden  # no embedding GEMM
        kv_tok = 2 * max(model.kv_heads / K, 1) * model.head_dim * model.layers
        kv_tok *= setup.precision.kv_storage_bits / 8
        tau_c = 0.0
        if K > 1:
            tau_c = (
                2
                * model.layers
                * (LAUNCH_S + 2 * (K - 1) * hardware.interconnect.latency_us * 1e-6)
            )
        return cls(
            tau_w=float(weight_bytes(model, setup)) / BW,
            kappa=2 * active / K / P,
            gamma=4 * model.layers * model.heads * model.head_dim / K / P,
            delta=kv_tok / BW,
            tau_c=tau_c,
        )

    @classmethod
    def from_calibrated(
        cls, model: Any, hardware: Any, setup: Any, cal: Any = None
    ) -> tuple[IterationModel, float]:
        """Coefficients fitted to the calibrated forward passes of ``optkit.costmodel``
        (formulations/serving.md, "Which times"), each at or above the roofline's, so
        τ_calibrated ≥ τ_roofline at every (N, A, C). Returns the model and the median
        relative error of the fitted form against the calibrated passes it was fitted on."""
        from scipy.optimize import least_squares

        from optkit.costmodel.predict import forward_time

        lo = cls.from_costmodel(model, hardware, setup)
        # decode iterations (b sequences, c cached tokens each) and prefill iterations
        b, c = np.meshgrid(2.0 ** np.arange(0, 9), [128.0, 512.0, 2048.0, 8192.0])
        b, c = b.ravel(), c.ravel()
        s = 2.0 ** np.arange(4, 14)
        t_dec, _ = forward_time(model, hardware, b, 1.0, c, setup, cal)
        t_pre, _ = forward_time(model, hardware, 1.0, s, 0.0, setup, cal)
        N = np.concatenate([b, s])
        A = np.concatenate([0 * b, s * (s + 1) / 2])
        C = np.concatenate([b * c, 0 * s])
        t = np.concatenate([np.asarray(t_dec, float), np.asarray(t_pre, float)])
        x_lo = np.array([lo.tau_w, lo.kappa, lo.gamma, lo.delta, lo.tau_c])
        # scaled so every coordinate is ~1 at the roofline; a zero coefficient (tau_c at
        # TP 1) is scaled by the mean time over the mean of its feature (unit-free)
        feature = [np.ones_like(N), N, A, C, np.ones_like(N)]
        typical = np.array([t.mean() / max(f.mean(), 1e-300) for f in feature])
        scale = np.where(x_lo > 0, x_lo, typical)

        def form(x: np.ndarray) -> np.ndarray:
            tw, k, g, d, tc = x * scale
            return np.maximum(tw, k * N) + g * A + d * C + tc

        fit = least_squares(
            lambda x: form(x) / t - 1.0,
            np.maximum(1.3 * x_lo / scale, x_lo / scale + 1e-3),
            bounds=(x_lo / scale, np.inf),
        )
        x = np.maximum(fit.x * scale, x_lo)
        err = float(np.median(np.abs(form(x / scale) / t - 1.0)))
        return cls(*map(float, x)), err

    def to_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("tau_w", "kappa", "gamma", "delta", "tau_c")}

    @classmethod
    def from_dict(cls, d: Any, path: str = "iteration") -> IterationModel:
        if not isinstance(d, dict):
            raise FieldError(path, "an object with tau_w, kappa, gamma, delta[, tau_c]", d)
        vals = {}
        for k in ("tau_w", "kappa", "gamma", "delta", "tau_c"):
            v = d.get(k, 0.0 if k == "tau_c" else None)
            if not is_real(v) or v < 0:
                raise FieldError(f"{path}.{k}", "a finite number >= 0 (seconds)", v)
            vals[k] = float(v)
        if vals["tau_w"] + vals["kappa"] <= 0:
            raise FieldError(f"{path}.tau_w", "tau_w or kappa > 0 (an iteration takes time)", 0)
        return cls(**vals)


#: Most tokens one request may have in its prompt or output (a simulation and the MIP
#: step through them; far above any context length in use).
MAX_TOKENS = 10_000_000


def _int_array(d: dict, key: str, n: int | None, minimum: int) -> np.ndarray:
    v = d.get(key)
    if not isinstance(v, list) or (n is not None and len(v) != n) or not v:
        raise FieldError(key, f"a list of {n if n is not None else 'one or more'} integers", v)
    for i, x in enumerate(v):
        if not is_int(x) or not minimum <= x <= MAX_TOKENS:
            raise FieldError(f"{key}[{i}]", f"an integer in [{minimum}, {MAX_TOKENS:,}]", x)
    return np.asarray(v, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class ServingInstance:
    """m identical clients (batch slots B, KV tokens M) and n requests."""

    clients: int
    max_batch: int
    kv_tokens: int
    iteration: IterationModel
    arrival: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    name: str = ""
    request_ids: tuple[str, ...] | None = field(default=None, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    problem = "serving"
    sense = "min"

    def __post_init__(self) -> None:
        for k in ("arrival", "prompt", "output"):
            object.__setattr__(self, k, np.asarray(getattr(self, k)))
            getattr(self, k).setflags(write=False)
        if self.clients < 1 or self.max_batch < 1 or self.kv_tokens < 1:
            raise ValueError("clients, max_batch and kv_tokens must be >= 1")
        too_big = np.flatnonzero(self.prompt + self.output > self.kv_tokens)
        if len(too_big):
            j = int(too_big[0])
            raise FieldError(
                f"prompt[{j}]",
                f"prompt + output <= kv_tokens ({self.kv_tokens}) so the request fits a client",
                int(self.prompt[j] + self.output[j]),
            )

    @property
    def n(self) -> int:
        return len(self.prompt)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "problem": "serving",
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "clients": self.clients,
            "max_batch": self.max_batch,
            "kv_tokens": self.kv_tokens,
            "iteration": self.iteration.to_dict(),
            "arrival": [float(x) for x in self.arrival],
            "prompt": [int(x) for x in self.prompt],
            "output": [int(x) for x in self.output],
        }
        if self.request_ids is not None:
            d["request_ids"] = list(self.request_ids)
        if self.meta:
            d["generated_by"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServingInstance:
        for k, most in (("clients", 100_000), ("max_batch", 10**6), ("kv_tokens", 10**12)):
            v = d.get(k)
            if not is_int(v) or not 1 <= v <= most:
                raise FieldError(k, f"an integer in [1, {most:,}]", v)
        prompt = _int_array(d, "prompt", None, 0)
        n = len(prompt)
        output = _int_array(d, "output", n, 1)
        arr = d.get("arrival", [0.0] * n)
        if not isinstance(arr, list) or len(arr) != n:
            raise FieldError("arrival", f"a list of {n} times (seconds)", arr)
        for i, x in enumerate(arr):
            if not is_real(x) or x < 0:
                raise FieldError(f"arrival[{i}]", "a finite time >= 0 (seconds)", x)
        ids = d.get("request_ids")
        if ids is not None and (not isinstance(ids, list) or len(ids) != n):
            raise FieldError("request_ids", f"a list of {n} ids", ids)
        return cls(
            clients=d["clients"],
            max_batch=d["max_batch"],
            kv_tokens=d["kv_tokens"],
            iteration=IterationModel.from_dict(d.get("iteration")),
            arrival=np.asarray(arr, dtype=float),
            prompt=prompt,
            output=output,
            name=str(d.get("name", "")),
            request_ids=tuple(str(x) for x in ids) if ids is not None else None,
            meta=dict(d.get("generated_by") or {}),
        )
