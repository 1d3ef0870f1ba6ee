"""Event-driven replay of an online policy over a real-time instance, with the
memory-bandwidth interference of formulations/realtime.md (a shared virtual clock: all
running jobs progress at ρ = min(1, W / Σ δ))."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from optkit.realtime.check import check
from optkit.realtime.instance import LLM, RealtimeInstance
from optkit.realtime.plan import RtPlan
from optkit.result import Verdict

INF = float("inf")

if TYPE_CHECKING:
    from optkit.realtime.policies import Policy


class State:
    """What a policy sees: ``now``, the jobs (``jt``), the ready jobs (released, their
    predecessor done, not started), each backend's running job (-1 idle) and the time it
    is expected to free (its job's isolated time; ``now`` when idle)."""

    def __init__(self, inst: RealtimeInstance) -> None:
        self.inst = inst
        self.jt = inst.jobs
        self.now = 0.0
        self.ready: list[int] = []
        B = len(inst.backends)
        self.running = [-1] * B
        self.free_at = [0.0] * B
        # plain Python lists: a decision reads a handful of entries
        self.p: list[list[float]] = self.jt.p.tolist()
        self.deadline: list[float] = self.jt.deadline.tolist()
        self.release: list[float] = self.jt.release.tolist()
        self.fastest: list[float] = self.jt.fastest.tolist()
        self.kind: list[int] = self.jt.kind.tolist()
        self.task: list[int] = self.jt.task.tolist()
        self.B = B
        self.dropped = [False] * len(self.jt)
        self.started = [False] * len(self.jt)
        self.succ: list[int] = self.jt.successors().tolist()

    def drop(self, j: int) -> None:
        """Drop ready job j (a perception frame) and the jobs that wait on it."""
        self.ready.remove(j)
        self.drop_chain(j)

    def drop_chain(self, j: int) -> None:
        """Mark j and every job waiting on it (its chain of successors) dropped."""
        while j >= 0 and not self.dropped[j]:
            self.dropped[j] = True
            j = self.succ[j]

    def finish(self, j: int, b: int) -> float:
        """Expected completion of j on b (alone) if it starts when b frees."""
        return max(self.now, self.free_at[b]) + self.p[j][b]

    def best_backend(self, j: int, b: int) -> bool:
        """True when b gives j the earliest expected finish of all backends."""
        pj = self.p[j]
        now = self.now
        mine = (now + pj[b]) * (1 - 1e-12)
        free = self.free_at
        for k in range(self.B):
            if k != b:
                f = free[k]
                if (f if f > now else now) + pj[k] < mine:
                    return False
        return True


@dataclass(frozen=True)
class Replay:
    policy: str
    plan: RtPlan
    verdict: Verdict
    decisions: int


def replay(inst: RealtimeInstance, policy: Policy, progress: Any = None) -> Replay:
    """Run ``policy`` over every job; the plan it produced is graded by :func:`check`."""
    jt = inst.jobs
    n, B = len(jt), len(inst.backends)
    st = State(inst)
    policy.reset(st)
    backend = [-1] * n
    start = [float("nan")] * n
    dropped, started, running, free_at = st.dropped, st.started, st.running, st.free_at
    succ, p = st.succ, st.p
    is_llm = [k == LLM for k in st.kind]
    bytes_ = jt.bytes.tolist()
    W = inst.shared_bandwidth
    shared = inst.interference
    roots = np.nonzero(jt.pred < 0)[0].tolist()  # already in release order
    R = len(roots)
    later: list[tuple[float, int]] = []  # successors waiting for their own release
    done: list[tuple[float, int]] = []  # (virtual completion, job)
    demand = [0.0] * B
    t, V, D = 0.0, 0.0, 0.0
    k = 0
    decisions = 0
    release = st.release
    fastest, deadline = st.fastest, st.deadline
    drop = st.drop_chain
    on_release, choose = policy.on_release, policy.next
    push, pop = heapq.heappush, heapq.heappop

    while True:
        rho = W / D if shared and D > W else 1.0
        t_rel = release[roots[k]] if k < R else INF
        if later and later[0][0] < t_rel:
            t_rel = later[0][0]
        t_done = t + (done[0][0] - V) / rho if done else INF
        if t_rel == INF and t_done == INF:
            if st.ready:
                left = [j for j in st.ready if is_llm[j]]
                if left:
                    raise RuntimeError(
                        f"policy {policy.name} left LLM job {left[0]} waiting with every "
                        "backend idle"
                    )
                for j in st.ready:
                    drop(j)
                st.ready.clear()
            break
        ready = st.ready
        if t_done <= t_rel:
            V, t = done[0][0], t_done
            j = pop(done)[1]
            b = backend[j]
            running[b] = -1
            D = D - demand[b] if done else 0.0
            demand[b] = 0.0
            st.now = free_at[b] = t
            s = succ[j]
            if s >= 0 and not dropped[s]:
                if release[s] > t:
                    push(later, (release[s], s))
                else:
                    ready.append(s)
                    on_release(s, st)
        else:
            V, t = V + (t_rel - t) * rho, t_rel
            st.now = t
            while k < R and release[roots[k]] <= t:
                j = roots[k]
                k += 1
                if not dropped[j]:
                    ready.append(j)
                    on_release(j, st)
            while later and later[0][0] <= t:
                j = pop(later)[1]
                ready.append(j)
                on_release(j, st)
        ready = st.ready  # a policy may have dropped jobs
        if not ready:
            continue
        # hopeless perception frames are dropped; idle backends ask the policy
        for j in ready:
            if not is_llm[j] and t + fastest[j] > deadline[j]:
                keep = []
                for i in ready:
                    if not is_llm[i] and t + fastest[i] > deadline[i]:
                        drop(i)
                    else:
                        keep.append(i)
                st.ready = ready = keep
                break
        progressed = True
        while progressed and ready:
            progressed = False
            for b in range(B):
                if running[b] >= 0 or not ready:
                    continue
                pick = choose(b, st)
                decisions += 1
                if pick is None:
                    continue
                j = pick
                ready.remove(j)
                pj = p[j][b]
                backend[j], start[j] = b, t
                started[j] = True
                running[b] = j
                free_at[b] = t + pj
                demand[b] = bytes_[j] / pj
                D += demand[b]
                push(done, (V + pj, j))
                progressed = True
            ready = st.ready
        if progress is not None:
            progress(k)
    plan = RtPlan(
        np.where(np.asarray(dropped, dtype=bool), -1, np.asarray(backend, dtype=np.int64)),
        np.asarray(start, dtype=float),
    )
    return Replay(policy.name, plan, check(inst, plan), decisions)
