"""Fitting the calibrated kernel model to measured kernel times (``optkit calibrate``).

Reads per-kernel profiles in the layout of ``../shared/data/gpu_kernel_profiles``
(Vidur's CSVs: ``*__linear_layers.csv``, ``*attention*.csv``, ``*all_reduce.csv``; times
in ms), turns every row into kernels (kind, shape, measured seconds), and fits the
device-independent constants of :class:`Calibration` by least squares on log time
(relative error), per kernel kind. Times are in seconds throughout.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from optkit.costmodel.calibrated import (
    Calibration,
    Device,
    attn_decode,
    attn_prefill,
    elementwise,
    gemm,
)
from optkit.io import InputError

KINDS = ("gemm", "elem", "attn_decode", "attn_prefill", "allreduce")
#: Vidur operator name -> element-wise class
ELEM_OF = {
    "attn_rope": "rope",
    "mlp_act": "act",
    "add": "add",
    "input_layernorm": "norm",
    "post_attention_layernorm": "norm",
}
BYTES = 2.0  # the profiles are fp16


@dataclass(frozen=True)
class Kernels:
    """Measured kernels of one kind: shape columns (arrays), seconds, and labels."""

    kind: str
    shape: dict[str, np.ndarray]
    seconds: np.ndarray
    model: np.ndarray  # which profile (model name) a row came from
    op: np.ndarray  # operator name

    def __len__(self) -> int:
        return len(self.seconds)

    def take(self, mask: np.ndarray) -> Kernels:
        return Kernels(
            self.kind,
            {k: v[mask] for k, v in self.shape.items()},
            self.seconds[mask],
            self.model[mask],
            self.op[mask],
        )


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(path, f"cannot read profile: {exc.strerror or exc}") from exc


def _num(path: Path, row: dict[str, str], key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, ValueError):
        raise InputError(path, f"field {key!r}: expected a number, got {row.get(key)!r}") from None


def read_profiles(folder: Path) -> dict[str, Kernels]:
    """Every kernel measured in ``folder``, by kind."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise InputError(Path(folder), "no profile CSV files (*.csv) in the folder")
    cols: dict[str, dict[str, list[Any]]] = {k: {} for k in KINDS}

    def add(kind: str, model: str, op: str, seconds: float, **shape: float) -> None:
        c = cols[kind]
        for k, v in {**shape, "_s": seconds, "_model": model, "_op": op}.items():
            c.setdefault(k, []).append(v)

    for path in files:
        rows = _rows(path)
        name = path.stem.split("__")[1] if "__" in path.stem else path.stem
        if path.stem.endswith("linear_layers"):
            for r in rows:
                _linear(path, r, name, add)
        elif "attention" in path.stem:
            for r in rows:
                _attention(path, r, name, add)
        elif "all_reduce" in path.stem:
            for r in rows:
                n, per_node = _num(path, r, "num_workers"), _num(path, r, "devices_per_node")
                t = r.get("time_stats.all_reduce.median", "")
                # one node (NVLink/NVSwitch). ``size`` is bytes: read as fp16 elements
                # the largest rows would move 312-348 GB/s, above NVLink 3's 300 GB/s
                if t and n == per_node:
                    add(
                        "allreduce",
                        name,
                        "all_reduce",
                        float(t) / 1e3,
                        bytes=_num(path, r, "size"),  # bytes (see below)
                        gpus=n,
                    )
    out = {}
    for kind, c in cols.items():
        if not c:
            continue
        shape = {k: np.asarray(v, dtype=float) for k, v in c.items() if not k.startswith("_")}
        out[kind] = Kernels(
            kind,
            shape,
            np.asarray(c["_s"], dtype=float),
            np.asarray(c["_model"]),
            np.asarray(c["_op"]),
        )
    return out


