"""Online policies (formulations/realtime.md, "Policies"). One protocol, embeddable in a
runtime: ``on_release(job, state)`` when a job becomes ready, ``next(backend, state)``
when a backend falls idle (a ready job to start there, or None to leave it idle)."""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from optkit.realtime.instance import LLM, RealtimeInstance
from optkit.realtime.simulate import State

INF = float("inf")
#: most frames the plan policy's admission test looks ahead over
LOOKAHEAD = 16


class Policy(ABC):
    """The protocol; ``reset`` and ``on_release`` do nothing unless a policy keeps state."""

    name = ""

    def reset(self, st: State) -> None:  # noqa: B027 (an optional hook: a no-op)
        """Called once before the replay."""

    def on_release(self, j: int, st: State) -> None:  # noqa: B027 (an optional hook)
        """Job j became ready (it is in ``st.ready``)."""

    @abstractmethod
    def next(self, b: int, st: State) -> int | None:
        """The ready job to start on idle backend ``b``, or None to leave it idle."""


def _first(st: State, b: int, key: list[float], eft: bool) -> int | None:
    """The ready job with the smallest ``key[j]`` (ties: the smaller index) that b can
    run and, with ``eft``, for which b is the earliest-finish backend. Every policy here
    orders jobs by a key fixed at release (slack differs from the deadline by ``now``,
    the same for all), so one scan answers."""
    best, bk = -1, INF
    p = st.p
    for j in st.ready:
        kj = key[j]
        if kj > bk or (kj == bk and j > best) or p[j][b] == INF:
            continue
        if eft and not st.best_backend(j, b):
            continue
        best, bk = j, kj
    return None if best < 0 else best


class Fcfs(Policy):
    name = "fcfs"

    def next(self, b: int, st: State) -> int | None:
        return _first(st, b, st.release, eft=False)


class RoundRobin(Policy):
    """Streams (tasks and sessions) take turns; within a stream, release order."""

    name = "rr"

    def reset(self, st: State) -> None:
        self.turn = -1
        self.streams = len(st.inst.streams)

    def next(self, b: int, st: State) -> int | None:
        S, turn, rel, task, p = self.streams, self.turn, st.release, st.task, st.p
        best, bk = -1, (INF, INF)
        for j in st.ready:
            if p[j][b] == INF:
                continue
            kj = ((task[j] - turn - 1) % S, rel[j])
            if kj < bk or (kj == bk and j < best):
                best, bk = j, kj
        if best < 0:
            return None
        self.turn = task[best]
        return best


class Static(Policy):
    """Every stream on its fastest backend (alone), FIFO per backend."""

    name = "static"

    def reset(self, st: State) -> None:
        jt = st.jt
        self.home = np.zeros(len(st.inst.streams), dtype=np.int64)
        for s in range(len(st.inst.streams)):
            m = jt.task == s
            if m.any():
                self.home[s] = int(np.argmin(jt.p[np.argmax(m)]))
        self.home_l = self.home.tolist()

    def next(self, b: int, st: State) -> int | None:
        home, task, rel = self.home_l, st.task, st.release
        best, bk = None, None
        for j in st.ready:
            if home[task[j]] == b and (bk is None or (rel[j], j) < bk):
                best, bk = j, (rel[j], j)
        return best


class Edf(Policy):
    name = "edf"

    def next(self, b: int, st: State) -> int | None:
        return _first(st, b, st.deadline, eft=True)


class Lsf(Policy):
    """Least slack d_j − now − min_b p_jb first (ordered as d_j − min_b p_jb)."""

    name = "lsf"

    def reset(self, st: State) -> None:
        self.key = (st.jt.deadline - st.jt.fastest).tolist()

    def next(self, b: int, st: State) -> int | None:
        return _first(st, b, self.key, eft=True)


