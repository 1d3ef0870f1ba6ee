"""Trace -> serving instance, with the iteration model and memory from the cost model."""

from __future__ import annotations

from typing import Any

import numpy as np

from optkit.costmodel.roofline import Setup, kv_bytes_per_token_layer, weight_bytes
from optkit.costmodel.traces import Trace
from optkit.serving.instance import IterationModel, ServingInstance


def kv_capacity_tokens(
    model: Any, hardware: Any, setup: Setup, memory_fraction: float = 0.9
) -> int:
    """KV tokens one client (tp devices) holds: usable memory minus weights, per token.

    ``memory_fraction`` is the share of device memory the engine may use (vLLM's
    ``gpu_memory_utilization`` defaults to 0.9)."""
    per_device = hardware.memory_gb * 1e9 * memory_fraction - float(weight_bytes(model, setup))
    per_token = float(kv_bytes_per_token_layer(model, setup.precision)) * model.layers / setup.tp
    return max(int(per_device // per_token), 0)


def serving_instance(
    trace: Trace,
    model: Any,
    hardware: Any,
    clients: int,
    setup: Setup = Setup(),
    max_batch: int = 256,
    memory_fraction: float = 0.9,
    arrivals: bool = True,
    name: str | None = None,
    efficiency: str = "calibrated",
) -> ServingInstance:
    """The instance of ``trace`` on ``clients`` x ``setup.tp`` devices. ``efficiency``:
    ``calibrated`` times iterations by the form fitted to the calibrated forward passes
    (a prediction of the real GPU; the roofline where the device has no calibration),
    ``roofline`` by the roofline itself (a proven lower bound on every iteration, so
    T^LB of that instance bounds the real machine). The roofline coefficients are kept
    in ``meta.iteration_roofline`` either way."""
    from optkit.costmodel.predict import has_calibration

    if efficiency not in ("calibrated", "roofline"):
        raise ValueError(f"efficiency: expected calibrated or roofline, got {efficiency!r}")
    if clients < 1:
        raise ValueError("clients must be >= 1")
    kv = kv_capacity_tokens(model, hardware, setup, memory_fraction)
    if kv < 1:
        raise ValueError(
            f"{model.key} does not fit on {setup.tp} x {hardware.key} "
            f"(weights exceed {memory_fraction:.0%} of memory); raise the tensor-parallel degree"
        )
    roof = IterationModel.from_costmodel(model, hardware, setup)
    times: dict[str, Any] = {"times": "roofline"}
    it = roof
    if efficiency == "calibrated" and has_calibration(hardware):
        if setup.efficiency != type(setup.efficiency)():
            raise ValueError("compute/memory efficiencies apply to efficiency 'roofline'")
        it, err = IterationModel.from_calibrated(model, hardware, setup)
        times = {"times": "calibrated", "iteration_fit_median_error": round(err, 4)}
    elif efficiency == "calibrated":
        times["times_note"] = f"{hardware.key} has no calibration: roofline times"
    return ServingInstance(
        clients=clients,
        max_batch=max_batch,
        kv_tokens=kv,
        iteration=it,
        arrival=trace.arrival_s if arrivals else np.zeros(len(trace)),
        prompt=trace.prompt,
        output=trace.output,
        name=name or f"{trace.name}-{model.key}-{clients}x{setup.tp}-{hardware.key}",
        request_ids=trace.ids,
        meta={
            "model": model.key,
            "hardware": hardware.key,
            "tp": setup.tp,
            "precision": setup.precision.label,
            "memory_fraction": memory_fraction,
            "trace": trace.name,
            **times,
            "iteration_roofline": roof.to_dict(),
        },
    )
