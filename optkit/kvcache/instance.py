"""KV-placement instances: memory tiers, the KV unit size, and a decode trace.

JSON (``"problem": "kv_placement"``), units are bytes and bytes/s::

    {"problem": "kv_placement", "format_version": 1, "name": "...",
     "tiers": [{"name": "hbm", "capacity": 8e9, "bandwidth": 4.9e12},
               {"name": "lpddr5x", "capacity": 4.8e11, "bandwidth": 5e11,
                "link_in": 4.5e11, "link_out": 4.5e11, "link": "nvlink-c2c"}],
     "unit_bytes": 131072, "layers": 32, "prompt": 31000, "decode": 10000,
     "weight_bytes": 0, "mode": "exclusive",
     "trace": {"pattern": "heavy-hitter", "sparsity": 0.6, "seed": 0}}

``trace`` is a pattern (generated on the fly), ``{"file": "reads.npz"}`` (relative
to the instance file) or ``{"reads": [[...], ...]}`` (one list per step).
Tier 0 is the accelerator's HBM; ``capacity`` is what is left for KV. External tiers
naming the same ``link`` share it (bandwidth charged once per direction for all of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from optkit.io import FORMAT_VERSION, FieldError, is_int, is_real
from optkit.kvcache.patterns import PatternTrace
from optkit.kvcache.trace import Trace, trace_from_dict

MODES = ("exclusive", "inclusive")


@dataclass(frozen=True)
class Tier:
    """A memory tier; ``link_in``/``link_out`` are the link to the accelerator (external
    tiers). External tiers with the same ``link`` name sit behind one physical link (a
    PCIe GPU reaches host DRAM, CXL memory and an SSD through its one x16 link): their
    transfers share its bandwidth, charged once per direction. ``""``: a link of its own."""

    name: str
    capacity: float
    bandwidth: float
    link_in: float = math.inf
    link_out: float = math.inf
    link: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "capacity": self.capacity,
            "bandwidth": self.bandwidth,
        }
        if math.isfinite(self.link_in):
            d["link_in"] = self.link_in
        if math.isfinite(self.link_out):
            d["link_out"] = self.link_out
        if self.link:
            d["link"] = self.link
        return d


@dataclass(frozen=True)
class LinkGroup:
    """One physical link and the external tiers (indices 1..K-1) behind it."""

    name: str
    link_in: float
    link_out: float
    tiers: tuple[int, ...]


def _positive(
    d: dict[str, Any], key: str, path: str, default: Any = None, zero: bool = False
) -> Any:
    v = d.get(key, default)
    ok = is_real(v) and (v >= 0 if zero else v > 0)
    if not ok:
        raise FieldError(
            f"{path}.{key}" if path else key, f"a finite number {'>=' if zero else '>'} 0", v
        )
    return v


#: Most prompt or decode tokens of one instance (a replay steps through every token).
MAX_TOKENS = 10_000_000


def _count(d: dict[str, Any], key: str, minimum: int, most: int) -> int:
    v = d.get(key)
    if not is_int(v) or not minimum <= v <= most:
        raise FieldError(key, f"an integer in [{minimum:,}, {most:,}]", v)
    return v


@dataclass(frozen=True, eq=False)
class KvInstance:
    """Tiers, KV unit size s (bytes per token per layer), L layers, P prompt tokens,
    ``decode`` decode tokens, optional weight bytes per step, mode and trace."""

    tiers: tuple[Tier, ...]
    unit_bytes: float
    layers: int
    prompt: int
    decode: int
    trace: Trace
    weight_bytes: float = 0.0
    mode: str = "exclusive"
    name: str = ""
    trace_spec: dict[str, Any] = field(default_factory=dict, compare=False)
    problem: str = "kv_placement"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.tiers) < 2:
            raise FieldError("tiers", "HBM and at least one external tier", len(self.tiers))
        if self.mode not in MODES:
            raise FieldError("mode", "exclusive or inclusive", self.mode)
        for k, t in enumerate(self.tiers[1:], start=1):
            if not math.isfinite(t.link_in) or not math.isfinite(t.link_out):
                raise FieldError(f"tiers[{k}].link_in", "finite link bandwidths (bytes/s)", None)
        for g in self.links:  # the tiers behind one link agree on its bandwidths
            j = g.tiers[0]
            for k in g.tiers[1:]:
                t = self.tiers[k]
                if (g.link_in, g.link_out) != (t.link_in, t.link_out):
                    raise FieldError(
                        f"tiers[{k}].link_in",
                        f"the link_in and link_out of tiers[{j}] (both behind link {g.name!r})",
                        f"{t.link_in:g}, {t.link_out:g}",
                    )
        if self.external_units < self.units_total:
            raise FieldError(
                "tiers",
                f"external tiers that hold the KV of every token "
                f"({self.units_total} units of {self.unit_bytes:g} B)",
                f"room for {self.external_units}",
            )

    # --- sizes -----------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self.layers * self.decode

    @property
    def tokens(self) -> int:
        """Tokens whose KV exists by the end: prompt + decode."""
        return self.prompt + self.decode

    @property
    def units_total(self) -> int:
        return self.layers * self.tokens

    @property
    def hbm_units(self) -> int:
        """Units HBM can hold: ⌊C_0 / s⌋."""
        return self.units_in(self.tiers[0].capacity)

    def units_in(self, capacity: float) -> int:
        """⌊capacity / s⌋, counting a quotient within 1e-9 (relative) of an integer
        as that integer: 40·s bytes scaled to other units still hold 40 units."""
        q = capacity / self.unit_bytes
        near = round(q)
        return int(near) if abs(q - near) <= 1e-9 * max(1.0, q) else math.floor(q)

    @property
    def layer_budget(self) -> int:
        """h_l = ⌊C_0 / (s·L)⌋: the equal per-layer share of HBM used by the policies."""
        return self.hbm_units // self.layers

    @property
    def external_units(self) -> int:
        return sum(self.units_in(t.capacity) for t in self.tiers[1:])

    @cached_property
    def links(self) -> tuple[LinkGroup, ...]:
        """The physical links, each with the external tiers behind it (a tier without a
        ``link`` name has a link of its own)."""
        groups: dict[str | int, list[int]] = {}  # a named link, or the tier's own (k)
        for k, t in enumerate(self.tiers[1:], start=1):
            groups.setdefault(t.link or k, []).append(k)
        return tuple(
            LinkGroup(
                self.tiers[ks[0]].link or self.tiers[ks[0]].name,
                self.tiers[ks[0]].link_in,
                self.tiers[ks[0]].link_out,
                tuple(ks),
            )
            for ks in groups.values()
        )

    @cached_property
    def tier_link(self) -> np.ndarray:
        """Index into :attr:`links` of each external tier's link (tiers 1..K-1 at 0..K-2):
        ``np.bincount(tier_link, per_tier)`` gives what each link carries."""
        out = np.empty(len(self.tiers) - 1, dtype=np.int64)
        for i, g in enumerate(self.links):
            out[np.asarray(g.tiers) - 1] = i
        return out

    @property
    def external_rate(self) -> float:
        """B_ext = Σ_g min(L_g^in, Σ_{k behind g} B_k): what the external tiers can deliver
        per second through their links (Σ_k min(B_k, L_k^in) when every tier has its own)."""
        return sum(
            min(g.link_in, sum(self.tiers[k].bandwidth for k in g.tiers)) for g in self.links
        )

    @property
    def out_rate(self) -> float:
        """B_out = Σ_g min(L_g^out, Σ_{k behind g} B_k): what the links and tiers can take
        in per second from HBM (demotions, new units written out)."""
        return sum(
            min(g.link_out, sum(self.tiers[k].bandwidth for k in g.tiers)) for g in self.links
        )

    # --- placement rules shared by the simulator, the LP and check() ----------
    @cached_property
    def _home_bounds(self) -> np.ndarray:
        caps = [self.units_in(t.capacity) for t in self.tiers[1:]]
        return np.cumsum(caps)

    def creation_index(self, layer: Any, token: Any) -> Any:
        """Position of unit (token, layer) in creation order: prefill layer by layer,
        then one unit per step."""
        token = np.asarray(token)
        pre = layer * self.prompt + token
        post = self.layers * self.prompt + (token - self.prompt) * self.layers + layer
        return np.where(token < self.prompt, pre, post)

    def home(self, layer: Any, token: Any) -> Any:
        """External tier (1..K-1) of a unit: first fit in creation order, reserved for
        the unit's lifetime (so a demotion always has room)."""
        if len(self.tiers) == 2:
            return np.ones(np.shape(token), dtype=np.int8)
        idx = self.creation_index(layer, token)
        return (np.searchsorted(self._home_bounds, idx, side="right") + 1).astype(np.int8)

    def unit_homes(self) -> np.ndarray:
        """Home tier of every unit id (creation order: ``L·P`` prefill units, then one
        per step)."""
        LP, T = self.layers * self.prompt, self.steps
        out = np.empty(LP + T, dtype=np.int64)
        tokens = np.arange(self.prompt)
        for layer in range(self.layers):
            out[layer * self.prompt + tokens] = self.home(layer, tokens)
        t = np.arange(T)
        out[LP:] = self.home(t % self.layers, self.prompt + t // self.layers)
        return out

    def initial_hbm(self, layer: int) -> np.ndarray:
        """Prompt tokens of ``layer`` in HBM after prefill: the h_l most recent ones."""
        h = min(self.prompt, self.layer_budget)
        return np.arange(self.prompt - h, self.prompt)

    # --- JSON ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "problem": self.problem,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "tiers": [t.to_dict() for t in self.tiers],
            "unit_bytes": self.unit_bytes,
            "layers": self.layers,
            "prompt": self.prompt,
            "decode": self.decode,
            "weight_bytes": self.weight_bytes,
            "mode": self.mode,
        }
        if self.trace_spec:
            d["trace"] = self.trace_spec
        elif isinstance(self.trace, PatternTrace):
            d["trace"] = self.trace.pattern.to_dict()
        else:
            csr = self.trace.materialize()
            d["trace"] = {"reads": [csr.row(t).tolist() for t in range(csr.steps_total)]}
        if self.meta:
            d["generated_by"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: Path | None = None) -> KvInstance:
        tiers_raw = d.get("tiers")
        if not isinstance(tiers_raw, list) or len(tiers_raw) < 2:
            raise FieldError(
                "tiers", "a list: HBM first, then one or more external tiers", tiers_raw
            )
        tiers = []
        for k, t in enumerate(tiers_raw):
            path = f"tiers[{k}]"
            if not isinstance(t, dict):
                raise FieldError(path, "an object with name, capacity, bandwidth", t)
            unknown = set(t) - {"name", "capacity", "bandwidth", "link_in", "link_out", "link"}
            if unknown:
                raise FieldError(
                    f"{path}.{sorted(unknown)[0]}",
                    "name, capacity, bandwidth, link_in, link_out, link",
                    "unknown field",
                )
            link = t.get("link", "")
            if not isinstance(link, str) or (k == 0 and link):
                raise FieldError(
                    f"{path}.link",
                    "the name of the link an external tier sits behind (text)",
                    link,
                )
            if k > 0 and ("link_in" not in t or "link_out" not in t):
                raise FieldError(
                    f"{path}.link_in", "link_in and link_out (bytes/s) for an external tier", None
                )
            tiers.append(
                Tier(
                    str(t.get("name", f"tier{k}")),
                    float(_positive(t, "capacity", path, zero=True)),
                    float(_positive(t, "bandwidth", path)),
                    float(_positive(t, "link_in", path)) if k else math.inf,
                    float(_positive(t, "link_out", path)) if k else math.inf,
                    link,
                )
            )
        layers = _count(d, "layers", 1, 10_000)
        prompt = _count(d, "prompt", 1, MAX_TOKENS)
        decode = _count(d, "decode", 1, MAX_TOKENS)
        spec = d.get("trace")
        trace = trace_from_dict(spec, layers, prompt, decode, base)
        return cls(
            tiers=tuple(tiers),
            unit_bytes=float(_positive(d, "unit_bytes", "")),
            layers=layers,
            prompt=prompt,
            decode=decode,
            trace=trace,
            weight_bytes=float(_positive(d, "weight_bytes", "", default=0.0, zero=True)),
            mode=d.get("mode", "exclusive"),
            name=str(d.get("name", "")),
            trace_spec=dict(spec) if isinstance(spec, dict) and "reads" not in spec else {},
            meta=dict(d.get("generated_by") or {}),
        )


def make_instance(
    trace: Trace,
    hbm_bytes: float,
    hbm_bw: float,
    ext_bw: float,
    link: float,
    unit_bytes: float = 1.0,
    weight_bytes: float = 0.0,
    mode: str = "exclusive",
    name: str = "",
) -> KvInstance:
    """Two tiers (HBM + one external behind a symmetric link) around a trace; tests
    and benchmarks use it."""
    ext = unit_bytes * trace.layers * (trace.prompt + trace.decode)
    tiers = (Tier("hbm", hbm_bytes, hbm_bw), Tier("ext", ext, ext_bw, link, link))
    spec = trace.pattern.to_dict() if isinstance(trace, PatternTrace) else {}
    return KvInstance(
        tiers,
        unit_bytes,
        trace.layers,
        trace.prompt,
        trace.decode,
        trace,
        weight_bytes,
        mode,
        name,
        spec,
    )
