"""Online KV placement policies: ``reset(inst)`` then ``on_step(view) -> Moves``.

Each policy manages the layer it is called for, inside that layer's equal
share ``view.budget`` of HBM (formulations/kv_placement.md, "Online
policies"). They are small objects a serving engine can call once per
(token, layer) step.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from optkit.kvcache.instance import KvInstance
from optkit.kvcache.simulate import NO_MOVES, Moves, StepView, replay
from optkit.kvcache.trace import CsrTrace


class Static:
    """Never migrate; new KV goes to HBM while the layer's budget lasts."""

    name = "static"

    def reset(self, inst: KvInstance) -> None:
        pass

    def on_step(self, view: StepView) -> Moves:
        if view.used < view.budget and view.free > 0:
            return Moves(new_to_hbm=True)
        return NO_MOVES


class Lru:
    """Reactive (``page=1``) and Page-granularity (``page=P``) caching: every miss is
    promoted with its page (read and keep), least recently used pages are demoted.

    LRU order costs O(churn) per step: a page enters a per-layer queue when it leaves
    the read set (stamped with its last use) and is skipped when popped if it was
    read again since. ``share`` (Balanced) caps HBM's part of a step's reads.
    """

    def __init__(self, page: int = 1, name: str | None = None) -> None:
        if page < 1:
            raise ValueError("page must be >= 1")
        self.page = page
        self.name = name or ("reactive" if page == 1 else f"page-{page}")

    def reset(self, inst: KvInstance) -> None:
        # a page longer than the trace is one page of the whole trace (and never
        # allocates more than the trace: page-99999999999 is safe)
        self.page = min(self.page, max(1, inst.tokens))
        nblk = -(-inst.tokens // self.page)
        self.last = np.full((inst.layers, nblk), -1, dtype=np.int64)
        self.queue: list[deque[tuple[int, np.ndarray]]] = [deque() for _ in range(inst.layers)]
        self.queued = [0] * inst.layers
        self.prev: list[np.ndarray | None] = [None] * inst.layers
        self.nblk = nblk
        self.scratch = np.zeros(nblk, dtype=bool)
        self.offsets = np.arange(self.page)

    def _blocks(self, tokens: np.ndarray) -> np.ndarray:
        if self.page == 1:
            return tokens
        b = tokens // self.page
        self.scratch[b] = True
        out = np.flatnonzero(self.scratch)
        self.scratch[out] = False
        return out

    def _tokens(self, blocks: np.ndarray, c: int) -> np.ndarray:
        if self.page == 1:
            return blocks
        toks = (blocks[:, None] * self.page + self.offsets).ravel()
        return toks[toks < c]

    def allowed(self, view: StepView) -> int:
        """How many units may be promoted this step (Lru: no cap)."""
        return len(view.reads)

    def on_step(self, view: StepView) -> Moves:
        layer, n, c, h = view.layer, view.n, view.context, view.hbm
        last = self.last[layer]
        rb = self._blocks(view.reads)
        prev = self.prev[layer]
        if prev is None:  # first visit: resident pages never read yet are the oldest
            res = self._blocks(np.flatnonzero(h[:c]))
            self._push(layer, -1, res)
        last[rb] = n
        if prev is not None:
            left = prev[last[prev] != n]
            if len(left):
                self._push(layer, n - 1, left)
        self.prev[layer] = rb
        miss = view.misses
        want = miss if self.page == 1 else self._tokens(self._blocks(miss), c)
        if self.page > 1 and len(want):
            want = want[~h[want]]
        want = want[: self.allowed(view)]
        room = min(view.budget - view.used, view.free)
        need = len(want) + 1
        victims = self._evict(layer, need - room, h, c) if need > room else None
        room += 0 if victims is None else len(victims)
        if len(want) > room:
            want = want[: max(room, 0)]
        new = len(want) < room
        newb = c // self.page
        last[newb] = n
        self._push(layer, n, np.array([newb]))
        return Moves(want, victims, new)

    def _push(self, layer: int, stamp: int, blocks: np.ndarray) -> None:
        if len(blocks) == 0:
            return
        self.queue[layer].append((stamp, blocks))
        self.queued[layer] += len(blocks)
        if self.queued[layer] > 4 * self.nblk:  # compact: drop entries read again since
            last = self.last[layer]
            kept = [(s, b[last[b] == s]) for s, b in self.queue[layer]]
            self.queue[layer] = deque((s, b) for s, b in kept if len(b))
            self.queued[layer] = sum(len(b) for _, b in self.queue[layer])

    def _evict(self, layer: int, k: int, h: np.ndarray, c: int) -> np.ndarray:
        """Pop least recently used resident pages until ``k`` units are freed."""
        q, last = self.queue[layer], self.last[layer]
        out: list[np.ndarray] = []
        freed = 0
        while freed < k and q:
            stamp, blocks = q.popleft()
            self.queued[layer] -= len(blocks)
            valid = blocks[last[blocks] == stamp]
            if self.page == 1:
                valid = valid[h[valid]]
                take = min(len(valid), k - freed)
                toks, rest = valid[:take], valid[take:]
            else:  # whole pages, up to the one that frees the k-th unit
                mat = valid[:, None] * self.page + self.offsets
                inside = mat < c
                res = h[np.where(inside, mat, 0)] & inside
                counts = res.sum(axis=1)
                some = counts > 0
                valid, mat, res = valid[some], mat[some], res[some]
                take = min(int(np.searchsorted(np.cumsum(counts[some]), k - freed)) + 1, len(valid))
                toks, rest = mat[:take][res[:take]], valid[take:]
            if len(rest):
                q.appendleft((stamp, rest))
                self.queued[layer] += len(rest)
            if len(toks) == 0:
                continue
            out.append(toks)
            freed += len(toks)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class Balanced(Lru):
    """Reactive, but HBM serves at most the share φ* of a step's reads that
    equalises HBM and link time, so the external tier always carries its part."""

    def __init__(self) -> None:
        super().__init__(1, "balanced")

    def reset(self, inst: KvInstance) -> None:
        super().reset(inst)
        self.b0, self.bx = inst.tiers[0].bandwidth, inst.external_rate
        self.w, self.s = inst.weight_bytes, inst.unit_bytes

    def allowed(self, view: StepView) -> int:
        d = self.s * len(view.reads) + self.w
        phi = (self.b0 * d - self.w * self.bx) / (d * (self.b0 + self.bx)) if d > 0 else 1.0
        target = math.ceil(min(max(phi, 0.0), 1.0) * len(view.reads))
        return max(0, target - int(np.count_nonzero(view.hits)))


class _KeepBest(ABC):
    """Keep the ``budget`` units of the layer with the smallest key (resident units,
    this step's misses, prefetch candidates and the new token compete)."""

    name = "keep-best"

    @abstractmethod
    def keys(self, view: StepView, units: np.ndarray) -> np.ndarray:
        """Smaller keeps: one key per unit of ``units`` (token indices of the layer)."""

    def extra(self, view: StepView) -> np.ndarray | None:
        return None

    def on_step(self, view: StepView) -> Moves:
        c, h = view.context, view.hbm
        res = np.flatnonzero(h[:c])
        miss = view.misses
        parts = [res, miss]
        more = self.extra(view)
        if more is not None and len(more):
            parts.append(more)
        parts.append(np.array([c]))
        cand = np.concatenate(parts)
        budget = min(view.budget, view.used + view.free)
        if len(cand) > budget:
            key = self.keys(view, cand)
            keep = np.zeros(len(cand), dtype=bool)
            if budget > 0:
                keep[np.argpartition(key, budget - 1)[:budget]] = True
        else:
            keep = np.ones(len(cand), dtype=bool)
        nres = len(res)
        demote = res[~keep[:nres]]
        promote = cand[nres:-1][keep[nres:-1]]
        return Moves(promote, demote, bool(keep[-1]))


class HeavyHitter(_KeepBest):
    """Keep the units with the highest exponential moving average of being read
    (H2O-like: the read sets of a sparse trace are its attention top-k)."""

    def __init__(self, beta: float = 0.9) -> None:
        if not 0 < beta < 1:
            raise ValueError("beta must be in (0, 1)")
        self.beta = beta
        self.name = "heavy-hitter"

    def reset(self, inst: KvInstance) -> None:
        self.score = np.zeros((inst.layers, inst.tokens))
        self.inc = np.ones(inst.layers)

    def on_step(self, view: StepView) -> Moves:
        layer = view.layer
        # score_i = Σ_reads β^(now - read) up to a common factor: increments grow by 1/β.
        self.inc[layer] /= self.beta
        if self.inc[layer] > 1e200:
            self.score[layer] /= self.inc[layer]
            self.inc[layer] = 1.0
        self.score[layer, view.reads] += self.inc[layer]
        self.score[layer, view.context] = self.inc[layer]  # the new token: as if just read
        return super().on_step(view)

    def keys(self, view: StepView, units: np.ndarray) -> np.ndarray:
        return -self.score[view.layer, units]


class Oracle(_KeepBest):
    """Full future knowledge. ``window = 0``: Belady's MIN with bypass (keep the units
    read soonest). ``window > 0``: also prefetch units read within the next ``window``
    steps of the layer, at most ``ratio``·budget per step. Needs an explicit trace."""

    def __init__(self, window: int = 0, ratio: float = 0.1) -> None:
        if window < 0 or not 0 <= ratio <= 1:
            raise ValueError("window >= 0 and ratio in [0, 1]")
        self.window, self.ratio = window, ratio
        self.name = "belady" if window == 0 else f"oracle-w{window}-r{ratio:g}"

    def reset(self, inst: KvInstance) -> None:
        tr = inst.trace
        if not isinstance(tr, CsrTrace):
            raise ValueError(
                "the oracle needs the whole trace in memory: use a .npz or inline trace "
                "(trace.materialize())"
            )
        self.trace = tr
        self.nxt, self.nu, self.new_next = _next_use(tr)
        self.nu = self.nu.copy()

    def on_step(self, view: StepView) -> Moves:
        tr, t = self.trace, view.t
        self.nu[view.layer, view.reads] = self.nxt[tr.indptr[t] : tr.indptr[t + 1]]
        self.nu[view.layer, view.context] = self.new_next[t]
        return super().on_step(view)

    def extra(self, view: StepView) -> np.ndarray | None:
        if self.window == 0:
            return None
        c = view.context
        nu = self.nu[view.layer, :c]
        horizon = view.t + self.window * view.inst.layers
        cand = np.flatnonzero((nu <= horizon) & ~view.hbm[:c])
        cand = cand[~np.isin(cand, view.misses, assume_unique=True)]
        k = int(self.ratio * view.budget)
        if len(cand) > k:
            cand = cand[np.argpartition(nu[cand], k - 1)[:k]] if k > 0 else cand[:0]
        return cand

    def keys(self, view: StepView, units: np.ndarray) -> np.ndarray:
        return self.nu[view.layer, units]


_NEXT_USE: dict[int, tuple[CsrTrace, Any]] = {}


def _next_use(tr: CsrTrace) -> Any:
    """Cached per trace object (annealing replays the same trace many times)."""
    hit = _NEXT_USE.get(id(tr))
    if hit is None or hit[0] is not tr:
        hit = (tr, tr.next_use())
        _NEXT_USE.clear()
        _NEXT_USE[id(tr)] = hit
    return hit[1]


def anneal(
    inst: KvInstance,
    iters: int = 30,
    seed: int = 0,
    windows: tuple[int, int] = (0, 16),
    on_iter: Callable[[int, float], None] | None = None,
) -> tuple[Oracle, float]:
    """Tune the oracle's (window, ratio) by simulated annealing on the replay time."""
    rng = random.Random(seed)

    def cost(w: int, r: float) -> float:
        return replay(inst, Oracle(w, r)).total_time

    cur = best = (0, 0.1)
    fcur = fbest = cost(*cur)
    temp = 0.05 * fcur
    for i in range(iters):
        w = min(windows[1], max(windows[0], cur[0] + rng.choice((-2, -1, 1, 2))))
        r = min(1.0, max(0.0, cur[1] + rng.uniform(-0.1, 0.1)))
        f = cost(w, r)
        if f < fcur or rng.random() < math.exp(-(f - fcur) / max(temp, 1e-30)):
            cur, fcur = (w, r), f
            if f < fbest:
                best, fbest = (w, r), f
        temp *= 0.9
        if on_iter is not None:
            on_iter(i, fbest)
    return Oracle(*best), fbest


POLICIES: dict[str, Callable[[], Any]] = {
    "static": Static,
    "reactive": Lru,
    "page": lambda: Lru(16),
    "heavy-hitter": HeavyHitter,
    "balanced": Balanced,
    "belady": Oracle,
    "oracle": lambda: Oracle(4, 0.1),
}


def make(name: str) -> Any:
    """A policy by name: ``page-P`` selects the page size."""
    if name.startswith("page-") and name[5:].isdigit():
        return Lru(int(name[5:]))
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; expected {', '.join(POLICIES)} or page-P")
    return POLICIES[name]()
