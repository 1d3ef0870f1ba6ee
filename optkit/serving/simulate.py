"""Iteration-level discrete-event simulator: any scheduler over a serving instance."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optkit.serving.bounds import workloads
from optkit.serving.instance import ServingInstance
from optkit.serving.policies import ClientState, Scheduler
from optkit.serving.schedule import Iteration, Schedule


@dataclass
class ClientLog:
    busy_s: float = 0.0
    slot_s: float = 0.0  # Σ over decode iterations of running sequences × duration
    iterations: int = 0
    decode_iterations: int = 0
    # every iteration, only when recorded: the client's part of the schedule
    schedule: list[Iteration] = field(default_factory=list)


@dataclass
class SimResult:
    scheduler: str
    assignment: np.ndarray
    first_token: np.ndarray
    finish: np.ndarray
    clients: list[ClientLog]
    runtime_s: float = 0.0

    @property
    def makespan(self) -> float:
        return float(np.max(self.finish)) if len(self.finish) else 0.0

    @property
    def schedule(self) -> Schedule:
        """The recorded iterations as a plan (simulate with ``record=True``)."""
        if any(c.iterations and not c.schedule for c in self.clients):
            raise ValueError("no iterations recorded: simulate with record=True")
        return Schedule(tuple(tuple(c.schedule) for c in self.clients))


def least_work_dispatch(inst: ServingInstance) -> np.ndarray:
    """Online dispatch on arrival: the client whose assigned workload frees earliest
    (list scheduling of the workloads w_j with release times)."""
    w = workloads(inst)
    free = [(0.0, i) for i in range(inst.clients)]
    heapq.heapify(free)
    out = np.empty(inst.n, dtype=np.int64)
    for j in np.argsort(inst.arrival, kind="stable"):
        t, i = heapq.heappop(free)
        out[j] = i
        heapq.heappush(free, (max(t, float(inst.arrival[j])) + float(w[j]), i))
    return out


def simulate_client(
    inst: ServingInstance,
    ids: np.ndarray,
    scheduler: Scheduler,
    est_output: np.ndarray,
    first: np.ndarray,
    finish: np.ndarray,
    record: bool = False,
) -> ClientLog:
    """Run one client until every request in ``ids`` has finished."""
    model = inst.iteration
    prompt, output, arrival = inst.prompt, inst.output, inst.arrival
    st = ClientState(prompt, est_output, model, inst.max_batch, inst.kv_tokens)
    log = ClientLog()
    order = ids[np.argsort(arrival[ids], kind="stable")]
    nxt, total = 0, len(order)
    heap: list[tuple[int, int]] = []
    done_decodes = 0
    now = 0.0
    time_fn = model.time
    while True:
        while nxt < total and arrival[order[nxt]] <= now:
            scheduler.on_arrival(int(order[nxt]), st)
            nxt += 1
        st.now = now
        plan = scheduler.next_iteration(st)
        if plan.empty:
            if nxt < total:
                now = max(now, float(arrival[order[nxt]]))
                continue
            if st.waiting or st.prefilling or st.running:
                raise RuntimeError(f"scheduler {scheduler.name} stalled with work left")
            break
        b = st.running if plan.decode else 0
        N, A = b, 0.0
        for j, x in plan.prefill:
            p = st.prefilling.get(j, 0)
            N += x
            A += x * p + x * (x + 1) / 2
        dt = time_fn(N, A, st.context if b else 0.0)
        end = now + dt
        if record:
            chunks = tuple((int(j), int(x)) for j, x in plan.prefill)
            log.schedule.append(Iteration(now, dt, chunks, bool(b)))
        joined = []
        for j, x in plan.prefill:
            if j not in st.prefilling:
                st.kv_used += st.reserve(j)
            p = st.prefilling.pop(j, 0) + x
            if p < prompt[j]:
                st.prefilling[j] = p
                continue
            first[j] = end
            if output[j] == 1:
                finish[j] = end
                st.kv_used -= st.reserve(j)
            else:
                joined.append(j)
        if b:
            done_decodes += 1
            st.context += b
            st.remaining -= b
            log.slot_s += b * dt
            log.decode_iterations += 1
            while heap and heap[0][0] <= done_decodes:
                _, j = heapq.heappop(heap)
                finish[j] = end
                st.running -= 1
                st.context -= prompt[j] + output[j]
                st.remaining -= est_output[j] - output[j]
                st.kv_used -= st.reserve(j)
        for j in joined:
            st.running += 1
            st.context += prompt[j] + 1
            st.remaining += est_output[j] - 1
            heapq.heappush(heap, (done_decodes + int(output[j]) - 1, j))
        log.busy_s += dt
        log.iterations += 1
        now = end
    return log


def simulate(
    inst: ServingInstance,
    scheduler: str | Callable[[int], Scheduler],
    assignment: np.ndarray | None = None,
    est_output: np.ndarray | None = None,
    record: bool = False,
    **kwargs: Any,
) -> SimResult:
    """Simulate every client; ``scheduler`` is a scheduler name (with ``kwargs``) or a
    factory called with each client's index; ``assignment`` (client per request)
    defaults to online least-work dispatch; ``est_output`` defaults to the true
    output lengths."""
    import time

    from optkit.serving import policies

    t0 = time.perf_counter()

    def factory(i: int) -> Scheduler:
        return policies.make(scheduler, **kwargs) if isinstance(scheduler, str) else scheduler(i)

    assign = least_work_dispatch(inst) if assignment is None else np.asarray(assignment)
    if assign.shape != (inst.n,) or (inst.n and (assign.min() < 0 or assign.max() >= inst.clients)):
        raise ValueError(f"assignment must give a client in 0..{inst.clients - 1} for each request")
    est = inst.output if est_output is None else np.asarray(est_output)
    first = np.full(inst.n, np.nan)
    finish = np.full(inst.n, np.nan)
    logs = []
    name = ""
    for i in range(inst.clients):
        sched = factory(i)
        name = sched.name
        ids = np.flatnonzero(assign == i)
        logs.append(simulate_client(inst, ids, sched, est, first, finish, record))
    return SimResult(name, assign, first, finish, logs, time.perf_counter() - t0)
