"""Independent verifier of a serving schedule (formulations/serving.md, "Semantics").

It never trusts the simulator: from the instance alone it replays every client's
iterations, recomputes each duration τ(N, A, C) from the iteration model, and checks
order, arrivals, prompt chunks, batch slots, KV tokens, and that every request gets
exactly its output tokens. The objective is the makespan, the last finish.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from optkit.result import Verdict
from optkit.serving.instance import ServingInstance
from optkit.serving.schedule import Schedule

#: Relative tolerance on a claimed duration and on start times (float round-off).
REL = 1e-9


def check(inst: ServingInstance, schedule: Schedule) -> Verdict:
    """Recompute the makespan of ``schedule`` and list its violations.

    ``details``: ``{"first_token": array, "finish": array, "assignment": array}``.
    """
    n, it_model = inst.n, inst.iteration
    prompt, output, arrival = inst.prompt, inst.output, inst.arrival
    v: list[str] = []
    if len(schedule.clients) > inst.clients:
        v.append(f"the schedule uses {len(schedule.clients)} clients, the fleet has {inst.clients}")
    owner = np.full(n, -1, dtype=np.int64)
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    # time tolerance relative to the instance's own time scale (seconds, ms or hours alike)
    scale = max(float(np.max(arrival, initial=0.0)), it_model.time(1, 0, 0))
    for i, its in enumerate(schedule.clients[: inst.clients]):
        prefilled: dict[int, int] = {}  # request -> prompt tokens done (prefill not complete)
        running: dict[int, int] = {}  # request -> output tokens so far (decoding)
        end_prev = 0.0
        for k, it in enumerate(its):
            where = f"client {i} iteration {k}"
            eps = REL * max(scale, end_prev)
            if it.start < end_prev - eps:
                v.append(
                    f"{where}: starts at {it.start:g}, before the previous ends ({end_prev:g})"
                )
            decoding = list(running) if it.decode else []
            b = len(decoding)
            C = float(sum(int(prompt[j]) + running[j] for j in decoding))
            N, A = b, 0.0
            seen: set[int] = set()
            done: list[int] = []
            for j, x in it.prefill:
                if not 0 <= j < n:
                    v.append(f"{where}: prefills request {j}, not in 0..{n - 1}")
                    continue
                if j in seen:
                    v.append(f"{where}: prefills request {j} twice")
                    continue
                seen.add(j)
                if owner[j] not in (-1, i):
                    v.append(f"{where}: request {j} was started on client {owner[j]}")
                    continue
                if j in running or not math.isnan(first[j]):
                    v.append(f"{where}: prefills request {j}, whose prefill is complete")
                    continue
                if it.start < arrival[j] - eps:
                    v.append(
                        f"{where}: prefills request {j} at {it.start:g}, "
                        f"before it arrives ({arrival[j]:g})"
                    )
                p = prefilled.get(j, 0)
                if x < 0 or p + x > prompt[j]:
                    v.append(f"{where}: request {j} prefills {x} tokens after {p} of {prompt[j]}")
                    continue
                owner[j] = i
                N += x
                A += x * p + x * (x + 1) / 2
                prefilled[j] = p + x
                if p + x == prompt[j]:
                    done.append(j)
            dt = it_model.time(N, A, C if b else 0.0)
            if not math.isclose(it.duration, dt, rel_tol=REL, abs_tol=REL * scale):
                v.append(f"{where}: duration {it.duration:.9g} s, the model gives {dt:.9g} s")
            end = it.start + dt
            held = list(running) + list(prefilled)
            if len(held) > inst.max_batch:
                v.append(f"{where}: {len(held)} requests hold slots, max_batch {inst.max_batch}")
            kv = int(sum(int(prompt[j] + output[j]) for j in held))
            if kv > inst.kv_tokens:
                v.append(f"{where}: {kv} KV tokens reserved, kv_tokens {inst.kv_tokens}")
            for j in decoding:
                running[j] += 1
                if running[j] == output[j]:
                    finish[j] = end
                    del running[j]
            for j in done:
                del prefilled[j]
                first[j] = end
                if output[j] == 1:
                    finish[j] = end
                else:
                    running[j] = 1
            end_prev = end
            if len(v) > 20:
                break
        for j in prefilled:
            v.append(f"client {i}: request {j}'s prefill never completes")
        for j in running:
            v.append(f"client {i}: request {j} stops after {running[j]} of {output[j]} tokens")
    never = np.flatnonzero(owner < 0)
    if len(never):
        v.append(f"{len(never)} requests never scheduled (first: {int(never[0])})")
    makespan = float(np.nanmax(finish)) if n and not np.all(np.isnan(finish)) else 0.0
    details: dict[str, Any] = {"first_token": first, "finish": finish, "assignment": owner}
    return Verdict(makespan, tuple(v[:50]), details)
