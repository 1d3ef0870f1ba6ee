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
        self.dropped = np.zeros(len(self.jt), dtype=bool)
        self.started = np.zeros(len(self.jt), dtype=bool)
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
        mine = self.now + pj[b]
        now = self.now
        for k in range(self.B):
            if k != b and max(now, self.free_at[k]) + pj[k] < mine * (1 - 1e-12):
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
    backend = np.full(n, -1, dtype=np.int64)
    start = np.full(n, np.nan)
    dropped = st.dropped
    succ = st.succ
    is_llm = [k == LLM for k in st.kind]
    bytes_ = jt.bytes.tolist()
    W = inst.shared_bandwidth
    roots = [int(j) for j in np.nonzero(jt.pred < 0)[0]]  # already in release order
    later: list[tuple[float, int]] = []  # successors waiting for their own release
    done: list[tuple[float, int]] = []  # (virtual completion, job)
    demand = [0.0] * B
    t, V, D = 0.0, 0.0, 0.0
    k = 0
    decisions = 0
    release = st.release
    fastest, deadline = st.fastest, st.deadline

    drop = st.drop_chain
    def make_ready(j: int) -> None:
        st.ready.append(j)
        policy.on_release(j, st)

    while True:
        rho = 1.0 if (not inst.interference or D <= W) else W / D
        t_rel = release[roots[k]] if k < len(roots) else np.inf
        if later and later[0][0] < t_rel:
            t_rel = later[0][0]
        t_done = t + (done[0][0] - V) / rho if done else np.inf
        if t_rel == np.inf and t_done == np.inf:
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
        if t_done <= t_rel:
            V, t = done[0][0], t_done
            _, j = heapq.heappop(done)
            b = int(backend[j])
            st.running[b] = -1
            D = max(0.0, D - demand[b]) if done else 0.0
            demand[b] = 0.0
            st.now = st.free_at[b] = t
            s = succ[j]
            if s >= 0 and not dropped[s]:
                if release[s] > t:
                    heapq.heappush(later, (release[s], s))
                else:
                    make_ready(s)
        else:
            V, t = V + (t_rel - t) * rho, t_rel
            st.now = t
            while k < len(roots) and release[roots[k]] <= t:
                j = roots[k]
                k += 1
                if not dropped[j]:
                    make_ready(j)
            while later and later[0][0] <= t:
                make_ready(heapq.heappop(later)[1])
        # hopeless perception frames are dropped; idle backends ask the policy
        if st.ready:
            keep = []
            for j in st.ready:
                if not is_llm[j] and t + fastest[j] > deadline[j]:
                    drop(j)
                else:
                    keep.append(j)
            st.ready = keep
        progressed = True
        while progressed and st.ready:
            progressed = False
            for b in range(B):
                if st.running[b] >= 0 or not st.ready:
                    continue
                j = policy.next(b, st)
                decisions += 1
                if j is None:
                    continue
                st.ready.remove(j)
                pj = st.p[j][b]
                backend[j], start[j] = b, t
                st.started[j] = True
                st.running[b] = j
                st.free_at[b] = t + pj
                demand[b] = bytes_[j] / pj
                D += demand[b]
                heapq.heappush(done, (V + pj, j))
                progressed = True
        if progress is not None:
            progress(k)
    backend[dropped] = -1
    plan = RtPlan(backend, start)
    return Replay(policy.name, plan, check(inst, plan), decisions)