def _linear(path: Path, r: dict[str, str], model: str, add: Callable[..., None]) -> None:
    M = _num(path, r, "num_tokens")
    tp = _num(path, r, "num_tensor_parallel_workers")
    H, Hkv, d = _num(path, r, "n_head"), _num(path, r, "n_kv_head"), _num(path, r, "n_embd")
    ffn = _num(path, r, "n_expanded_embd")
    gated = r.get("use_gated_mlp") == "True"
    dh = d / H
    qkv = (H / tp + 2 * max(Hkv / tp, 1.0)) * dh
    gemms = {
        "attn_pre_proj": (M, d, qkv),
        "attn_post_proj": (M, H / tp * dh, d),
        "mlp_up_proj": (M, d, ffn / tp * (2 if gated else 1)),
        "mlp_down_proj": (M, ffn / tp, d),
    }
    # values moved through DRAM at least once (the residual add updates in place and its
    # output stays in L2 between the profiler's repetitions: two passes are counted; the
    # embedding gather is left out: one per forward, not per layer)
    elems = {
        "attn_rope": 2 * M * (H / tp + max(Hkv / tp, 1.0)) * dh,
        "mlp_act": (3 if gated else 2) * M * ffn / tp,
        "add": 2 * M * d,
        "input_layernorm": 2 * M * d,
        "post_attention_layernorm": 2 * M * d,
    }
    for op, (m, k, n) in gemms.items():
        t = r.get(f"time_stats.{op}.median", "")
        if t:
            add("gemm", model, op, float(t) / 1e3, M=m, K=k, N=n)
    for op, values in elems.items():
        t = r.get(f"time_stats.{op}.median", "")
        if t:
            add("elem", model, ELEM_OF[op], float(t) / 1e3, bytes=values * BYTES)


def _attention(path: Path, r: dict[str, str], model: str, add: Callable[..., None]) -> None:
    tp = _num(path, r, "num_tensor_parallel_workers")
    Hq, Hkv, d = _num(path, r, "n_q_head"), _num(path, r, "n_kv_head"), _num(path, r, "n_embd")
    shape = {"q_heads": Hq / tp, "kv_heads": max(Hkv / tp, 1.0), "head_dim": d / Hq}
    b, cached = _num(path, r, "batch_size"), _num(path, r, "kv_cache_size")
    if r.get("is_prefill") == "True":
        t = r.get("time_stats.attn_prefill.median", "")
        if t:
            add(
                "attn_prefill",
                model,
                "attn_prefill",
                float(t) / 1e3,
                batch=b,
                chunk=_num(path, r, "prefill_chunk_size"),
                cached=cached,
                **shape,
            )
    else:
        t = r.get("time_stats.attn_decode.median", "")
        if t:
            add(
                "attn_decode", model, "attn_decode", float(t) / 1e3, batch=b, kv_len=cached, **shape
            )


# --- the model of each kind, on kernels ------------------------------------------------


def predict(k: Kernels, dev: Device, cal: Calibration) -> np.ndarray:
    s = k.shape
    if k.kind == "gemm":
        return np.asarray(gemm(s["M"], s["K"], s["N"], dev, cal))
    if k.kind == "elem":
        t = np.zeros(len(k))
        for op in np.unique(k.op):
            m = k.op == op
            t[m] = elementwise(str(op), s["bytes"][m], dev, cal)
        return t
    if k.kind == "attn_decode":
        return np.asarray(
            attn_decode(
                s["batch"], s["kv_len"], s["kv_heads"], s["q_heads"], s["head_dim"], dev, cal
            )
        )
    if k.kind == "attn_prefill":
        return s["batch"] * np.asarray(
            attn_prefill(
                s["chunk"], s["cached"], s["q_heads"], s["kv_heads"], s["head_dim"], dev, cal
            )
        )
    t = np.zeros(len(k))
    for n in np.unique(s["gpus"]):
        m = s["gpus"] == n
        a, eta = cal.allreduce.get(int(n), (0.0, 1.0))  # roofline: the link alone
        t[m] = a + 2 * (n - 1) / n * s["bytes"][m] / (dev.link * eta)
    return t


#: per kind: the Calibration fields fitted, and (low, high) of each in its fitted scale
PARAMS: dict[str, tuple[str, ...]] = {
    "gemm": ("eta_gemm", "eta_gemm_mem", "o_gemm"),
    "attn_decode": ("eta_attn_decode", "o_attn_decode", "o_attn_seq"),
    "attn_prefill": ("eta_attn_prefill", "eta_attn_prefill_mem", "o_attn_prefill"),
}


def _decode(name: str, x: float) -> float:
    """Efficiencies live in (0, 1] via a logistic; floors and sizes are positive via exp."""
    return 1.0 / (1.0 + math.exp(-x)) if name.startswith("eta") else math.exp(x)


def _encode(name: str, v: float) -> float:
    if name.startswith("eta"):
        v = min(max(v, 1e-6), 1 - 1e-9)
        return math.log(v / (1 - v))
    return math.log(max(v, 1e-12))


START = {"eta": 0.5, "o_": 5e-6}


def _residual(x: np.ndarray, k: Kernels, dev: Device, names: Sequence[str]) -> np.ndarray:
    c = Calibration(**{n: _decode(n, v) for n, v in zip(names, x, strict=True)})  # type: ignore[arg-type]
    return np.log(predict(k, dev, c)) - np.log(k.seconds)


