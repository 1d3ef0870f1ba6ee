"""Online iteration schedulers: one protocol, ``next_iteration(state) -> IterationPlan``.

A serving engine calls ``on_arrival(j, state)`` when request j reaches the
client and ``next_iteration(state)`` before every iteration; the plan says
which prompts (or prompt chunks) to prefill and whether the running batch
decodes in the same iteration. Deterministic: no randomness is used.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from optkit.serving.instance import IterationModel


@dataclass
class IterationPlan:
    prefill: list[tuple[int, int]] = field(default_factory=list)  # (request, prompt tokens now)
    decode: bool = False  # the running batch decodes in this iteration

    @property
    def empty(self) -> bool:
        return not self.prefill and not self.decode


@dataclass
class ClientState:
    """What a scheduler sees of one client. Updated by the simulator (or the engine)."""

    prompt: np.ndarray  # prompt tokens per request (all requests)
    est_output: np.ndarray  # output tokens as the scheduler knows them (estimates online)
    model: IterationModel
    max_batch: int
    kv_tokens: int
    now: float = 0.0
    waiting: list[int] = field(default_factory=list)  # in the scheduler's order
    prefilling: dict[int, int] = field(default_factory=dict)  # request -> prompt tokens done
    running: int = 0  # decoding sequences
    context: float = 0.0  # Σ tokens the next decode step attends, over running sequences
    remaining: float = 0.0  # Σ estimated decode steps left, over running sequences
    kv_used: int = 0  # reserved KV tokens (prompt + estimated output of admitted requests)

    @property
    def slots_free(self) -> int:
        return self.max_batch - self.running - len(self.prefilling)

    def reserve(self, j: int) -> int:
        return int(self.prompt[j] + self.est_output[j])


class Scheduler(Protocol):
    name: str

    def on_arrival(self, j: int, state: ClientState) -> None: ...

    def next_iteration(self, state: ClientState) -> IterationPlan: ...


def _admissible(state: ClientState, order: list[int], budget: int) -> list[tuple[int, int]]:
    """Requests from the head of ``order`` that fit: slots, KV, token budget (>= one request)."""
    out: list[tuple[int, int]] = []
    slots, kv, tokens = state.slots_free, state.kv_tokens - state.kv_used, 0
    for j in order:
        need = state.reserve(j)
        s = int(state.prompt[j])
        if slots < 1 or need > kv or (out and tokens + s > budget):
            break
        out.append((j, s))
        slots -= 1
        kv -= need
        tokens += s
    return out


class Fcfs:
    """vLLM-style continuous batching, prefill priority: admit in arrival order whenever
    the head fits; a prefill iteration stalls the running batch."""

    name = "fcfs"

    def __init__(self, max_prefill_tokens: int = 8192) -> None:
        self.budget = max_prefill_tokens

    def on_arrival(self, j: int, state: ClientState) -> None:
        state.waiting.append(j)

    def next_iteration(self, state: ClientState) -> IterationPlan:
        adm = _admissible(state, state.waiting, self.budget)
        if adm:
            del state.waiting[: len(adm)]
            return IterationPlan(prefill=adm)
        return IterationPlan(decode=state.running > 0)


class Sarathi:
    """Chunked prefill (Sarathi-Serve): every iteration decodes the batch and fills the
    token budget with prompt chunks; decodes are never stalled."""

    name = "sarathi"

    def __init__(self, token_budget: int = 512) -> None:
        if token_budget < 1:
            raise ValueError("token_budget must be >= 1")
        self.budget = token_budget

    def on_arrival(self, j: int, state: ClientState) -> None:
        state.waiting.append(j)

    def next_iteration(self, state: ClientState) -> IterationPlan:
        left = max(self.budget - state.running, 1)
        plan = IterationPlan(decode=state.running > 0)
        for j, done in state.prefilling.items():  # continue partial prompts first
            if left <= 0:
                break
            x = min(int(state.prompt[j]) - done, left)
            plan.prefill.append((j, x))
            left -= x
        slots, kv = state.slots_free, state.kv_tokens - state.kv_used
        taken = 0
        for j in state.waiting:  # admit from the head while slots, KV and budget last
            need = state.reserve(j)
            if left <= 0 or slots <= 0 or need > kv:
                break
            x = min(int(state.prompt[j]), left)
            plan.prefill.append((j, x))
            left -= x
            slots -= 1
            kv -= need
            taken += 1
        del state.waiting[:taken]  # one shift of the queue, not one per request
        return plan


class Hybrid:
    """Sorting + prefill insertion priced by the binding resources (Pang et al.'s
    mechanism in a continuous-batching engine), formulations/serving.md "Hybrid".

    Waiting requests are kept sorted (``order``: ``output-desc`` longest estimated
    output first, the default; ``prompt`` shortest prompt first; ``arrival``). The
    estimates are ``state.est_output`` (the true lengths offline, a predictor's
    online; with none, use ``prompt``).

    ``mix=True`` (default): an inserted prefill rides in the decode iteration of the
    running batch (nothing is stalled). Every waiting request that fits (slots, KV,
    token budget) is admitted at once: its prompt compute is owed anyway, and a slot
    or KV token left empty is lost. When the queue's next request does not fit (the
    occupancy binds), the last admitted prompt is held back and fed to the following
    decode-only iterations up to the compute knee τ_w/κ, as long as the free compute
    that fills, (τ_w − κ·b)·(tokens/σ), is worth more than its held reservation at
    the price of the binding resource: τ_dec(b)·max(1/B, (s_j + ô_j)/M).

    ``mix=False``: the published test, prefill iterations that stall the batch of b:
    insert the admissible set S when ω·|S|·r̄ ≥ b·τ_pre(S)/τ_dec(b) (r̄ the mean
    remaining decode steps of the batch; ω = ``weight``, math.inf: always insert).
    """

    name = "hybrid"

    def __init__(
        self,
        order: str = "output-desc",
        max_prefill_tokens: int = 8192,
        weight: float = 1.0,
        mix: bool = True,
        lookahead: int = 32,
        pace: bool = False,
        chunk: bool = True,
    ) -> None:
        if order not in ("prompt", "output-desc", "arrival"):
            raise ValueError("order must be prompt, output-desc or arrival")
        if max_prefill_tokens < 1:
            raise ValueError("max_prefill_tokens must be >= 1")
        self.order = order
        self.budget = max_prefill_tokens
        if not weight >= 0:
            raise ValueError("weight must be >= 0 (math.inf: always insert)")
        self.weight = weight  # multiplier ω on the gain side of the stall test
        self.mix = mix
        if lookahead < 1:
            raise ValueError("lookahead must be >= 1")
        self.lookahead = lookahead  # queue positions scanned for a request that fits
        self._keys: list[float] = []
        self._least = math.inf  # smallest reservation that ever waited (no scan below it)
        self._failed: tuple[int, int] | None = None  # KV and slots free at a fruitless scan
        # pacing defers requests: only safe when the head waits longest (longest output)
        self.pace = pace and order == "output-desc"
        self.chunk = chunk
        self._it = 0  # iterations planned
        self._end = 0  # the iteration by which every admitted request will have finished
        self._pending = 0.0  # GEMM tokens of the waiting requests
        self._pending_occ = 0.0  # their KV-iterations, Σ (s_j + ô_j)·ô_j

    def _key(self, j: int, state: ClientState) -> float:
        if self.order == "prompt":
            return float(state.prompt[j]) + j * 1e-9
        if self.order == "output-desc":
            return -float(state.est_output[j]) + j * 1e-9
        return float(j)

    def on_arrival(self, j: int, state: ClientState) -> None:
        k = self._key(j, state)
        i = bisect.bisect(self._keys, k)
        self._keys.insert(i, k)
        state.waiting.insert(i, j)
        self._least = min(self._least, state.reserve(j))
        self._failed = None
        self._pending += float(state.prompt[j] + state.est_output[j] - 1)
        self._pending_occ += float(state.reserve(j) * state.est_output[j])

    def _take(self, state: ClientState, k: int) -> None:
        del state.waiting[:k]
        del self._keys[:k]

    def next_iteration(self, state: ClientState) -> IterationPlan:
        return self._mixed(state) if self.mix else self._stalling(state)

    def _stalling(self, state: ClientState) -> IterationPlan:
        adm = _admissible(state, state.waiting, self.budget)
        b = state.running
        if adm:
            take = b == 0 or self.weight == math.inf
            if not take:
                m = state.model
                tokens = sum(x for _, x in adm)
                pairs = sum(x * (x + 1) / 2 for _, x in adm)
                t_pre = m.time(tokens, pairs, 0.0)
                t_dec = m.time(b, 0.0, state.context)
                take = self.weight * len(adm) * state.remaining / b >= b * t_pre / t_dec
            if take:
                self._take(state, len(adm))
                return IterationPlan(prefill=adm)
        return IterationPlan(decode=b > 0)

    def _slack(self, state: ClientState, j: int) -> int:
        """Prompt tokens of j worth feeding to this iteration (0: finish it now)."""
        m, b = state.model, state.running
        if m.kappa <= 0 or b == 0 or not state.waiting:
            return 0
        free = int(m.tau_w / m.kappa) - b  # tokens below the compute knee
        if free < 1:
            return 0
        price = m.time(b, 0.0, state.context) * max(
            1.0 / state.max_batch, state.reserve(j) / state.kv_tokens
        )
        left = int(state.prompt[j]) - state.prefilling.get(j, 0)
        return free if (m.tau_w - m.kappa * b) * min(free, left) / free > price else 0

    def _fill(self, state: ClientState, limit: int = 1 << 30) -> tuple[list[tuple[int, int]], bool]:
        """The waiting requests that fit, scanning the first ``lookahead`` of the queue
        (a request whose reservation does not fit is passed over, not waited for), and
        whether one was passed over or left for want of a slot (occupancy binds)."""
        out: list[tuple[int, int]] = []
        taken: list[int] = []
        slots, kv, tokens = state.slots_free, state.kv_tokens - state.kv_used, 0
        failed = self._failed
        if (
            not state.waiting
            or slots < 1
            or kv < self._least
            or (failed is not None and kv <= failed[0] and slots <= failed[1])
        ):  # nothing can fit: no room, or no more room than at the last scan of this queue
            return out, bool(state.waiting)
        blocked = False
        cap, urgent = self._pacing(state)
        for pos, j in enumerate(state.waiting[: self.lookahead]):
            s = int(state.prompt[j])
            if cap is not None:  # paced: up to the knee, or a request that cannot wait
                if tokens + s > cap and state.est_output[j] < urgent:
                    break
            elif slots < 1 or (out and tokens + s > self.budget):
                blocked = blocked or slots < 1
                break
            need = state.reserve(j)
            if slots < 1 or need > kv:
                blocked = True
                if slots < 1:
                    break
                continue
            out.append((j, s))
            taken.append(pos)
            if len(out) >= limit:
                break
            slots, kv, tokens = slots - 1, kv - need, tokens + s
            self._pending -= float(s + state.est_output[j] - 1)
            self._pending_occ -= float(need * state.est_output[j])
            self._end = max(self._end, self._it + 1 + int(state.est_output[j]))
        for pos in reversed(taken):
            del state.waiting[pos]
            del self._keys[pos]
        if not out and cap is None:
            self._failed = (state.kv_tokens - state.kv_used, state.slots_free)
        else:
            self._failed = None
        return out, blocked and bool(state.waiting)

    def _pacing(self, state: ClientState) -> tuple[int | None, float]:
        """(token cap, output length that cannot wait) when the iterations the running
        batch needs anyway have room below the compute knee for all the waiting work
        (then a token beyond the knee would lengthen them for nothing); (None, inf)
        otherwise."""
        m = state.model
        H = self._end - self._it
        if not self.pace or m.kappa <= 0 or H <= 0 or state.running == 0:
            return None, math.inf
        knee = m.tau_w / m.kappa
        if self._pending > H * knee - state.remaining - state.running:
            return None, math.inf
        return max(int(knee) - state.running, 0), H - 1

    def _compute_slack(self, state: ClientState) -> int:
        """Tokens below the knee this iteration when compute never binds: all the work
        left fits below the knee of the iterations still to come (at least the
        horizon and the occupancy); 0 when it binds (then prompts go whole)."""
        m, b = state.model, state.running
        if not self.chunk or m.kappa <= 0 or b == 0:
            return 0
        knee = m.tau_w / m.kappa
        held = sum(int(state.prompt[j]) - d for j, d in state.prefilling.items())
        occ = self._pending_occ + state.kv_used * state.remaining / b
        ahead = max(self._end - self._it, occ / state.kv_tokens)
        if self._pending + state.remaining + held > ahead * knee:
            return 0
        return max(int(knee) - b, 1)

    def _mixed(self, state: ClientState) -> IterationPlan:
        self._it += 1
        b = state.running
        plan = IterationPlan(decode=b > 0)
        sigma = self._compute_slack(state)
        if sigma:  # one prompt at a time, fed up to the knee
            for j, done in state.prefilling.items():
                x = min(sigma, int(state.prompt[j]) - done)
                plan.prefill.append((j, x))
                sigma -= x
                if sigma <= 0:
                    return plan
            if not state.prefilling:
                adm, _ = self._fill(state, limit=1)
                plan.prefill += [(j, min(s, sigma)) for j, s in adm]
            return plan
        adm, blocked = self._fill(state)
        for j, done in state.prefilling.items():  # a held prompt
            left = int(state.prompt[j]) - done
            if adm:  # admissions fill this iteration: finish it, its compute is owed
                plan.prefill.append((j, left))
            else:
                x = self._slack(state, j)
                plan.prefill.append((j, min(x, left) if x else left))
        if adm and blocked:
            j, s = adm[-1]
            if s > 1 and self._slack(state, j):
                adm[-1] = (j, 1)  # reserve now, fed to the decode-only iterations after
        plan.prefill += adm
        return plan


class FixedPlan:
    """Replays a fixed sequence of iterations (an offline plan, e.g. the MIP's) on one
    client; an iteration that prefills a request not yet arrived waits for it."""

    name = "fixed-plan"

    def __init__(self, plan: list[IterationPlan]) -> None:
        self.queue = deque(plan)
        self.arrived: set[int] = set()

    def on_arrival(self, j: int, state: ClientState) -> None:
        self.arrived.add(j)
        state.waiting.append(j)

    def next_iteration(self, state: ClientState) -> IterationPlan:
        if not self.queue or any(j not in self.arrived for j, _ in self.queue[0].prefill):
            return IterationPlan()
        plan = self.queue.popleft()
        for j, _ in plan.prefill:
            if j in state.waiting:
                state.waiting.remove(j)
        return IterationPlan(list(plan.prefill), plan.decode)


SCHEDULERS = {"fcfs": Fcfs, "sarathi": Sarathi, "hybrid": Hybrid}


def make(name: str, **kwargs: object) -> Scheduler:
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULERS)}")
    return SCHEDULERS[name](**kwargs)
