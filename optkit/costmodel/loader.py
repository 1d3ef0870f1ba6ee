"""Reading catalogs: YAML data files whose every number has a source.

A number is written either ``{value: 312, source: "..."}`` or bare, and a bare
number is accepted only inside an entry that carries an entry-level
``source`` covering it (a model's published config). Users add entries with
their own files (:func:`load_catalog`); errors name the file, the field path
and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from optkit.costmodel.catalog import (
    KINDS,
    MATH_TYPES,
    Catalog,
    Fpga,
    Hardware,
    Link,
    Model,
    Tier,
)
from optkit.io import FieldError, InputError, is_real


class _Entry:
    """Reads the fields of one entry, recording each number's source."""

    def __init__(self, raw: Any, path: str, default_source: str | None, rel: str = "") -> None:
        if not isinstance(raw, dict):
            raise FieldError(path, "a mapping", type(raw).__name__)
        self.raw = raw
        self.path = path
        self.rel = rel
        self.default_source = default_source
        self.sources: dict[str, str] = {}
        self.used: set[str] = set()

    def number(
        self, name: str, *, positive: bool = True, integer: bool = False, default: Any = ...
    ) -> Any:
        return self._number(self.raw, name, f"{self.path}.{name}", positive, integer, default)

    def _number(
        self,
        table: Mapping[str, Any],
        name: str,
        path: str,
        positive: bool,
        integer: bool,
        default: Any,
    ) -> Any:
        if table is self.raw:
            self.used.add(name)
        if name not in table:
            if default is ...:
                raise FieldError(path, "a number (missing)")
            return default
        x = table[name]
        source = self.default_source
        if isinstance(x, dict):
            extra = set(x) - {"value", "source"}
            if extra or "value" not in x:
                raise FieldError(path, "{value: number, source: text}", x)
            source = x.get("source")
            if not isinstance(source, str) or not source.strip():
                raise FieldError(
                    f"{path}.source", "a non-empty text naming where the number comes from", source
                )
            x = x["value"]
        elif source is None:
            raise FieldError(
                path,
                "{value: number, source: text} (a bare number needs an entry-level 'source')",
                x,
            )
        if not is_real(x):
            raise FieldError(path, "a finite number", x)
        if integer and x != int(x):
            raise FieldError(path, "an integer", x)
        if x < 0 or (positive and x == 0):
            raise FieldError(path, "a positive number" if positive else "a number >= 0", x)
        self.sources[self.rel + name] = source
        return int(x) if integer else float(x)

    def text(self, name: str, default: Any = ...) -> Any:
        self.used.add(name)
        if name not in self.raw:
            if default is ...:
                raise FieldError(f"{self.path}.{name}", "a text (missing)")
            return default
        x = self.raw[name]
        if not isinstance(x, str) or not x.strip():
            raise FieldError(f"{self.path}.{name}", "a non-empty text", x)
        return x

    def flag(self, name: str, default: bool) -> bool:
        self.used.add(name)
        x = self.raw.get(name, default)
        if not isinstance(x, bool):
            raise FieldError(f"{self.path}.{name}", "true or false", x)
        return x

    def sub(self, name: str, required: bool = True) -> _Entry | None:
        self.used.add(name)
        if name not in self.raw:
            if required:
                raise FieldError(f"{self.path}.{name}", "a mapping (missing)")
            return None
        e = _Entry(self.raw[name], f"{self.path}.{name}", self.default_source, f"{self.rel}{name}.")
        e.sources = self.sources  # one record per entry
        return e

    def finish(self) -> None:
        unknown = set(self.raw) - self.used
        if unknown:
            raise FieldError(
                f"{self.path}.{sorted(unknown)[0]}",
                "a known field (unknown field; check the spelling)",
            )


def _link(key: str, raw: Any, path: str) -> Link:
    e = _Entry(raw, path, _entry_source(raw, path))
    out = Link(
        key,
        e.text("name", key),
        e.number("bandwidth_gbs"),
        e.number("latency_us", positive=False),
        e.sources,
    )
    e.used.add("source")
    e.finish()
    return out


