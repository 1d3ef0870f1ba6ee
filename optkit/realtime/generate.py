"""Real-time instances from XRBench scenarios (``.m`` files, MAESTRO notation), a
platform of catalog backends, and an LLM assistant whose requests come from a trace.

Layer cost (formulations/realtime.md): a CONV layer with dimensions N, K, C, Y, X, R, S
has ``2·N·K·C·Y·X·R·S`` FLOPs and moves ``β·(K·C·R·S + N·C·Y·X + N·K·Y·X)`` bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optkit.io import FORMAT_VERSION, InputError, read_text
from optkit.realtime.instance import DTYPE_BYTES

#: platforms: name -> (backend name, catalog hardware key); the memory they share
PLATFORMS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "ryzen-ai": (
        (("cpu", "ryzen-ai-cpu"), ("igpu", "ryzen-ai-igpu"), ("npu", "ryzen-ai-npu")),
        "lpddr5x-7500-128b",
    ),
}

_DIM = re.compile(r"([NKCYXRS])\s*:\s*(\d+)")


@dataclass(frozen=True)
class ScenarioNet:
    name: str
    fps: float
    probability: float
    after: str
    layers: tuple[dict[str, int], ...]


def read_scenario(path: Path) -> list[ScenarioNet]:
    """The networks of an XRBench usage scenario; :class:`InputError` names the line."""
    text = read_text(path)
    nets: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    in_dep = False
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = re.match(r"Network\s+(\S+)\s*\{", line)
        if m:
            cur = {"name": m.group(1), "fps": None, "p": 1.0, "after": "", "layers": []}
            nets.append(cur)
            continue
        if cur is None:
            raise InputError(path, f"line {no}: expected 'Network NAME {{', got {line!r}")
        if in_dep:
            if line.startswith("}"):
                in_dep = False
            else:
                cur["after"] = line
            continue
        if line.startswith("FPS:"):
            cur["fps"] = _number(path, no, line)
        elif line.startswith("Probability:"):
            cur["p"] = _number(path, no, line)
        elif line.startswith("Dependency:"):
            in_dep = True
        elif line.startswith("Dimensions:"):
            dims = {k: int(v) for k, v in _DIM.findall(line)}
            if set(dims) != set("NKCYXRS"):
                raise InputError(path, f"line {no}: Dimensions need N, K, C, Y, X, R, S")
            cur["layers"].append(dims)
    out = []
    for n in nets:
        if not n["fps"] or n["fps"] <= 0:
            raise InputError(path, f"network {n['name']}: FPS: expected a rate > 0")
        if not n["layers"]:
            raise InputError(path, f"network {n['name']}: no layers")
        out.append(ScenarioNet(n["name"], n["fps"], n["p"], n["after"], tuple(n["layers"])))
    if not out:
        raise InputError(path, "no 'Network' in the file (an XRBench scenario .m file)")
    return out


def _number(path: Path, no: int, line: str) -> float:
    try:
        return float(line.split(":", 1)[1])
    except ValueError:
        raise InputError(path, f"line {no}: expected a number, got {line!r}") from None


def network_entry(net: ScenarioNet, dtype: str) -> dict[str, Any]:
    beta = DTYPE_BYTES[dtype]
    f, m, w = [], [], 0.0
    for d in net.layers:
        f.append(2.0 * d["N"] * d["K"] * d["C"] * d["Y"] * d["X"] * d["R"] * d["S"])
        wt = d["K"] * d["C"] * d["R"] * d["S"]
        m.append(
            beta * (wt + d["N"] * d["C"] * d["Y"] * d["X"] + d["N"] * d["K"] * d["Y"] * d["X"])
        )
        w += beta * wt
    return {"dtype": dtype, "weight_bytes": w, "flops": f, "bytes": m}


def platform_backends(
    platform: str, overhead_s: float, efficiency: float = 1.0
) -> tuple[list[dict[str, Any]], float, str]:
    """Backends of a platform from the catalog (peak FLOP/s and bandwidth times
    ``efficiency``, the fraction of peak reached), the shared bandwidth and its source."""
    from optkit.costmodel import builtin_catalog

    if platform not in PLATFORMS:
        raise ValueError(f"platform {platform!r}: expected one of {', '.join(PLATFORMS)}")
    cat = builtin_catalog()
    pairs, tier = PLATFORMS[platform]
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency: expected a fraction of peak in (0, 1], got {efficiency}")
    out = []
    for n, key in pairs:
        hw = cat.get_hardware(key)
        out.append(
            {
                "name": n,
                "hardware": key,
                "flops": {k: v * 1e12 * efficiency for k, v in hw.tflops.items()},
                "bandwidth": hw.bandwidth_gbs * 1e9 * efficiency,
                "memory": hw.memory_gb * 1e9,
                "overhead": overhead_s,
            }
        )
    t = cat.get_tier(tier)
    return out, t.bandwidth_gbs * 1e9, f"tier {tier}: {t.sources.get('bandwidth_gbs', '')}"


def realtime_instance(
    scenario: Path,
    *,
    platform: str = "ryzen-ai",
    dtype: str = "int8",
    horizon: float | None = None,
    llm: str | None = None,
    trace: Any = None,
    rate: float = 0.5,
    ttft: float = 1.0,
    tps: float = 10.0,
    weight_bits: float = 4.0,
    max_output: int | None = None,
    overhead_s: float = 1e-4,
    efficiency: float = 1.0,
    jitter: float = 0.0,
    seed: int = 0,
    interference: bool = True,
    name: str | None = None,
) -> dict[str, Any]:
    """The instance document. LLM requests: the trace's lengths in order, its arrival
    gaps rescaled to ``rate`` requests per second (the burst shape is the trace's)."""
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(DTYPE_BYTES)}")
    nets = read_scenario(scenario)
    backends, shared, src = platform_backends(platform, overhead_s, efficiency)
    if horizon is None:
        horizon = 1.0  # the hyperperiod of XRBench's integer rates divides 1 s
    if horizon <= 0:
        raise ValueError(f"horizon: expected seconds > 0, got {horizon}")
    doc: dict[str, Any] = {
        "problem": "realtime",
        "format_version": FORMAT_VERSION,
        "name": name or f"{scenario.stem}-{platform}" + (f"-{llm}" if llm else ""),
        "horizon": horizon,
        "seed": seed,
        "interference": interference,
        "shared_bandwidth": shared,
        "backends": backends,
        "networks": {n.name: network_entry(n, dtype) for n in nets},
        "tasks": [
            {
                "name": n.name,
                "model": n.name,
                "fps": n.fps,
                "jitter": min(jitter, 0.5 / n.fps),
                "after": n.after or None,
                "probability": n.probability,
            }
            for n in nets
        ],
        "generated_by": {
            "scenario": str(scenario),
            "platform": platform,
            "dtype": dtype,
            "efficiency": efficiency,
            "shared_bandwidth_source": src,
        },
    }
    if llm is not None:
        if trace is None or len(trace) == 0:
            raise ValueError("an LLM session needs a request trace (--trace)")
        if rate <= 0:
            raise ValueError(f"rate: expected requests per second > 0, got {rate}")
        gaps = np.diff(np.asarray(trace.arrival_s, dtype=float))
        mean_gap = float(np.mean(gaps)) if len(gaps) and np.mean(gaps) > 0 else 1.0
        arrivals = (np.asarray(trace.arrival_s) - trace.arrival_s[0]) / mean_gap / rate
        reqs = []
        for a, p, o in zip(arrivals, trace.prompt, trace.output, strict=True):
            if a >= horizon:
                break
            out = int(o) if max_output is None else min(int(o), max_output)
            reqs.append({"arrival": float(a), "prompt": int(max(p, 1)), "output": max(out, 1)})
        doc["llm"] = [
            {
                "name": "assistant",
                "model": llm,
                "weight_bits": weight_bits,
                "ttft": ttft,
                "tps": tps,
                "requests": reqs,
            }
        ]
        doc["generated_by"].update({"trace": trace.name, "rate": rate})
    return doc
