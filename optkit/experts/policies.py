"""Expert-cache policies: one protocol, ``decide(n, needed, state) -> (loads, evictions)``.

A serving engine calls ``reset(inst)`` once and ``decide`` before every MoE layer step
with the unit ids (``layer·E + expert``) the router chose; ``state.held`` says which
units are on the GPU. ``decide`` must load every needed unit that is not held and keep
at most ``capacity`` units (a load reserves its slot at once). Deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from optkit.experts.instance import ExpertInstance

EMPTY = np.zeros(0, dtype=np.int64)
#: ``predict`` prefetches an expert when the transition table gives it at least this
#: probability of being among the next layer's choices (per selected slot)
CONFIDENT = 0.3


@dataclass
class CacheState:
    """What a policy sees: units on the GPU (or on their way: ``arrive`` > ``now``),
    their last use and use counts so far, and the time the step is decided."""

    held: np.ndarray
    last_use: np.ndarray
    uses: np.ndarray
    capacity: int
    arrive: np.ndarray
    step: int = 0
    now: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def free(self) -> int:
        return self.capacity - int(self.held.sum())


class Policy(Protocol):
    name: str

    def reset(self, inst: ExpertInstance) -> None: ...

    def decide(
        self, n: int, needed: np.ndarray, state: CacheState
    ) -> tuple[np.ndarray, np.ndarray]: ...


def _victims(state: CacheState, count: int, keep: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``count`` held units not in ``keep`` and not in flight with the lowest ``score``
    (ties: lowest id)."""
    if count <= 0:
        return EMPTY
    cand = np.flatnonzero(state.held & (state.arrive <= state.now))
    out = np.zeros(len(state.held), dtype=bool)
    out[keep] = True
    cand = cand[~out[cand]]
    order = np.lexsort((cand, score[cand]))
    return cand[order[:count]]


class Lru:
    """Demand loads; evict the least recently used unit not needed now."""

    name = "lru"

    def reset(self, inst: ExpertInstance) -> None:
        pass

    def score(self, state: CacheState) -> np.ndarray:
        return state.last_use.astype(float)

    def decide(
        self, n: int, needed: np.ndarray, state: CacheState
    ) -> tuple[np.ndarray, np.ndarray]:
        miss = needed[~state.held[needed]]
        count = len(miss) - state.free()
        if count <= 0:  # room for every miss: no victim to score
            return miss, EMPTY
        return miss, _victims(state, count, needed, self.score(state))


class Lfu(Lru):
    """Demand loads; evict the least frequently used unit (uses so far; ties: LRU)."""

    name = "lfu"

    def score(self, state: CacheState) -> np.ndarray:
        return state.uses + state.last_use / (state.step + 2.0)


class Pin(Lru):
    """The C − k units used most so far (the training trace when given, else the trace
    up to now) are kept; the other k slots serve the rest by LRU."""

    name = "pin"

    def __init__(self, train: np.ndarray | None = None) -> None:
        self.train = train

    def reset(self, inst: ExpertInstance) -> None:
        self.k = inst.top_k
        self.prior = np.zeros(inst.units)
        train = self.train if self.train is not None else inst.train
        if train is not None:
            units = np.arange(inst.layers)[None, :, None] * inst.experts + train
            np.add.at(self.prior, units.ravel(), 1.0)

    def score(self, state: CacheState) -> np.ndarray:
        freq = self.prior + state.uses
        pinned = np.argsort(-freq, kind="stable")[: state.capacity - self.k]
        s = state.last_use.astype(float)
        s[pinned] += 1e12  # evicted only when nothing else can go
        return s