def fit(kernels: dict[str, Kernels], dev: Device, source: str) -> Calibration:
    """Least squares on log(predicted / measured), per kind."""
    values: dict[str, float] = {}
    for kind, names in PARAMS.items():
        k = kernels.get(kind)
        if k is None or len(k) == 0:
            continue
        x0 = [_encode(n, next(v for p, v in START.items() if n.startswith(p))) for n in names]
        sol = least_squares(
            _residual, x0, method="trf", loss="soft_l1", f_scale=0.1, args=(k, dev, names)
        )
        values.update({n: _decode(n, v) for n, v in zip(names, sol.x, strict=True)})
    cal = Calibration(source=source, **values)  # type: ignore[arg-type]
    el = kernels.get("elem")
    if el is not None and len(el):
        table: dict[str, tuple[float, float]] = {}
        for op in np.unique(el.op):
            sub = el.take(el.op == op)
            y = np.log(sub.seconds)
            nb = sub.shape["bytes"]

            def res_el(x: np.ndarray, nb: np.ndarray = nb, y: np.ndarray = y) -> np.ndarray:
                eta, o = _decode("eta", x[0]), math.exp(x[1])
                return np.log(o + nb / (dev.bandwidth * eta)) - y

            sol = least_squares(res_el, [0.0, math.log(3e-6)], loss="soft_l1", f_scale=0.1)
            table[str(op)] = (_decode("eta", sol.x[0]), math.exp(sol.x[1]))
        cal = replace(cal, elem=table)
    ar = kernels.get("allreduce")
    if ar is not None and len(ar):
        ar_table = {}
        for n in np.unique(ar.shape["gpus"]):
            m = ar.shape["gpus"] == n
            S = 2 * (n - 1) / n * ar.shape["bytes"][m]
            y = np.log(ar.seconds[m])

            def res_ar(x: np.ndarray, S: np.ndarray = S, y: np.ndarray = y) -> np.ndarray:
                return np.log(math.exp(x[0]) + S / (dev.link * _decode("eta", x[1]))) - y

            sol = least_squares(res_ar, [math.log(1e-5), 0.0], loss="soft_l1", f_scale=0.1)
            ar_table[int(n)] = (math.exp(sol.x[0]), _decode("eta", sol.x[1]))
        cal = replace(cal, allreduce=ar_table)
    return cal


def errors(k: Kernels, dev: Device, cal: Calibration) -> np.ndarray:
    """Relative errors (predicted − measured) / measured."""
    return predict(k, dev, cal) / k.seconds - 1.0


# --- calibration files -------------------------------------------------------------------


def device_of(hw: Any, math_type: str = "fp16") -> Device:
    """A catalog device's datasheet numbers for the calibrated model; the SM count comes
    from ``data/calibration.yaml`` (refused when it has none for this device)."""
    units = _calibration_data()["compute_units"]
    if hw.key not in units:
        raise KeyError(
            f"hardware {hw.key!r} has no compute-unit count in the calibration data "
            f"(known: {', '.join(sorted(units))})"
        )
    return Device(
        hw.peak_flops(math_type),
        hw.bandwidth_gbs * 1e9,
        int(units[hw.key]["value"]),
        hw.interconnect.bandwidth_gbs * 1e9,
    )


def default_calibration() -> Calibration:
    """The constants shipped in ``data/calibration.yaml`` (fitted on A100 profiles)."""
    return Calibration.from_dict(_calibration_data()["fitted"])


_DATA: dict[str, Any] | None = None


def _calibration_data() -> dict[str, Any]:
    global _DATA
    if _DATA is None:
        from importlib import resources

        from optkit.costmodel.loader import _read_yaml

        res = resources.files("optkit.costmodel").joinpath("data").joinpath("calibration.yaml")
        _DATA = _read_yaml("calibration.yaml", res.read_text())
    return _DATA


def calibration_document(
    cal: Calibration, hardware: str, dev: Device, kernels: dict[str, Kernels]
) -> dict[str, Any]:
    """The YAML document ``optkit calibrate`` writes: the fitted constants with what they
    were fitted on, the device numbers used, and the fit's errors per kind."""
    fit_err = {}
    for kind, k in kernels.items():
        e = np.abs(errors(k, dev, cal))
        fit_err[kind] = {
            "kernels": len(k),
            "median_abs_rel_error": round(float(np.median(e)), 4),
            "p90_abs_rel_error": round(float(np.percentile(e, 90)), 4),
        }
    return {
        "fitted": cal.to_dict(),
        "device": {
            "hardware": hardware,
            "flops": dev.flops,
            "bandwidth": dev.bandwidth,
            "compute_units": dev.sms,
            "link": dev.link,
        },
        "fit_errors": fit_err,
    }
