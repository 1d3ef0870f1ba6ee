"""Where a schedule's time goes: busy and idle time, iterations by kind, decode stalls,
time below the compute knee, and slot and KV occupancy (formulations/serving.md,
"Where the time goes"). Computed from the schedule and the instance alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optkit.serving.check import check
from optkit.serving.instance import ServingInstance
from optkit.serving.schedule import Schedule


@dataclass
class Occupancy:
    """One client: per iteration its start, end, slots held and KV tokens reserved."""

    start: np.ndarray
    end: np.ndarray
    slots: np.ndarray
    kv: np.ndarray


def _held(t: np.ndarray, since: np.ndarray, until: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Σ weight over the intervals [since, until) that contain each time t."""
    a, b = np.argsort(since), np.argsort(until)
    wa = np.r_[0.0, np.cumsum(weight[a])]
    wb = np.r_[0.0, np.cumsum(weight[b])]
    return wa[np.searchsorted(since[a], t, "right")] - wb[np.searchsorted(until[b], t, "right")]


def occupancy(inst: ServingInstance, schedule: Schedule) -> list[Occupancy]:
    """Slots and KV held in every iteration: a request holds from the start of its first
    prompt chunk to the end of its last token (its finish)."""
    verdict = check(inst, schedule)
    finish = verdict.details["finish"]
    out = []
    for its in schedule.clients:
        first_chunk: dict[int, float] = {}
        for it in its:
            for j, _ in it.prefill:
                first_chunk.setdefault(j, it.start)
        ids = np.fromiter(first_chunk, dtype=np.int64, count=len(first_chunk))
        since = np.fromiter(first_chunk.values(), dtype=float, count=len(ids))
        t = np.array([it.start for it in its])
        end = np.array([it.start + it.duration for it in its])
        rho = (inst.prompt[ids] + inst.output[ids]).astype(float)
        until = finish[ids].astype(float)
        slots = _held(t, since, until, np.ones(len(ids)))
        out.append(Occupancy(t, end, slots, _held(t, since, until, rho)))
    return out


def breakdown(inst: ServingInstance, schedule: Schedule) -> dict[str, float]:
    """Fleet totals (seconds summed over clients, shares of m·makespan or of the limits)."""
    it_model = inst.iteration
    verdict = check(inst, schedule)
    first, finish = verdict.details["first_token"], verdict.details["finish"]
    T = verdict.objective
    occ = occupancy(inst, schedule)
    busy = idle = stall = stalled_seq = below = slot_s = kv_s = 0.0
    kinds = {"decode_only": 0, "mixed": 0, "prefill_only": 0, "stalled": 0}
    owner = verdict.details["assignment"]
    for i, (its, oc) in enumerate(zip(schedule.clients, occ, strict=True)):
        if not its:
            idle += T
            continue
        dur = oc.end - oc.start
        t = oc.start
        # decoding in an iteration: first token before it started, not finished before it
        on = owner == i
        b = np.rint(_held(t, first[on], finish[on], (inst.output[on] > 1).astype(float)))
        chunk = np.array([sum(x for _, x in i.prefill) for i in its], dtype=float)
        dec = np.array([i.decode for i in its])
        N = chunk + np.where(dec, b, 0.0)
        below += float(np.sum(np.maximum(it_model.tau_w - it_model.kappa * N, 0.0)))
        pre = chunk > 0
        kinds["decode_only"] += int(np.sum(dec & ~pre))
        kinds["mixed"] += int(np.sum(dec & pre))
        kinds["prefill_only"] += int(np.sum(~dec & pre))
        st = ~dec & (b > 0)
        kinds["stalled"] += int(np.sum(st))
        stall += float(np.sum(dur[st]))
        stalled_seq += float(np.sum((b * dur)[st]))
        busy += float(np.sum(dur))
        idle += T - float(np.sum(dur))
        slot_s += float(np.sum(oc.slots * dur))
        kv_s += float(np.sum(oc.kv * dur))
    m = inst.clients
    iterations = sum(kinds[k] for k in ("decode_only", "mixed", "prefill_only"))
    span = m * T if T else 1.0
    return {
        "busy_s": busy,
        "idle_s": idle,
        "iterations": float(iterations),
        **{f"iterations_{k}": float(v) for k, v in kinds.items()},
        "stall_s": stall,
        "stalled_sequence_s": stalled_seq,
        "below_knee_s": below,
        "overhead_s": it_model.tau_c * iterations,
        "slot_occupancy": slot_s / (span * inst.max_batch),
        "kv_occupancy": kv_s / (span * inst.kv_tokens),
    }