class Predict(Lru):
    """ProMoE's idea one layer ahead: layer-to-layer transition counts (from a training
    trace when given, and from the trace so far) rank layer l+1's experts given
    R_{i,l}; the top k are prefetched into slots freed from LRU victims not needed now."""

    name = "predict"

    def __init__(self, train: np.ndarray | None = None) -> None:
        self.train = train

    def reset(self, inst: ExpertInstance) -> None:
        L, E = inst.layers, inst.experts
        self.L, self.E, self.k = L, E, inst.top_k
        self.trans = np.ones((L, E, E)) * 1e-3  # smoothed counts[l, e, e']
        self.prev: np.ndarray | None = None
        train = self.train if self.train is not None else inst.train
        if train is not None:
            for tok in train:
                self._learn(tok)
        self.predicted = 0

    def _learn(self, tok: np.ndarray) -> None:
        for layer in range(self.L - 1):
            a, b = tok[layer], tok[layer + 1]
            self.trans[layer][np.ix_(a, b)] += 1.0

    def observe(self, n: int, needed: np.ndarray) -> tuple[int, np.ndarray]:
        """Learn step n's transition online (causal); its layer and expert ids."""
        layer = n % self.L
        experts = needed - layer * self.E
        if layer > 0 and self.prev is not None:
            self.trans[layer - 1][np.ix_(self.prev, experts)] += 1.0
        self.prev = experts
        return layer, experts

    def next_layer(self, layer: int, experts: np.ndarray) -> np.ndarray:
        """(E,): the mean over ``experts`` of P(e' at layer + 1 | e at layer)."""
        counts = self.trans[layer][experts]  # next-layer counts after each expert
        return (counts / counts.sum(axis=1, keepdims=True)).mean(axis=0)

    def decide(
        self, n: int, needed: np.ndarray, state: CacheState
    ) -> tuple[np.ndarray, np.ndarray]:
        layer, experts = self.observe(n, needed)
        miss, out = super().decide(n, needed, state)
        if layer + 1 >= self.L:
            return miss, out
        prob = self.next_layer(layer, experts)
        top = np.argsort(-prob, kind="stable")[: self.k]
        top = top[prob[top] >= CONFIDENT]  # a guess that is likely wrong costs a slot
        nxt = (layer + 1) * self.E + top
        nxt = nxt[~state.held[nxt]]
        if not len(nxt):
            return miss, out
        held = state.held.copy()
        held[out] = False
        room = state.capacity - int(held.sum()) - len(miss)
        # only cold units make room for a guess: not used during the last token
        keep = np.concatenate([needed, nxt, np.flatnonzero(state.last_use >= n - self.L)])
        extra = _victims(
            CacheState(
                held, state.last_use, state.uses, state.capacity, state.arrive, now=state.now
            ),
            len(nxt) - room,
            keep,
            self.score(state),
        )
        take = nxt[: room + len(extra)] if room + len(extra) > 0 else EMPTY
        self.predicted += len(take)
        return np.concatenate([miss, take]), np.concatenate(
            [out, extra[: max(0, len(take) - room)]]
        )


class Forecast(Lru):
    """Ours, guided by the offline optimum: Belady evicts the unit whose next use is
    farthest; online, forecast that next use. Unit (l, e) can only be used when layer l
    comes round, ``d`` steps from now (1..L); at each visit a unit of layer l is used with
    probability ``p1_l`` if the previous token used it and ``p0_l`` otherwise (a two-state
    chain per layer, counted on the training trace and on the trace so far). Expected
    steps to the next use: ``d + L·(1 − p)/p0_l``, ``p`` the chance at the next visit;
    the farthest goes first. On the cyclic layer order this keeps the units whose layer
    comes next, which LRU evicts first (formulations/expert_cache.md, "Policies")."""

    name = "forecast"

    def __init__(self, train: np.ndarray | None = None) -> None:
        self.train = train

    def reset(self, inst: ExpertInstance) -> None:
        L, E = inst.layers, inst.experts
        self.L, self.E = L, E
        # per layer and state (0: the previous token did not use the unit, 1: it did):
        # visits of a unit in that state, and uses; a prior of one use in k/E·2 visits
        base = inst.top_k / E
        self.trials = np.full((2, L), 2.0)
        self.used = np.full((2, L), 2.0 * base)
        self.last_tok = np.full(L * E, -(10**9), dtype=np.int64)
        self.layer = np.repeat(np.arange(L), E)
        train = self.train if self.train is not None else inst.train
        if train is not None and len(train) > 1:
            now = np.zeros((len(train), L, E), dtype=bool)
            np.put_along_axis(now, train, True, axis=2)
            prev, cur = now[:-1], now[1:]
            for st in (0, 1):
                m = prev == bool(st)
                self.trials[st] += m.sum(axis=(0, 2))
                self.used[st] += (m & cur).sum(axis=(0, 2))

    def decide(
        self, n: int, needed: np.ndarray, state: CacheState
    ) -> tuple[np.ndarray, np.ndarray]:
        L, E = self.L, self.E
        i, l0 = divmod(n, L)
        if i > 0:  # learn this visit of layer l0 (causal)
            units = np.arange(l0 * E, (l0 + 1) * E)
            warm = self.last_tok[units] == i - 1
            hot = int(warm.sum())
            used_hot = int(np.count_nonzero(self.last_tok[needed] == i - 1))
            self.trials[1, l0] += hot
            self.trials[0, l0] += E - hot
            self.used[1, l0] += used_hot
            self.used[0, l0] += len(needed) - used_hot
        self.last_tok[needed] = i
        return super().decide(n, needed, state)

    def score(self, state: CacheState) -> np.ndarray:
        L = self.L
        i, l0 = divmod(state.step, L)
        d = (self.layer - l0) % L
        d[d == 0] = L
        nxt = i + (self.layer <= l0)  # the token of the unit's next visit
        p = self.used / self.trials  # (2, L)
        pl = np.where(self.last_tok == nxt - 1, p[1][self.layer], p[0][self.layer])
        expect = d + L * (1.0 - pl) / p[0][self.layer]
        return -expect  # lowest score: farthest forecast next use


