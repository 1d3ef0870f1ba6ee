"""Independent check of a simulated schedule: limits, accounting, times."""

from __future__ import annotations

import numpy as np

from optkit.serving.instance import ServingInstance
from optkit.serving.simulate import SimResult


def check(inst: ServingInstance, res: SimResult) -> tuple[float, list[str]]:
    """(makespan recomputed from the iteration logs, violations). Needs ``record=True``."""
    v: list[str] = []
    if np.any(np.isnan(res.finish)) or np.any(np.isnan(res.first_token)):
        v.append("some request never finished")
    # tolerances relative to the instance's time scale: units users pick (s, ms, h)
    # change no verdict
    horizon = max(float(np.max(inst.arrival, initial=0.0)), float(res.makespan or 0.0))
    eps = 1e-12 * horizon
    if np.any(res.first_token < inst.arrival - eps):
        v.append("a first token precedes its request's arrival")
    if np.any(res.finish < res.first_token - eps):
        v.append("a request finished before its first token")
    tokens = 0
    end = 0.0
    for i, log in enumerate(res.clients):
        if not log.trace and log.iterations:
            v.append(f"client {i}: no iteration trace (simulate with record=True)")
            continue
        t_prev = 0.0
        for start, dt, held, kv, out in log.trace:
            if start < t_prev - 1e3 * eps:
                v.append(f"client {i}: iterations overlap at t={start:g}")
            if held > inst.max_batch:
                v.append(
                    f"client {i}: {held} slots held > max_batch {inst.max_batch} at t={start:g}"
                )
            if kv > inst.kv_tokens:
                v.append(f"client {i}: {kv} KV tokens > kv_tokens {inst.kv_tokens} at t={start:g}")
            t_prev = start + dt
            tokens += out
        end = max(end, t_prev)
    if tokens != int(inst.output.sum()):
        v.append(f"{tokens} output tokens produced, expected {int(inst.output.sum())}")
    if len(res.finish) and not np.isclose(end, res.makespan, rtol=1e-12, atol=eps):
        v.append(f"last iteration ends at {end:g}, makespan says {res.makespan:g}")
    return end, v
