"""Expert-cache policies: one protocol, ``decide(n, needed, state) -> (loads, evictions)``.

A serving engine calls ``reset(inst)`` once and ``decide`` before every MoE layer step
with the unit ids (``layer·E + expert``, an int64 array) the router chose; ``state.held``
says which units are on the GPU. ``decide`` must load every needed unit that is not held
and keep at most ``capacity`` units (a load reserves its slot at once). Deterministic.
After the step the engine calls ``state.apply(n, needed, loads, evictions, tau,
compute)``, the one update of the cache state (``kernels.apply``).

The built-in policies are compiled decisions (``kernels``); ``replay`` runs them inside
the compiled loop, and ``decide`` calls the same function for one step. A policy of the
user's own only needs ``name``, ``reset`` and ``decide``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from optkit.experts import kernels
from optkit.experts.instance import ExpertInstance

EMPTY = np.zeros(0, dtype=np.int64)


class CacheState:
    """What a policy sees: units on the GPU (or on their way: ``arrive`` > ``now``),
    their last use and use counts so far, and the time the step is decided."""

    def __init__(self, units: int, capacity: int) -> None:
        self.c = kernels.new_cache(units)
        self.capacity = capacity
        self.step = 0

    held = property(lambda self: self.c[0])
    last_use = property(lambda self: self.c[1])
    uses = property(lambda self: self.c[2])
    arrive = property(lambda self: self.c[3])
    now = property(lambda self: float(self.c[7][0]))

    def free(self) -> int:
        return self.capacity - int(self.c[6][0])

    def apply(
        self,
        n: int,
        needed: np.ndarray,
        loads: np.ndarray,
        evictions: np.ndarray,
        tau: float,
        compute: float,
    ) -> None:
        """Step n happened: evictions, loads over the link in issue order (each τ), the
        needed units used, compute."""
        kernels.apply(self.c, n, needed, loads, len(loads), evictions, len(evictions), tau, compute)
        self.step = n + 1


class Policy(Protocol):
    name: str

    def reset(self, inst: ExpertInstance) -> None: ...

    def decide(
        self, n: int, needed: np.ndarray, state: CacheState
    ) -> tuple[np.ndarray, np.ndarray]: ...


class KernelPolicy:
    """A policy whose decision is a compiled kernel with its own state ``p``."""

    name = ""
    kernel: Any = None  # the compiled decision
    runner: Any = None  # the compiled replay loop that calls it

    def __init__(self, train: np.ndarray | None = None) -> None:
        self.train = train

    def setup(self, inst: ExpertInstance) -> tuple:
        return (np.zeros(1),)

    def reset(self, inst: ExpertInstance) -> None:
        self.p = self.setup(inst)
        self._l = np.empty(inst.units, dtype=np.int64)
        self._e = np.empty(inst.units, dtype=np.int64)

    def decide(
        self, n: int, needed: np.ndarray, state: CacheState
    ) -> tuple[np.ndarray, np.ndarray]:
        need = np.ascontiguousarray(needed, dtype=np.int64)
        na, ne = self.kernel(self.p, n, need, state.c, state.capacity, self._l, self._e)
        return self._l[:na].copy(), self._e[:ne].copy()

    def _train(self, inst: ExpertInstance) -> np.ndarray | None:
        return self.train if self.train is not None else inst.train


class Lru(KernelPolicy):
    """Demand loads; evict the least recently used unit not needed now."""

    name = "lru"
    kernel = staticmethod(kernels.lru)
    runner = staticmethod(kernels.run_lru)


class Lfu(KernelPolicy):
    """Demand loads; evict the least frequently used unit (uses so far; ties: LRU)."""

    name = "lfu"
    kernel = staticmethod(kernels.lfu)
    runner = staticmethod(kernels.run_lfu)


class Pin(KernelPolicy):
    """The C − k units used most so far (the training trace's counts plus the trace up to
    now) are kept; the other k slots serve the rest by LRU."""

    name = "pin"
    kernel = staticmethod(kernels.pin)
    runner = staticmethod(kernels.run_pin)

    def setup(self, inst: ExpertInstance) -> tuple:
        prior = np.zeros(inst.units)
        train = self._train(inst)
        if train is not None:
            units = np.arange(inst.layers)[None, :, None] * inst.experts + train
            np.add.at(prior, units.ravel(), 1.0)
        pinned = np.zeros(inst.units, dtype=np.bool_)
        pinned[np.argsort(-prior, kind="stable")[: max(0, inst.capacity - inst.top_k)]] = True
        prev = np.zeros(inst.units, dtype=np.int64)
        return (prior, pinned, prev, np.zeros(1, dtype=np.int64))


def _transitions(inst: ExpertInstance, train: np.ndarray | None) -> tuple:
    """Layer-to-layer transition counts ``trans[l, e, e']`` (smoothed; the training
    trace when given), for ``kernels.observe`` / ``next_layer``."""
    L, E = inst.layers, inst.experts
    trans = np.full((L, E, E), 1e-3)
    if train is not None:
        for layer in range(L - 1):
            a, b = train[:, layer], train[:, layer + 1]  # (N, k) each
            np.add.at(trans[layer], (a[:, :, None], b[:, None, :]), 1.0)
    meta = np.array([L, E, 0, 0], dtype=np.int64)
    return (trans, np.zeros(E, dtype=np.int64), meta, np.zeros(E))


class Predict(KernelPolicy):
    """ProMoE's idea one layer ahead: layer-to-layer transition counts (from a training
    trace when given, and from the trace so far) rank layer l+1's experts given
    R_{i,l}; the top k (each at least ``kernels.CONFIDENT``) are prefetched into free
    slots or over LRU victims not used during the last token."""

    name = "predict"
    kernel = staticmethod(kernels.predict)
    runner = staticmethod(kernels.run_predict)

    def setup(self, inst: ExpertInstance) -> tuple:
        return (_transitions(inst, self._train(inst)), np.zeros(inst.top_k, dtype=np.int64))

    @property
    def predicted(self) -> int:
        """Prefetches issued so far."""
        return int(self.p[0][2][3])


def _chain(inst: ExpertInstance, train: np.ndarray | None) -> tuple:
    """``forecast``'s two-state chain per layer: visits of a unit in each state (0: the
    previous token did not use it, 1: it did) and uses, a prior of one use in k/E·2
    visits plus the training trace's counts."""
    L, E = inst.layers, inst.experts
    base = inst.top_k / E
    trials = np.full((2, L), 2.0)
    used = np.full((2, L), 2.0 * base)
    if train is not None and len(train) > 1:
        now = np.zeros((len(train), L, E), dtype=bool)
        np.put_along_axis(now, train, True, axis=2)
        prev, cur = now[:-1], now[1:]
        for st in (0, 1):
            m = prev == bool(st)
            trials[st] += m.sum(axis=(0, 2))
            used[st] += (m & cur).sum(axis=(0, 2))
    last_tok = np.full(L * E, -(10**9), dtype=np.int64)
    layer_of = np.repeat(np.arange(L, dtype=np.int64), E)
    f = (trials, used, last_tok, np.array([L, E], dtype=np.int64), layer_of, np.zeros((2, L)))
    kernels.forecast_setup(f)
    return f