class Heft(Policy):
    """Upward rank first (the job's mean time plus the chain behind it), EFT backend."""

    name = "heft"

    def reset(self, st: State) -> None:
        jt = st.jt
        p = np.where(np.isfinite(jt.p), jt.p, np.nan)
        mean = np.nanmean(p, axis=1)
        rank = mean.copy()
        succ = jt.successors()
        for j in jt.topological()[::-1]:
            if succ[j] >= 0:
                rank[j] = mean[j] + rank[succ[j]]
        self.key = (-rank).tolist()

    def next(self, b: int, st: State) -> int | None:
        return _first(st, b, self.key, eft=True)


def balanced_homes(inst: RealtimeInstance) -> np.ndarray:
    """A home backend per perception task (LLM jobs have none: they go where they finish
    first): the largest utilisation (time × fps) first, onto the backend with the least
    utilisation after it among those that run a frame within its deadline with the rest
    of its cascade at its fastest."""
    jt = inst.jobs
    B = len(inst.backends)
    homes = np.zeros(len(inst.streams), dtype=np.int64)
    util = np.zeros(B)
    per = []
    fast = {}
    for i, t in enumerate(inst.tasks):
        m = jt.task == i
        fast[t.name] = float(np.min(jt.p[np.argmax(m)])) if m.any() else 0.0
    chain = {}  # fastest time of the rest of a task's cascade (upstream and downstream)
    for t in inst.tasks:
        c, up = 0.0, t.after
        while up:
            c += fast[up]
            up = next(x.after for x in inst.tasks if x.name == up)
        down = [x for x in inst.tasks if x.after == t.name]
        while down:
            c += fast[down[0].name]
            down = [x for x in inst.tasks if x.after == down[0].name]
        chain[t.name] = c
    for i, t in enumerate(inst.tasks):
        m = jt.task == i
        if m.any():
            p = jt.p[np.argmax(m)]
            u = np.where(p + chain[t.name] <= t.deadline, p * t.fps, np.inf)
            if not np.any(np.isfinite(u)):
                u = p * t.fps  # no backend meets it: the fastest still does best
            per.append((float(np.min(u)), i, u))
    for _, i, u in sorted(per, key=lambda x: -x[0]):
        after = np.where(np.isfinite(u), util + u, np.inf)
        homes[i] = int(np.argmin(after))
        util[homes[i]] += u[homes[i]]
    return homes


def homes_of(inst: RealtimeInstance, backend: np.ndarray) -> np.ndarray:
    """Each task's most used backend in a plan (``balanced_homes``' choice where the plan
    runs none of its frames)."""
    jt = inst.jobs
    homes = balanced_homes(inst)
    for i in range(len(inst.tasks)):
        on = backend[(jt.task == i) & (backend >= 0)]
        if len(on):
            homes[i] = int(np.argmax(np.bincount(on, minlength=len(inst.backends))))
    return homes