def _tier(key: str, raw: Any, path: str) -> Tier:
    e = _Entry(raw, path, _entry_source(raw, path))
    out = Tier(
        key, e.text("name", key), e.number("capacity_gb"), e.number("bandwidth_gbs"), e.sources
    )
    e.used.add("source")
    e.finish()
    return out


def _entry_source(raw: Any, path: str) -> str | None:
    if isinstance(raw, dict) and "source" in raw:
        s = raw["source"]
        if not isinstance(s, str) or not s.strip():
            raise FieldError(f"{path}.source", "a non-empty text", s)
        return s
    return None


def _hardware(key: str, raw: Any, path: str, cat: Catalog) -> Hardware:
    e = _Entry(raw, path, _entry_source(raw, path))
    e.used.add("source")
    kind = e.text("kind")
    if kind not in KINDS:
        raise FieldError(f"{path}.kind", "one of " + ", ".join(KINDS), kind)
    tflops: dict[str, float] = {}
    fpga = None
    fe = e.sub("fpga", required=kind == "fpga")
    if fe is not None:
        macs = fe.sub("macs_per_dsp")
        assert macs is not None
        per = {t: macs.number(t) for t in MATH_TYPES if t in macs.raw}
        macs.finish()
        if not per:
            raise FieldError(
                f"{path}.fpga.macs_per_dsp", "at least one of " + ", ".join(MATH_TYPES)
            )
        fpga = Fpga(
            fe.number("dsp", integer=True), fe.number("clock_mhz"), per, fe.number("onchip_mb")
        )
        fe.finish()
        for t, m in per.items():  # derived peak: DSPs x MACs/DSP x 2 FLOP/MAC x clock
            tflops[t] = fpga.dsp * m * 2 * fpga.clock_mhz * 1e6 / 1e12
            e.sources[f"tflops.{t}"] = "derived: fpga.dsp x fpga.macs_per_dsp x 2 x fpga.clock_mhz"
    te = e.sub("tflops", required=fpga is None)
    if te is not None:
        for t in te.raw:
            if t not in MATH_TYPES:
                raise FieldError(f"{path}.tflops.{t}", "a math type: " + ", ".join(MATH_TYPES))
            tflops[t] = te.number(t)
        te.finish()
    if "fp16" not in tflops and "bf16" not in tflops:
        raise FieldError(f"{path}.tflops", "an fp16 or bf16 peak (the fallback math rate)")

    def ref(name: str, table: Mapping[str, Any], what: str, required: bool = True) -> Any:
        e.used.add(name)
        k = e.raw.get(name)
        if k is None and not required:
            return None
        if isinstance(k, dict):  # {<what>: key, source: why this device has it}
            if set(k) != {what, "source"}:
                raise FieldError(f"{path}.{name}", f"a key or {{{what}: key, source: text}}", k)
            source = k["source"]
            if not isinstance(source, str) or not source.strip():
                raise FieldError(f"{path}.{name}.source", "a non-empty text", source)
            e.sources[name] = source
            k = k[what]
        if not isinstance(k, str) or k not in table:
            raise FieldError(
                f"{path}.{name}",
                f"the key of a {what} in the catalog ({', '.join(sorted(table))})",
                k,
            )
        return table[k]

    hw = Hardware(
        key=key,
        name=e.text("name", key),
        kind=kind,
        tflops=tflops,
        memory_gb=e.number("memory_gb"),
        bandwidth_gbs=e.number("bandwidth_gbs"),
        interconnect=ref("interconnect", cat.links, "link"),
        host_link=ref("host_link", cat.links, "link"),
        host_memory=ref("host_memory", cat.tiers, "tier", required=False),
        fpga=fpga,
        sources=e.sources,
    )
    e.finish()
    return hw