class Forecast(KernelPolicy):
    """Ours, guided by the offline optimum: Belady evicts the unit whose next use is
    farthest; online, forecast that next use. Unit (l, e) can only be used when layer l
    comes round, ``d`` steps from now (1..L); at each visit a unit of layer l is used with
    probability ``p1_l`` if the previous token used it and ``p0_l`` otherwise (a two-state
    chain per layer, counted on the training trace and on the trace so far). Expected
    steps to the next use: ``d + L·(1 − p)/p0_l``, ``p`` the chance at the next visit;
    the farthest goes first. On the cyclic layer order this keeps the units whose layer
    comes next, which LRU evicts first (formulations/expert_cache.md, "Policies")."""

    name = "forecast"
    kernel = staticmethod(kernels.forecast)
    runner = staticmethod(kernels.run_forecast)

    def setup(self, inst: ExpertInstance) -> tuple:
        return _chain(inst, self._train(inst))


class Prefetch(KernelPolicy):
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
    kernel = staticmethod(kernels.prefetch)
    runner = staticmethod(kernels.run_prefetch)

    def setup(self, inst: ExpertInstance) -> tuple:
        train = self._train(inst)
        pf = np.array([inst.load_time, 1.0, 1.0])  # tau; a prior of one step, with a miss
        return (_chain(inst, train), _transitions(inst, train), pf, inst.compute.copy())


class Lookahead(KernelPolicy):
    """Clairvoyant within a horizon: the next ``horizon`` layer steps' routing is known
    exactly (a perfect predictor ``horizon`` layers ahead, better than any real one);
    units used within it are kept, the farthest of them evicted first, the others by
    LRU. Offline: it shows what knowing the next ``horizon`` steps adds to LRU (not a
    bound on online policies). ``horizon`` 0 is LRU; ``horizon`` ≥ the trace is
    Belady's MIN."""

    name = "lookahead"
    kernel = staticmethod(kernels.horizon)
    runner = staticmethod(kernels.run_horizon)

    def __init__(self, horizon: int | None = None) -> None:
        self.horizon = horizon

    def setup(self, inst: ExpertInstance) -> tuple:
        flat, off = inst.needed_csr()
        S = inst.steps
        steps = np.repeat(np.arange(S), np.diff(off))
        order = np.lexsort((steps, flat))  # occurrences of each unit, in step order
        after = np.full(len(flat), S, dtype=np.int64)  # the unit's next use after each
        same = flat[order[1:]] == flat[order[:-1]]
        after[order[:-1][same]] = steps[order[1:]][same]
        nu = np.full(inst.units, S, dtype=np.int64)
        nu[flat[order[::-1]]] = steps[order[::-1]]  # first uses (the earliest write wins)
        H = inst.layers if self.horizon is None else min(self.horizon, S)
        return (after, nu, off, np.array([S, H], dtype=np.int64))


class Belady(Lookahead):
    """Offline: demand loads, evict the unit whose next use is farthest (MIN): the
    fewest loads any plan can make with C slots."""

    name = "belady"

    def __init__(self) -> None:
        super().__init__(horizon=2**62)


POLICIES: dict[str, type] = {
    "lru": Lru,
    "lfu": Lfu,
    "pin": Pin,
    "predict": Predict,
    "forecast": Forecast,
    "prefetch": Prefetch,
    "lookahead": Lookahead,
    "belady": Belady,
}
#: the policies that need the future (not online)
OFFLINE = ("lookahead", "belady")


def make(name: str, train: np.ndarray | None = None) -> Any:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICIES)}")
    if name in OFFLINE:
        return POLICIES[name]()
    return POLICIES[name](train)