class Prefetch(Forecast):
    """``forecast`` with prefetching in which demand loads jump the queue. The link is
    FIFO and a started copy is not preempted (a DMA engine), so the only way for a
    demand load never to wait behind guesses is to keep no queue of them: one unit is
    prefetched only at a step with no demand load and an idle link, so a miss at the
    next step waits at most for that one copy. The unit: layer l+1's expert most likely
    given R_{i,l} (ProMoE's layer-to-layer transitions, learned as ``predict`` does),
    loaded into a free slot, or over ``forecast``'s victim when its own forecast next
    use ``1 + L·(1 − q)/p0`` (q: the predicted chance) is sooner than the victim's —
    the comparison MIN makes with the true next uses. And only when it pays: right, the
    copy starts one compute step ``c`` earlier than the demand load would (gain
    ``q·min(c, τ)``); wrong, a miss at the next step (chance ``m``, the running share of
    steps with a miss) waits for it (loss ``(1 − q)·m·max(0, τ − c)``)."""

    name = "prefetch"

    def reset(self, inst: ExpertInstance) -> None:
        super().reset(inst)
        self.guess = Predict(self.train)
        self.guess.reset(inst)
        self.tau, self.c = inst.load_time, inst.compute
        self.steps = self.missed = 1.0  # a prior of one step, with a miss

    def decide(
        self, n: int, needed: np.ndarray, state: CacheState
    ) -> tuple[np.ndarray, np.ndarray]:
        L, E = self.L, self.E
        layer, experts = self.guess.observe(n, needed)
        miss, out = super().decide(n, needed, state)
        self.steps += 1.0
        self.missed += bool(len(miss))
        busy = bool(np.any(state.held & (state.arrive > state.now)))
        if len(miss) or busy or layer + 1 >= L:
            return miss, out
        q = self.guess.next_layer(layer, experts) * len(needed)  # expected uses of each
        order = np.argsort(-q, kind="stable")
        cand = [(layer + 1) * E + int(e) for e in order if not state.held[(layer + 1) * E + e]]
        if not cand:
            return miss, out
        x = cand[0]
        qx = min(1.0, float(q[x - (layer + 1) * E]))
        c, tau, m = float(self.c[layer]), self.tau, self.missed / self.steps
        if qx * min(c, tau) <= (1.0 - qx) * m * max(0.0, tau - c):
            return miss, out
        if state.free() > 0:
            return np.array([x]), out
        score = self.score(state)
        victim = _victims(state, 1, needed, score)
        p0 = self.used[0, layer + 1] / self.trials[0, layer + 1]
        if len(victim) and 1 + L * (1 - qx) / p0 < -score[victim[0]]:
            return np.array([x]), victim
        return miss, out


class Belady(Lru):
    """Offline: demand loads, evict the unit whose next use is farthest (MIN): the
    fewest loads any plan can make with C slots."""

    name = "belady"

    def reset(self, inst: ExpertInstance) -> None:
        need = inst.needed()
        self.S = len(need)
        steps = np.repeat(np.arange(self.S), [len(r) for r in need])
        units = np.concatenate(need)
        order = np.lexsort((steps, units))  # occurrences of each unit, in step order
        self.occ = steps[order]
        self.start = np.searchsorted(units[order], np.arange(inst.units + 1))
        self.ptr = self.start[:-1].copy()

    def _next_use(self, n: int, units: np.ndarray) -> np.ndarray:
        """The first step after ``n`` that uses each unit (S: never)."""
        out = np.empty(len(units), dtype=np.int64)
        for i, u in enumerate(units.tolist()):
            p, end = self.ptr[u], self.start[u + 1]
            while p < end and self.occ[p] <= n:
                p += 1
            self.ptr[u] = p
            out[i] = self.occ[p] if p < end else self.S
        return out

    def decide(
        self, n: int, needed: np.ndarray, state: CacheState
    ) -> tuple[np.ndarray, np.ndarray]:
        miss = needed[~state.held[needed]]
        count = len(miss) - state.free()
        if count <= 0:
            return miss, EMPTY
        cand = np.flatnonzero(state.held & (state.arrive <= state.now))
        cand = cand[~np.isin(cand, needed, kind="table")]
        far = self._next_use(n, cand)
        order = np.lexsort((cand, -far))  # farthest next use first (ties: lowest id)
        return miss, cand[order[:count]]


POLICIES: dict[str, type] = {
    "lru": Lru,
    "lfu": Lfu,
    "pin": Pin,
    "predict": Predict,
    "forecast": Forecast,
    "prefetch": Prefetch,
    "belady": Belady,
}


def make(name: str, train: np.ndarray | None = None) -> Any:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICIES)}")
    learns = ("pin", "predict", "forecast", "prefetch")  # take a training trace
    return POLICIES[name](train) if name in learns else POLICIES[name]()