def _model(key: str, raw: Any, path: str) -> Model:
    e = _Entry(raw, path, _entry_source(raw, path))
    e.used.add("source")
    heads = e.number("heads", integer=True)
    hidden = e.number("hidden", integer=True)
    kv = e.number("kv_heads", integer=True, default=heads)
    if heads % kv:
        raise FieldError(f"{path}.kv_heads", f"a divisor of heads ({heads})", kv)
    head_dim = e.number("head_dim", integer=True, default=hidden // heads)
    moe = e.sub("moe", required=False)
    mo: dict[str, int] = {}
    if moe is not None:
        mo = {
            "experts": moe.number("experts", integer=True),
            "top_k": moe.number("top_k", integer=True),
            "expert_ffn": moe.number("expert_ffn", integer=True),
            "shared_ffn": moe.number("shared_ffn", integer=True, positive=False, default=0),
            "dense_layers": moe.number("dense_layers", integer=True, positive=False, default=0),
        }
        moe.finish()
        if mo["top_k"] > mo["experts"]:
            raise FieldError(f"{path}.moe.top_k", f"at most experts ({mo['experts']})", mo["top_k"])
    layers = e.number("layers", integer=True)
    if mo and mo["dense_layers"] >= layers:
        raise FieldError(
            f"{path}.moe.dense_layers", f"fewer than layers ({layers})", mo["dense_layers"]
        )
    m = Model(
        key=key,
        name=e.text("name", key),
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        ffn=e.number("ffn", integer=True),
        ffn_gated=e.flag("ffn_gated", True),
        vocab=e.number("vocab", integer=True),
        context=e.number("context", integer=True),
        tied_embeddings=e.flag("tied_embeddings", False),
        decoder=e.flag("decoder", True),
        sources=e.sources,
        **mo,
    )
    e.finish()
    return m


SECTIONS = ("links", "tiers", "hardware", "models")


def parse_catalog(data: Any, base: Catalog | None = None) -> Catalog:
    """Add the entries of one parsed document to a copy of ``base``."""
    cat = Catalog()
    if base is not None:
        cat = Catalog(dict(base.links), dict(base.tiers), dict(base.hardware), dict(base.models))
    if not isinstance(data, dict):
        raise FieldError(
            "<root>", "a mapping with sections " + ", ".join(SECTIONS), type(data).__name__
        )
    for sec in data:
        if sec not in SECTIONS:
            raise FieldError(sec, "a section: " + ", ".join(SECTIONS))
    for sec in SECTIONS:  # links and tiers first: hardware refers to them
        entries = data.get(sec) or {}
        if not isinstance(entries, dict):
            raise FieldError(sec, "a mapping from key to entry", type(entries).__name__)
        for key, raw in entries.items():
            if not isinstance(key, str) or key != key.lower() or " " in key:
                raise FieldError(f"{sec}.{key}", "a lower-case, hyphenated key")
            path = f"{sec}.{key}"
            if sec == "links":
                cat.links[key] = _link(key, raw, path)
            elif sec == "tiers":
                cat.tiers[key] = _tier(key, raw, path)
            elif sec == "hardware":
                cat.hardware[key] = _hardware(key, raw, path, cat)
            else:
                cat.models[key] = _model(key, raw, path)
    return cat


def _read_yaml(path: str | os.PathLike[str], text: str | None = None) -> Any:
    try:
        if text is None:
            text = Path(path).read_text()
        return yaml.safe_load(text)
    except OSError as exc:
        raise InputError(path, f"cannot read catalog: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML: {exc}") from exc


_BUILTIN: Catalog | None = None


def builtin_catalog() -> Catalog:
    """The catalog shipped with optkit (parsed once)."""
    global _BUILTIN
    if _BUILTIN is None:
        cat = Catalog()
        for name in ("hardware.yaml", "models.yaml"):
            res = resources.files("optkit.costmodel").joinpath("data").joinpath(name)
            try:
                cat = parse_catalog(_read_yaml(name, res.read_text()), cat)
            except FieldError as exc:  # a broken shipped file is an internal error
                raise RuntimeError(f"optkit/costmodel/data/{name}: {exc}") from exc
        _BUILTIN = cat
    return _BUILTIN


def load_catalog(paths: Iterable[str | os.PathLike[str]] = ()) -> Catalog:
    """The built-in catalog plus the user's files (later entries replace earlier ones)."""
    cat = builtin_catalog()
    for p in paths:
        try:
            cat = parse_catalog(_read_yaml(p), cat)
        except FieldError as exc:
            raise InputError(p, str(exc)) from exc
    return cat
