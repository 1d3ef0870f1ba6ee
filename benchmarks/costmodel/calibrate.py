"""Calibrated kernel model against measured A100 kernel times (held-out rows).

python benchmarks/costmodel/calibrate.py

Fits the device-independent constants of ``optkit.costmodel.calibrated`` on a split of
``../shared/data/gpu_kernel_profiles`` and reports the absolute relative error on the
rest, by regime, beside the pure roofline's. Split: GEMMs and element-wise kernels by
model (fit on Llama-2-7B, Llama-2-70B, Llama-3-8B, Qwen-72B; report on CodeLlama-34B,
InternLM-20B, Llama-3-70B, Phi-2); attention and all-reduce (one source each) by
a seeded random half. Writes results/calibration_errors.csv,
results/calibration_scatter.png and results/calibration_fitted.yaml (the constants
shipped in optkit/costmodel/data/calibration.yaml).

End to end on a device not used for fitting: the whole prefill and decode passes
measured on an H200 (results/gpu_measured_h200.json, benchmarks/costmodel/gpu_measure.py)
against the shipped calibration and the roofline: results/calibration_e2e_h200.csv.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from optkit.costmodel.calibrated import ROOFLINE, Calibration, Device  # noqa: E402
from optkit.costmodel.fit import Kernels, errors, fit, predict, read_profiles  # noqa: E402
from optkit.io import write_csv  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gpu_kernel_profiles"
OUT = HERE / "results"
A100 = Device(312e12, 2039e9, 108, 300e9)  # a100-80gb + NVLink 3 (hardware.yaml)
TRAIN_MODELS = (
    "meta-llama_Llama-2-7b-hf",
    "meta-llama_Llama-2-70b-hf",
    "meta-llama_Meta-Llama-3-8B",
    "Qwen_Qwen-72B",
)


def split(kernels: dict[str, Kernels], seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    train, test = {}, {}
    for kind, k in kernels.items():
        by_model = kind in ("gemm", "elem")
        m = np.isin(k.model, TRAIN_MODELS) if by_model else rng.random(len(k)) < 0.5
        train[kind], test[kind] = k.take(m), k.take(~m)
    return train, test


def regimes(k: Kernels) -> dict[str, np.ndarray]:
    """Row masks of the regimes the issue names."""
    roof = predict(k, A100, ROOFLINE)
    small = roof < 20e-6
    s = k.shape
    if k.kind == "gemm":
        F = 2 * s["M"] * s["N"] * s["K"]
        B = 2 * (s["M"] * s["K"] + s["K"] * s["N"] + s["M"] * s["N"])
        mem = B / A100.bandwidth > F / A100.flops
        return {
            "gemm memory-bound (decode)": mem,
            "gemm compute-bound (prefill)": ~mem,
            "gemm small (roofline < 20 us)": small,
            "gemm large": ~small,
        }
    if k.kind == "elem":
        return {f"elementwise {op}": k.op == op for op in np.unique(k.op)}
    if k.kind == "attn_decode":
        return {
            "attention decode batch <= 8": s["batch"] <= 8,
            "attention decode batch > 8": s["batch"] > 8,
        }
    if k.kind == "attn_prefill":
        return {
            "attention prefill chunk <= 256": s["chunk"] <= 256,
            "attention prefill chunk > 256": s["chunk"] > 256,
        }
    return {f"all-reduce {int(n)} GPUs": s["gpus"] == n for n in np.unique(s["gpus"])}


def main() -> None:
    kernels = read_profiles(DATA)
    train, test = split(kernels)
    n_train = sum(len(k) for k in train.values())
    cal = fit(
        train,
        A100,
        f"fitted on {n_train:,} A100 kernel times of Vidur's profiles (gpu_kernel_profiles: "
        f"GEMM and element-wise rows of {', '.join(TRAIN_MODELS)}; a seeded half of the "
        "attention and all-reduce rows) by benchmarks/costmodel/calibrate.py",
    )
    rows = []
    for kind, k in test.items():
        e = np.abs(errors(k, A100, cal))
        r = errors(k, A100, ROOFLINE)
        for name, m in {f"{kind} (all)": np.ones(len(k), bool), **regimes(k)}.items():
            if not m.any():
                continue
            rows.append(
                {
                    "regime": name,
                    "held_out_kernels": int(m.sum()),
                    "calibrated_median": round(float(np.median(e[m])), 4),
                    "calibrated_p90": round(float(np.percentile(e[m], 90)), 4),
                    "roofline_median": round(float(np.median(np.abs(r[m]))), 4),
                    "roofline_max_pred_over_measured": round(float(np.max(r[m] + 1)), 4),
                }
            )
            print(rows[-1])
    OUT.mkdir(exist_ok=True)
    write_csv(OUT / "calibration_errors.csv", rows)
    (OUT / "calibration_fitted.yaml").write_text(
        yaml.safe_dump({"fitted": cal.to_dict()}, sort_keys=False)
    )
    scatter(test, cal)
    end_to_end()


def end_to_end() -> None:
    import json

    from optkit.costmodel import builtin_catalog, forward
    from optkit.costmodel.predict import forward_time

    cat = builtin_catalog()
    hw = cat.get_hardware("h200")
    doc = json.loads((OUT / "gpu_measured_h200.json").read_text())
    rows = []
    for r in doc["rows"]:
        m = cat.get_model(r["model"])
        pred = float(forward_time(m, hw, r["batch"], r["tokens"], r["context"])[0])
        roof = float(forward(m, hw, r["batch"], r["tokens"], r["context"]).time_s)
        rows.append(
            {
                "model": r["model"],
                "phase": r["phase"],
                "batch": r["batch"],
                "tokens": r["tokens"],
                "context": r["context"],
                "measured_ms": round(r["seconds"] * 1e3, 4),
                "calibrated_ms": round(pred * 1e3, 4),
                "roofline_ms": round(roof * 1e3, 4),
                "calibrated_error": round(pred / r["seconds"] - 1, 4),
                "roofline_error": round(roof / r["seconds"] - 1, 4),
            }
        )
    write_csv(OUT / "calibration_e2e_h200.csv", rows)
    cal_e = [abs(r["calibrated_error"]) for r in rows]
    roof_e = [abs(r["roofline_error"]) for r in rows]
    print(
        f"H200 end to end ({len(rows)} passes): median |error| calibrated "
        f"{np.median(cal_e):.3f}, roofline {np.median(roof_e):.3f}"
    )


def scatter(test: dict[str, Kernels], cal: Calibration) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(test), figsize=(4 * len(test), 4))
    for ax, (kind, k) in zip(axes, test.items(), strict=True):
        pred = predict(k, A100, cal)
        roof = predict(k, A100, ROOFLINE)
        ax.loglog(k.seconds * 1e6, roof * 1e6, ".", ms=1, alpha=0.3, label="roofline")
        ax.loglog(k.seconds * 1e6, pred * 1e6, ".", ms=1, alpha=0.3, label="calibrated")
        lo, hi = k.seconds.min() * 1e6, k.seconds.max() * 1e6
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(kind)
        ax.set_xlabel("measured (us)")
        ax.set_ylabel("predicted (us)")
        ax.legend(markerscale=10, fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "calibration_scatter.png", dpi=120)


if __name__ == "__main__":
    main()
