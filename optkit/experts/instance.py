"""Expert-cache instances (formulations/expert_cache.md): the MoE shape, the GPU's expert
slots, the host link, compute per layer step, and a routing trace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optkit.io import FORMAT_VERSION, FieldError, is_int, is_real

#: Most tokens × layers of one routing trace (every step is replayed and checked).
MAX_STEPS = 10_000_000


@dataclass(frozen=True, eq=False)
class ExpertInstance:
    """L layers of E experts, top-k routing; C expert slots on the GPU (one pool); a link
    of ``bandwidth`` bytes/s and ``latency`` s; ``compute[l]`` s per step of layer l;
    ``routing[i, l]`` the k experts token i uses at layer l."""

    layers: int
    experts: int
    top_k: int
    expert_bytes: float
    capacity: int
    bandwidth: float
    latency: float
    compute: np.ndarray  # (L,) seconds per layer step
    routing: np.ndarray  # (N, L, k) expert ids
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    #: an optional training trace (other prompts) that predictive policies learn from
    train: np.ndarray | None = field(default=None, repr=False)
    #: tokens per step: 1 decodes token by token; B > 1 is prefill, the B tokens of a
    #: batch pass each layer together and need the union of their experts
    batch: int = 1

    problem = "expert_cache"
    sense = "min"

    def __post_init__(self) -> None:
        r = np.asarray(self.routing, dtype=np.int64)
        r.setflags(write=False)
        c = np.asarray(self.compute, dtype=float)
        c.setflags(write=False)
        object.__setattr__(self, "routing", r)
        object.__setattr__(self, "compute", c)
        L, E, k = self.layers, self.experts, self.top_k
        if not 1 <= k <= E:
            raise FieldError("top_k", f"an integer in [1, experts = {E}]", k)
        if not k <= self.capacity <= L * E:
            raise FieldError(
                "capacity", f"an integer in [top_k = {k}, layers × experts]", self.capacity
            )
        if r.ndim != 3 or r.shape[1:] != (L, k) or len(r) == 0:
            raise FieldError(
                "routing", f"a list of tokens, each {L} lists of {k} expert ids", r.shape
            )
        if r.min() < 0 or r.max() >= E:
            bad = tuple(int(x) for x in np.argwhere((r < 0) | (r >= E))[0])
            raise FieldError(
                f"routing[{bad[0]}][{bad[1]}]", f"expert ids in 0..{E - 1}", int(r[bad])
            )
        if np.any(np.sort(r, axis=2)[:, :, 1:] == np.sort(r, axis=2)[:, :, :-1]):
            raise FieldError("routing", "k distinct experts per token and layer", "a repeated id")
        if self.train is not None:
            t = np.asarray(self.train, dtype=np.int64)
            if t.ndim != 3 or t.shape[1:] != (L, k) or t.min() < 0 or t.max() >= E:
                raise FieldError(
                    "train_routing", f"tokens × {L} layers × {k} ids in 0..{E - 1}", t.shape
                )
            object.__setattr__(self, "train", t)
        if not (is_int(self.batch) and 1 <= self.batch <= 100_000):
            raise FieldError("batch", "an integer in [1, 100,000] (tokens per step)", self.batch)
        if self.batch > 1:
            most = max(len(u) for u in self.needed())
            if most > self.capacity:
                raise FieldError(
                    "capacity",
                    f"at least {most}: the experts one prefill batch of {self.batch} tokens "
                    "needs at one layer",
                    self.capacity,
                )
        if c.shape != (L,) or np.any(c < 0) or not np.all(np.isfinite(c)):
            raise FieldError("compute", f"{L} finite times >= 0 (seconds per layer step)", c.shape)

    # --- sizes ---------------------------------------------------------------------
    @property
    def tokens(self) -> int:
        return len(self.routing)

    @property
    def batches(self) -> int:
        """Steps per layer: tokens, or prefill batches of ``batch`` tokens."""
        return -(-self.tokens // self.batch)

    @property
    def steps(self) -> int:
        return self.batches * self.layers

    @property
    def units(self) -> int:
        return self.layers * self.experts

    @property
    def load_time(self) -> float:
        """τ = λ + s/B: one expert over the link."""
        return self.latency + self.expert_bytes / self.bandwidth

    def needed(self) -> Sequence[np.ndarray]:
        """The unit ids each step uses, steps in order n = i·L + l (i: token, or batch):
        k per step when decoding (one (steps, k) array), the union over the batch's tokens
        in prefill (a list). Computed once per instance (the instance is immutable);
        callers must not modify it."""
        cached = self.__dict__.get("_needed")
        if cached is not None:
            return cached
        layer = np.arange(self.layers)[None, :, None]
        units = layer * self.experts + self.routing  # (N, L, k)
        out: Sequence[np.ndarray]
        if self.batch == 1:
            out = units.reshape(self.steps, self.top_k)
        else:
            out = [
                np.unique(units[i : i + self.batch, layer_])
                for i in range(0, self.tokens, self.batch)
                for layer_ in range(self.layers)
            ]
        self.__dict__["_needed"] = out
        return out

    def needed_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """``needed()`` as one int64 array and offsets: step n uses
        ``flat[off[n]:off[n + 1]]``. Computed once; callers must not modify it."""
        cached = self.__dict__.get("_needed_csr")
        if cached is not None:
            return cached
        need = self.needed()
        if isinstance(need, np.ndarray):
            flat = np.ascontiguousarray(need.ravel())
            off = np.arange(self.steps + 1, dtype=np.int64) * self.top_k
        else:
            flat = np.concatenate(need).astype(np.int64)
            off = np.concatenate([[0], np.cumsum([len(r) for r in need])]).astype(np.int64)
        self.__dict__["_needed_csr"] = (flat, off)
        return flat, off

    @property
    def uses(self) -> int:
        """Σ_n |R_n|: the expert uses of the whole trace."""
        need = self.needed()
        return need.size if isinstance(need, np.ndarray) else sum(len(r) for r in need)

    def step_compute(self) -> np.ndarray:
        return np.tile(self.compute, self.batches)

    # --- JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "problem": self.problem,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "layers": self.layers,
            "experts": self.experts,
            "top_k": self.top_k,
            "expert_bytes": self.expert_bytes,
            "capacity": self.capacity,
            "bandwidth": self.bandwidth,
            "latency": self.latency,
            "compute": [float(x) for x in self.compute],
            "routing": self.routing.tolist(),
        }
        if self.train is not None:
            d["train_routing"] = self.train.tolist()
        if self.batch != 1:
            d["batch"] = self.batch
        if self.meta:
            d["generated_by"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: Path | None = None) -> ExpertInstance:
        for k in ("layers", "experts", "top_k", "capacity"):
            if not is_int(d.get(k)) or not 1 <= d[k] <= 100_000:
                raise FieldError(k, "an integer in [1, 100,000]", d.get(k))
        for k in ("expert_bytes", "bandwidth"):
            if not is_real(d.get(k)) or d[k] <= 0:
                raise FieldError(k, "a finite number > 0 (bytes, bytes/s)", d.get(k))
        if not is_real(d.get("latency", 0.0)) or d.get("latency", 0.0) < 0:
            raise FieldError("latency", "a finite number >= 0 (seconds)", d.get("latency"))
        comp = d.get("compute")
        if not isinstance(comp, list) or not all(is_real(x) and x >= 0 for x in comp):
            raise FieldError("compute", "a list of times >= 0, one per layer (seconds)", comp)
        routing = _routing(d.get("routing"), base)
        if routing.size > MAX_STEPS * 64 or len(routing) * d["layers"] > MAX_STEPS:
            raise FieldError("routing", f"at most {MAX_STEPS:,} token × layer steps", len(routing))
        return cls(
            layers=d["layers"],
            experts=d["experts"],
            top_k=d["top_k"],
            expert_bytes=float(d["expert_bytes"]),
            capacity=d["capacity"],
            bandwidth=float(d["bandwidth"]),
            latency=float(d.get("latency", 0.0)),
            compute=np.asarray(comp, dtype=float),
            routing=routing,
            name=str(d.get("name", "")),
            meta=dict(d.get("generated_by") or {}),
            train=_routing(d["train_routing"], base) if "train_routing" in d else None,
            batch=d.get("batch", 1),
        )


def _routing(raw: Any, base: Path | None) -> np.ndarray:
    """Inline ``[[[e, e], ...per layer], ...per token]`` or a routing file reference
    ``{"file": ..., "dataset": ..., "problem_id": ...}`` (JSON Lines, Mixtral format)."""
    if isinstance(raw, dict):
        f = raw.get("file")
        if not isinstance(f, str) or not f:
            raise FieldError("routing.file", "the path of a routing .jsonl file", f)
        p = Path(f) if base is None or Path(f).is_absolute() else base / f
        from optkit.experts.trace import read_routing

        return read_routing(p, raw.get("dataset"), raw.get("problem_id"))
    if not isinstance(raw, list) or not raw:
        raise FieldError("routing", "a list of tokens (each a list of layers of expert ids)", raw)
    try:
        arr = np.asarray(raw)
    except (ValueError, TypeError):
        raise FieldError(
            "routing", "tokens × layers × k integer expert ids", "a ragged list"
        ) from None
    if arr.ndim != 3 or arr.dtype.kind not in "iu":
        raise FieldError("routing", "tokens × layers × k integer expert ids", str(arr.shape))
    return arr.astype(np.int64)
