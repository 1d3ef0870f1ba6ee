"""Replay simulator: run a placement policy over a decode trace.

Step semantics and costs are those of formulations/kv_placement.md: at step t
the placement in force serves the reads (from HBM when HBM holds the unit,
else from its home tier over the link); the policy's moves run during step t
and are in force at t+1; a miss that is promoted in the same step crosses the
link once ("read and keep"). Every step time is the slowest resource:
``T_t = max(M_0/B_0, M_k/B_k, I_k/L_k^in, O_k/L_k^out)``.

The simulator enforces the rules (a policy that promotes a resident unit,
demotes a missing one or overfills HBM raises :class:`PolicyError`), so a
replay never exceeds capacity; ``check()`` verifies the recorded moves
independently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from optkit.kvcache.instance import KvInstance


class PolicyError(RuntimeError):
    """A policy asked for an impossible move."""


@dataclass
class StepView:
    """What a policy sees at step t = n·L + layer (0-based)."""

    t: int
    n: int
    layer: int
    context: int  # tokens before this step; the new token's index
    reads: np.ndarray  # token indices read at this step (layer ``layer``)
    hits: np.ndarray  # bool per read: served by HBM
    misses: np.ndarray  # the reads served by an external tier: reads[~hits]
    hbm: np.ndarray  # bool per token of this layer: in HBM (read-only)
    used: int  # units of this layer in HBM
    budget: int  # h_l, the layer's share of HBM
    free: int  # HBM units free overall
    inst: KvInstance


@dataclass
class Moves:
    """Moves of layer ``view.layer`` that run during the step (in force at t+1)."""

    promote: np.ndarray | None = None  # token indices -> HBM
    demote: np.ndarray | None = None  # token indices -> home tier
    new_to_hbm: bool = False  # where the new token's KV goes


NO_MOVES = Moves()


class Policy(Protocol):
    name: str

    def reset(self, inst: KvInstance) -> None: ...

    def on_step(self, view: StepView) -> Moves: ...


@dataclass
class Replay:
    """Per-step record of a replay; ``moves`` only with ``record=True``."""

    policy: str
    times: np.ndarray
    reads: np.ndarray
    hits: np.ndarray
    promoted: np.ndarray  # units promoted per step
    demoted: np.ndarray
    decision_s: float
    wall_s: float
    moves: list[tuple[np.ndarray, np.ndarray, bool]] | None = field(default=None, repr=False)
    snapshots: np.ndarray | None = field(default=None, repr=False)  # (taken, bins): share in HBM
    snapshot_tokens: np.ndarray | None = field(default=None, repr=False)  # decode token of each

    @property
    def total_time(self) -> float:
        return float(self.times.sum())

    @property
    def hit_rate(self) -> float:
        r = self.reads.sum()
        return float(self.hits.sum() / r) if r else 1.0


def step_time(
    inst: KvInstance,
    hbm_bytes: float,
    tier_bytes: np.ndarray,
    link_in: np.ndarray,
    link_out: np.ndarray,
) -> float:
    """max over resources of bytes / bandwidth (arrays indexed by external tier 1..K-1;
    a link shared by several tiers carries the sum of theirs)."""
    t = hbm_bytes / inst.tiers[0].bandwidth
    for k, tier in enumerate(inst.tiers[1:]):
        t = max(t, tier_bytes[k] / tier.bandwidth)
    G, tl = len(inst.links), inst.tier_link
    i, o = np.bincount(tl, link_in, G), np.bincount(tl, link_out, G)
    for g, link in enumerate(inst.links):
        t = max(t, i[g] / link.link_in, o[g] / link.link_out)
    return t


def initial_placement(inst: KvInstance) -> np.ndarray:
    """(L, P + decode) bool: HBM residency after prefill."""
    hbm = np.zeros((inst.layers, inst.tokens), dtype=bool)
    for layer in range(inst.layers):
        hbm[layer, inst.initial_hbm(layer)] = True
    return hbm


def replay(
    inst: KvInstance,
    policy: Policy,
    record: bool = False,
    progress: Callable[[int], None] | None = None,
    snapshot_bins: int = 0,
) -> Replay:
    """Run ``policy`` over the instance's trace; ``progress(t)`` is called every 1024 steps.

    ``record`` keeps every step's moves (for ``check``); ``snapshot_bins > 0`` records,
    about 200 times, the share of each of that many token ranges in HBM (heat maps)."""
    L, s, K = inst.layers, inst.unit_bytes, len(inst.tiers)
    exclusive = inst.mode == "exclusive"
    T = inst.steps
    hbm = initial_placement(inst)
    used = hbm.sum(axis=1)
    total = int(used.sum())
    cap = inst.hbm_units
    homes = None if K == 2 else np.stack([inst.home(k, np.arange(inst.tokens)) for k in range(L)])
    times = np.empty(T)
    reads = np.empty(T, dtype=np.int64)
    hits = np.empty(T, dtype=np.int64)
    promoted = np.zeros(T, dtype=np.int64)
    demoted = np.zeros(T, dtype=np.int64)
    log: list[tuple[np.ndarray, np.ndarray, bool]] | None = [] if record else None
    empty = np.zeros(0, dtype=np.int64)
    ext = K - 1
    policy.reset(inst)
    snaps: list[np.ndarray] = []
    snap_at: list[int] = []
    every = max(1, inst.decode // 200)
    edges = (
        np.linspace(0, inst.tokens, snapshot_bins + 1).astype(int)[:-1] if snapshot_bins else None
    )
    seen = np.full(inst.tokens, -1, dtype=np.int64)  # step at which a unit last missed
    bw_hbm = inst.tiers[0].bandwidth
    bw_ext, bw_in, bw_out = (inst.tiers[1].bandwidth, inst.tiers[1].link_in, inst.tiers[1].link_out)
    decision = 0.0
    t0 = time.perf_counter()
    for t, R in enumerate(inst.trace.steps()):
        layer, n = t % L, t // L
        c = inst.prompt + n
        h = hbm[layer]
        hit = h[R]
        miss = R[~hit]
        nhit = len(R) - len(miss)
        view = StepView(
            t, n, layer, c, R, hit, miss, h, int(used[layer]), inst.layer_budget, cap - total, inst
        )
        d0 = time.perf_counter()
        mv = policy.on_step(view)
        decision += time.perf_counter() - d0
        pro = empty if mv.promote is None else np.asarray(mv.promote)
        dem = empty if mv.demote is None else np.asarray(mv.demote)
        # --- validate and apply -------------------------------------------------
        before = int(used[layer])
        if len(dem):
            if not h[dem].all():
                raise PolicyError(f"{policy.name}: step {t}: demotes a unit not in HBM")
            h[dem] = False
            nd = before - int(np.count_nonzero(h[:c]))
            if nd != len(dem):
                raise PolicyError(f"{policy.name}: step {t}: demotes a unit twice")
        else:
            nd = 0
        if len(pro):
            if pro.min() < 0 or pro.max() >= c:
                raise PolicyError(f"{policy.name}: step {t}: promotes a token that does not exist")
            if h[pro].any():
                raise PolicyError(f"{policy.name}: step {t}: promotes a unit already in HBM")
            h[pro] = True
            npro = int(np.count_nonzero(h[:c])) - (before - nd)
            if npro != len(pro):
                raise PolicyError(f"{policy.name}: step {t}: promotes a unit twice")
        else:
            npro = 0
        if mv.new_to_hbm:
            h[c] = True
        used[layer] += npro - nd + int(mv.new_to_hbm)
        total += npro - nd + int(mv.new_to_hbm)
        if total > cap:
            raise PolicyError(f"{policy.name}: step {t}: HBM holds {total} units, capacity {cap}")
        # --- costs ---------------------------------------------------------------
        nmiss = len(miss)
        # promoted misses were read this step: their link bytes are already counted
        # (a promoted unit was not in HBM, so it was read now exactly when it is in R)
        if len(pro):
            seen[miss] = t
            read_now = seen[pro] == t
            keep = int(np.count_nonzero(read_now))
        else:
            keep = 0
        hbm_bytes = inst.weight_bytes + s * (
            nhit + npro + (nd if exclusive else 0) + int(mv.new_to_hbm)
        )
        if ext == 1:  # one external tier: scalars (the common case, and the hot loop)
            fetch1 = nmiss + npro - keep
            out1 = nd if exclusive else 0
            write1 = 0 if (exclusive and mv.new_to_hbm) else 1
            times[t] = max(
                hbm_bytes / bw_hbm,
                s * (fetch1 + out1 + write1) / bw_ext,
                s * fetch1 / bw_in,
                s * (out1 + write1) / bw_out,
            )
        else:
            assert homes is not None
            hm = homes[layer]
            fetch = np.bincount(hm[miss] - 1, minlength=ext).astype(float)
            if len(pro):
                fetch += np.bincount(hm[pro[~read_now]] - 1, minlength=ext)
            out = (
                np.bincount(hm[dem] - 1, minlength=ext).astype(float)
                if exclusive and nd
                else np.zeros(ext)
            )
            write = np.zeros(ext)
            if not (exclusive and mv.new_to_hbm):
                write[hm[c] - 1] = 1.0
            times[t] = step_time(
                inst, hbm_bytes, s * (fetch + out + write), s * fetch, s * (out + write)
            )
        reads[t], hits[t], promoted[t], demoted[t] = len(R), nhit, npro, nd
        if log is not None:
            log.append((pro.copy(), dem.copy(), bool(mv.new_to_hbm)))
        if progress is not None and t % 1024 == 0:
            progress(t)
        if edges is not None and layer == L - 1 and n % every == 0:
            snaps.append(
                np.add.reduceat(hbm.mean(axis=0), edges) / np.diff(np.append(edges, inst.tokens))
            )
            snap_at.append(n)
    return Replay(
        getattr(policy, "name", type(policy).__name__),
        times,
        reads,
        hits,
        promoted,
        demoted,
        decision,
        time.perf_counter() - t0,
        log,
        np.array(snaps) if snaps else None,
        np.array(snap_at) if snap_at else None,
    )


def metrics(inst: KvInstance, rep: Replay) -> dict[str, Any]:
    """Flat measures of a replay (the ``metrics`` object of ``optkit simulate``)."""
    s = inst.unit_bytes
    total = rep.total_time
    served = s * rep.reads.sum() + inst.weight_bytes * len(rep.times)
    agg = inst.tiers[0].bandwidth + inst.external_rate
    steps = max(len(rep.times), 1)
    return {
        "total_time_s": total,
        "hit_rate": rep.hit_rate,
        "utilization": served / (total * agg) if total > 0 else 0.0,
        "promoted_bytes": float(s * rep.promoted.sum()),
        "demoted_bytes": float(s * rep.demoted.sum()),
        "migration_bytes": float(s * (rep.promoted.sum() + rep.demoted.sum())),
        "step_time_p50_s": float(np.median(rep.times)) if len(rep.times) else 0.0,
        "decision_us_per_step": 1e6 * rep.decision_s / steps,
        "replay_s": rep.wall_s,
    }