class PlanGuided(Policy):
    """Ours: frames run earliest-deadline-first on their earliest-finish backend; an LLM
    job runs on its earliest-finish backend b when it is admitted there (``admits``: a
    look-ahead over the periodic frames the offline plan homes on b) and it precedes
    the most urgent frame by deadline or leaves it on time. The homes come from a
    utilisation-balancing assignment (``balanced_homes``) or are given (e.g. the
    CP-SAT plan's)."""

    name = "plan"

    def __init__(self, homes: np.ndarray | None = None) -> None:
        self.homes = homes

    def reset(self, st: State) -> None:
        h = self.homes if self.homes is not None else balanced_homes(st.inst)
        self.home = [int(x) for x in h]
        jt = st.jt
        home_of_job = np.asarray(self.home)[jt.task]
        # frames homed on each backend, in release order, and a cursor past finished ones
        self.frames = [
            np.nonzero((jt.kind != LLM) & (home_of_job == b))[0].tolist() for b in range(st.B)
        ]
        self.cursor = [0] * st.B
        self.llm_ready: list[tuple[float, int]] = []  # (deadline, job), lazily cleaned
        self.frames_ready: list[int] = []
        self.asked: tuple[int, int, float] = (-1, -1, -1.0)
        self.answer = False

    def admits(self, j: int, b: int, st: State) -> bool:
        """Run LLM job j on b now? Yes when the frames homed on b that are ready or
        released meanwhile all meet their deadlines after it (EDF look-ahead); otherwise
        when fewer of them miss than the jobs of j's chain that would miss if j waited
        for those frames (counted until the chain is back on its cadence). Answers are
        kept for the current instant: nothing they depend on changes within it."""
        key = (j, b, st.now)
        if key == self.asked:
            return self.answer
        self.asked = key
        self.answer = self._admits(j, b, st)
        return self.answer

    def _admits(self, j: int, b: int, st: State) -> bool:
        p, d, rel, started, dropped = st.p, st.deadline, st.release, st.started, st.dropped
        fr = self.frames[b]
        c = self.cursor[b]
        now = st.now
        while c < len(fr) and (started[fr[c]] or dropped[fr[c]] or d[fr[c]] < now):
            c += 1
        self.cursor[b] = c
        t = now + p[j][b]
        k = c
        window = []
        missed = 0
        stop = min(len(fr), k + LOOKAHEAD)
        while k < stop and rel[fr[k]] < t:
            f = fr[k]
            k += 1
            if started[f] or dropped[f]:
                continue
            window.append(f)
            r = rel[f]
            end = (t if t > r else r) + p[f][b]
            if end > d[f]:
                missed += 1  # dropped in this forecast: it takes no time
            else:
                t = end
        if missed == 0:
            return True
        # the other order: those frames first, then j's chain on b
        t = now
        for f in window:
            r = rel[f]
            end = (t if t > r else r) + p[f][b]
            if end <= d[f]:
                t = end
        late, succ, step = 0, st.succ, j
        while step >= 0 and late <= missed:
            t += p[step][b]
            if t <= d[step]:
                break  # the chain has caught up with its cadence: waiting costs no more
            late += 1
            step = succ[step]
        return missed < late

    def on_release(self, j: int, st: State) -> None:
        if st.kind[j] == LLM:
            heapq.heappush(self.llm_ready, (st.deadline[j], j))
        else:
            self.frames_ready.append(j)

    def next(self, b: int, st: State) -> int | None:
        p, d, started, dropped = st.p, st.deadline, st.started, st.dropped
        heap = self.llm_ready
        while heap and started[heap[0][1]]:
            heapq.heappop(heap)
        llm = heap[0][1] if heap and p[heap[0][1]][b] != INF else None
        frame = None
        keep = []
        for j in self.frames_ready:
            if started[j] or dropped[j]:
                continue
            keep.append(j)
            if p[j][b] != INF and (frame is None or d[j] < d[frame]) and st.best_backend(j, b):
                frame = j
        self.frames_ready = keep
        if (
            llm is not None
            and (
                frame is None or d[llm] <= d[frame] or st.now + p[llm][b] + p[frame][b] <= d[frame]
            )
            and st.best_backend(llm, b)
            and self.admits(llm, b, st)
        ):
            return llm
        return frame


class Table(Policy):
    """Replays an offline plan: its backend per job and its order per backend; a job the
    plan drops is dropped when released. Used to grade a CP-SAT plan under interference."""

    name = "table"

    def __init__(self, backend: np.ndarray, start: np.ndarray) -> None:
        self.backend = backend
        self.start = start

    def reset(self, st: State) -> None:
        self.queue: list[list[int]] = []
        for b in range(st.B):
            on = np.nonzero(self.backend == b)[0]
            self.queue.append(on[np.argsort(self.start[on], kind="stable")].tolist()[::-1])

    def on_release(self, j: int, st: State) -> None:
        if self.backend[j] < 0 and st.kind[j] != LLM:
            st.drop(j)

    def next(self, b: int, st: State) -> int | None:
        q = self.queue[b]
        while q and st.dropped[q[-1]]:
            q.pop()
        if q and q[-1] in st.ready:
            return q.pop()
        return None


POLICIES: dict[str, Callable[[], Policy]] = {
    "fcfs": Fcfs,
    "rr": RoundRobin,
    "static": Static,
    "edf": Edf,
    "lsf": Lsf,
    "heft": Heft,
    "plan": PlanGuided,
}


def make(name: str) -> Policy:
    return POLICIES[name]()
