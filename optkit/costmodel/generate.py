"""Trace -> instance: job durations from the cost model."""

from __future__ import annotations

import numpy as np

from optkit.costmodel.catalog import Hardware, Model
from optkit.costmodel.roofline import Setup, request_time
from optkit.costmodel.traces import Trace

DECIMALS = 6  # durations in microseconds: packing solves them as integers


def request_durations(
    trace: Trace, model: Model, hardware: Hardware, setup: Setup = Setup(), batch: int = 1
) -> np.ndarray:
    """Each request's share of a serving instance's time, in seconds.

    With ``batch`` = B the request is assumed to run in a batch of B requests of its
    own shape, so its share is ``request_time(B, n_in, n_out) / B``; B = 1 is the
    time of the request served alone.
    """
    if batch < 1:
        raise ValueError("batch must be >= 1")
    t = request_time(model, hardware, batch, trace.prompt, trace.output, setup) / batch
    return np.round(np.asarray(t, dtype=float), DECIMALS)


def makespan_instance(
    trace: Trace,
    model: Model,
    hardware: Hardware,
    devices: int,
    setup: Setup = Setup(),
    batch: int = 1,
    name: str | None = None,
) -> dict:
    """A ``makespan`` instance document: one machine per ``setup.tp`` devices."""
    if devices < setup.tp * setup.pp or devices % (setup.tp * setup.pp):
        raise ValueError(
            f"devices ({devices}) must be a positive multiple of tp x pp ({setup.tp * setup.pp})"
        )
    machines = devices // (setup.tp * setup.pp)
    d = request_durations(trace, model, hardware, setup, batch)
    return {
        "problem": "makespan",
        "format_version": 1,
        "name": name or f"{trace.name}-{model.key}-{hardware.key}-{machines}x",
        "machines": machines,
        "durations": [float(x) for x in d],
        "job_ids": list(trace.ids),
        "generated_by": {
            "model": model.key,
            "hardware": hardware.key,
            "devices": devices,
            "tp": setup.tp,
            "pp": setup.pp,
            "precision": setup.precision.label,
            "batch": batch,
            "duration": "request_time(batch, prompt, output) / batch, seconds (optkit.costmodel)",
            "trace": trace.name,
            "requests": len(trace),
        },
    }
