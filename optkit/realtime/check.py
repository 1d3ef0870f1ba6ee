"""Independent verifier of a real-time schedule (formulations/realtime.md, "Plan and
objective"): completions recomputed from the starts with the interference integral,
never taken from a solver or the simulator."""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from optkit.realtime.instance import LLM, RealtimeInstance
from optkit.realtime.plan import RtPlan
from optkit.result import Verdict

#: times are compared relative to the horizon's magnitude
REL = 1e-9


def completions(inst: RealtimeInstance, backend: np.ndarray, start: np.ndarray) -> np.ndarray:
    """C_j of every job that runs (nan for dropped ones). Without interference C = S + p;
    with it, all running jobs progress at ρ = min(1, W / Σ δ) (a shared virtual clock)."""
    jt = inst.jobs
    run = np.nonzero(backend >= 0)[0]
    C = np.full(len(jt), np.nan)
    p = jt.p[run, backend[run]]
    if not inst.interference:
        C[run] = start[run] + p
        return C
    demand = (jt.bytes[run] / p).tolist()
    dur = p.tolist()
    W = inst.shared_bandwidth
    order = np.argsort(start[run], kind="stable")  # positions in ``run``
    starts = start[run][order].tolist()
    idx = order.tolist()
    done = [0.0] * len(run)
    t, V, D = 0.0, 0.0, 0.0  # real time, virtual time, demand of running jobs
    heap: list[tuple[float, int]] = []
    k, K = 0, len(idx)
    while k < K or heap:
        rho = 1.0 if D <= W else W / D
        t_next = starts[k] if k < K else np.inf
        t_done = t + (heap[0][0] - V) / rho if heap else np.inf
        if t_done <= t_next:
            V, t = heap[0][0], t_done
            _, i = heapq.heappop(heap)
            done[i] = t
            D = max(0.0, D - demand[i]) if heap else 0.0
        else:
            V, t = V + (t_next - t) * rho, t_next
            i = idx[k]
            k += 1
            heapq.heappush(heap, (V + dur[i], i))
            D += demand[i]
    C[run] = done
    return C


def check(inst: RealtimeInstance, plan: RtPlan) -> Verdict:
    jt = inst.jobs
    n, B = len(jt), len(inst.backends)
    if len(plan) != n:
        return Verdict(float("nan"), (f"the plan has {len(plan)} jobs, the instance {n}",), {})
    b, S = plan.backend, plan.start
    bad: list[str] = []
    if np.any(b >= B):
        bad.append(f"job {int(np.argmax(b >= B))}: backend index beyond {B - 1}")
        return Verdict(float("nan"), tuple(bad), {})
    run = b >= 0
    if np.any(~np.isfinite(S[run])):
        bad.append(f"job {int(np.nonzero(run & ~np.isfinite(S))[0][0])}: start is not a number")
        return Verdict(float("nan"), tuple(bad), {})
    tol = REL * max(1.0, inst.horizon, float(np.nanmax(np.abs(S), initial=0.0)))
    p = np.where(run, jt.p[np.arange(n), np.maximum(b, 0)], 0.0)
    for j in np.nonzero(run & ~np.isfinite(p))[0][:3]:
        bad.append(f"job {j}: backend {inst.backends[b[j]].name} cannot run it")
    for j in np.nonzero(run & (jt.release - tol > S))[0][:3]:
        bad.append(f"job {j}: starts at {S[j]:.9g} s before its release {jt.release[j]:.9g} s")
    for j in np.nonzero((jt.kind == LLM) & ~run)[0][:3]:
        bad.append(f"job {j}: an LLM job is dropped (every LLM job must run)")
    if bad:
        return Verdict(float("nan"), tuple(bad), {})
    C = completions(inst, b, S)
    has = jt.pred >= 0
    q = jt.pred
    for j in np.nonzero(has & run & (b[np.maximum(q, 0)] < 0))[0][:3]:
        bad.append(f"job {j}: runs although its predecessor {q[j]} was dropped")
    late = has & run & (b[np.maximum(q, 0)] >= 0)
    for j in np.nonzero(late & (C[np.maximum(q, 0)] - tol > S))[0][:3]:
        bad.append(f"job {j}: starts at {S[j]:.9g} s before its predecessor ends {C[q[j]]:.9g} s")
    for k in range(B):
        on = np.nonzero(b == k)[0]
        o = on[np.argsort(S[on], kind="stable")]
        ov = np.nonzero(S[o[1:]] < C[o[:-1]] - tol)[0]
        for i in ov[:3]:
            bad.append(
                f"backend {inst.backends[k].name}: job {o[i + 1]} starts at {S[o[i + 1]]:.9g} s "
                f"while job {o[i]} runs until {C[o[i]]:.9g} s"
            )
    miss = ~run | (jt.deadline + tol < C)
    obj = float(np.sum(jt.weight * miss))
    return Verdict(obj, tuple(bad), metrics(inst, b, S, C, miss))


def metrics(
    inst: RealtimeInstance, b: np.ndarray, S: np.ndarray, C: np.ndarray, miss: np.ndarray
) -> dict[str, Any]:
    """Miss rates (overall, perception, per task), TTFT and TPS percentiles, utilisation."""
    jt = inst.jobs
    n = len(jt)
    out: dict[str, Any] = {
        "jobs": float(n),
        "misses": float(np.sum(miss)),
        "miss_rate": float(np.mean(miss)) if n else 0.0,
    }
    per = jt.kind != LLM
    out["perception_miss_rate"] = float(np.mean(miss[per])) if per.any() else 0.0
    for i, name in enumerate(inst.streams[: len(inst.tasks)]):
        m = jt.task == i
        # frames of a task: released ones (absent cascade frames are no jobs)
        out[f"miss_rate.{name}"] = float(np.mean(miss[m])) if m.any() else 0.0
    llm = jt.kind == LLM
    if llm.any():
        first = llm & (jt.step == 0)
        arrival = jt.release[first]
        ttft = C[first] - arrival
        reqs = jt.request[first]
        last = np.zeros(int(reqs.max()) + 1)
        np.maximum.at(last, jt.request[llm], C[llm])
        toks = np.bincount(jt.request[llm])
        dur = last[reqs] - C[first]
        tps = np.where(dur > 0, (toks[reqs] - 1) / np.where(dur > 0, dur, 1.0), np.inf)
        out["llm_miss_rate"] = float(np.mean(miss[llm]))
        out["ttft_p50_s"] = float(np.percentile(ttft, 50))
        out["ttft_p90_s"] = float(np.percentile(ttft, 90))
        fin = tps[np.isfinite(tps)]
        out["tps_p50"] = float(np.percentile(fin, 50)) if len(fin) else float("inf")
        out["tps_p10"] = float(np.percentile(fin, 10)) if len(fin) else float("inf")
    run = b >= 0
    end = max(inst.horizon, float(np.nanmax(C, initial=0.0)))
    for k, be in enumerate(inst.backends):
        on = b == k
        out[f"utilization.{be.name}"] = float(np.sum(C[on] - S[on]) / end) if end > 0 else 0.0
    out["makespan_s"] = float(np.nanmax(C[run], initial=0.0))
    return out
