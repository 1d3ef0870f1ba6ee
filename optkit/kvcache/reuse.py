"""The reuse-interval bound (formulations/kv_placement.md, bound 4).

A read served from HBM without a link crossing since the unit's previous read kept
the unit in HBM for the whole interval between the two reads. HBM holds at most
K = ⌊C_0/s⌋ units at a time, so per step at most K such intervals are open; splitting
each interval's read evenly over its steps gives, per step, a fractional knapsack
(shortest intervals first). The reads left over cross a link, which the per-step
time bound ``g_t(I_t)`` charges at ``1/B_ext`` per byte beyond bound 2's split.

One pass over the trace (it streams a generated one), O(reads + steps × bins).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from optkit.kvcache.instance import KvInstance

#: interval lengths up to EXACT_LAYERS · L steps get a bin each; longer ones share
#: geometric bins of this ratio (each bin's 1/g taken at its shortest length)
EXACT_LAYERS = 2
RATIO = 1.25
#: the deadline is tested every this many steps
CHECK_EVERY = 256
#: the per-step interval table (steps × bins, int32) may take at most this much memory
MAX_TABLE_BYTES = 2**30
#: prompt units that are not in HBM after prefill: their first read always crosses
FORCED = -(2**62)


@dataclass(frozen=True)
class ReuseBound:
    """The bound and what it rests on."""

    value: float
    steps: int  # steps whose reads were counted (the others are charged bound 2)
    complete: bool  # every step counted
    crossings: float  # X: reads that cross a link in every plan, at least
    reads: int  # reads in the counted steps
    seconds: float


def bins(steps: int, layers: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin of every interval length 0..steps, shortest length of every bin)."""
    exact = EXACT_LAYERS * layers
    lo = list(range(1, min(exact, steps) + 1))
    g = float(lo[-1]) if lo else 1.0
    while lo[-1] < steps:
        g = max(g * RATIO, lo[-1] + 1.0)
        lo.append(int(np.ceil(g)))
    lo_a = np.asarray(lo, dtype=np.int64)
    binof = np.searchsorted(lo_a, np.arange(steps + 1), side="right") - 1
    binof[0] = 0  # length 0 never occurs (a read ends its interval at a later step)
    return binof.astype(np.int32), lo_a


@njit(cache=True, error_model="numpy")
def _reads(t: int, layer: int, r: np.ndarray, last: np.ndarray, binof, diff) -> None:
    """Close the interval of every unit read at step t (0-based) and open the next."""
    for q in range(r.shape[0]):
        i = r[q]
        p = last[layer, i]
        if p != FORCED:
            b = binof[t - p]
            diff[p + 1, b] += 1
            diff[t + 1, b] -= 1
        last[layer, i] = t


@njit(cache=True, error_model="numpy")
def _csr(t0: int, t1: int, layers: int, indptr, indices, last, binof, diff) -> None:
    for t in range(t0, t1):
        _reads(t, t % layers, indices[indptr[t] : indptr[t + 1]], last, binof, diff)


@njit(cache=True, error_model="numpy")
def _covered(steps: int, K: int, diff, lo) -> np.ndarray:
    """V_τ for τ = 0..steps-1: per step, the K shortest open intervals, 1/g each."""
    nb = lo.shape[0]
    open_ = np.zeros(nb, dtype=np.int64)
    out = np.zeros(steps)
    for tau in range(steps):
        rem = K
        v = 0.0
        for b in range(nb):
            open_[b] += diff[tau, b]
            if rem > 0 and open_[b] > 0:
                take = open_[b] if open_[b] < rem else rem
                v += take / lo[b]
                rem -= take
        out[tau] = v
    return out


def compiled() -> bool:
    """True once this process has compiled (or loaded) the pass's kernels."""
    return all(k.signatures for k in (_reads, _csr, _covered))


def too_large(inst: KvInstance) -> str:
    """Why the pass cannot run here ('' when it can): its interval table would exceed
    :data:`MAX_TABLE_BYTES`."""
    need = (inst.steps + 1) * len(bins(inst.steps, inst.layers)[1]) * 4
    if need <= MAX_TABLE_BYTES:
        return ""
    return (
        f"the reuse bound's table of {inst.steps:,} steps needs {need / 2**30:.1f} GiB "
        f"(limit {MAX_TABLE_BYTES / 2**30:.0f} GiB)"
    )


def initial_last(inst: KvInstance) -> np.ndarray:
    """Per unit (layer, token), the step its open interval starts after: -1 for the
    prompt units in HBM after prefill (resident from step 0), the writing step for a
    decode unit, :data:`FORCED` for the other prompt units."""
    L, P = inst.layers, inst.prompt
    last = np.empty((L, inst.tokens), dtype=np.int64)
    last[:, :P] = FORCED
    for layer in range(L):
        last[layer, inst.initial_hbm(layer)] = -1
    n = np.arange(inst.decode)
    for layer in range(L):
        last[layer, P:] = n * L + layer
    return last


def _short(bytes_: np.ndarray, per_byte: float) -> float:
    """Seconds the largest prefix shortfall costs (0 when nothing falls short)."""
    return max(0.0, float(bytes_.max())) * per_byte if len(bytes_) else 0.0


def out_room(inst: KvInstance) -> int:
    """R0: units HBM can still take after prefill (exclusive mode); 0 in inclusive
    mode, where every new unit is written to its home tier whatever HBM holds."""
    if inst.mode == "inclusive":
        return 0
    held = sum(len(inst.initial_hbm(layer)) for layer in range(inst.layers))
    return inst.hbm_units - held


def reuse_bound(inst: KvInstance, time_limit_s: float | None = None) -> ReuseBound:
    """Bound 4; stopped by the limit after step t', the reuse bound of steps < t' plus
    bound 2 of the others (still a lower bound on Σ_t T_t)."""
    from optkit.kvcache.bounds import per_step
    from optkit.kvcache.trace import CsrTrace

    t_start = time.perf_counter()
    T, L = inst.steps, inst.layers
    binof, lo = bins(T, L)
    diff = np.zeros((T + 1, len(lo)), dtype=np.int32)
    last = initial_last(inst)
    tr = inst.trace
    done = 0

    def out_of_time() -> bool:
        return time_limit_s is not None and time.perf_counter() - t_start > time_limit_s

    if isinstance(tr, CsrTrace):
        for t0 in range(0, T, 4 * CHECK_EVERY):
            if out_of_time():
                break
            t1 = min(T, t0 + 4 * CHECK_EVERY)
            _csr(t0, t1, L, tr.indptr, tr.indices, last, binof, diff)
            done = t1
    else:
        for t, r in enumerate(tr.steps()):
            if t % CHECK_EVERY == 0 and out_of_time():
                break
            _reads(t, t % L, r, last, binof, diff)
            done = t + 1
    counts = tr.counts()
    _, c2 = per_step(inst, counts)
    s, W = inst.unit_bytes, inst.weight_bytes
    B0, Bx = inst.tiers[0].bandwidth, inst.external_rate
    R = counts[:done].astype(np.float64)
    D = W + s * R
    e = s * np.maximum(0.0, R - inst.hbm_units)
    split = np.maximum(e, np.maximum(D * Bx / (B0 + Bx), W * Bx / B0))  # Ĩ_t
    # reads of steps <= t cross at steps <= t: at least X_t = N_t - Σ_{τ<=t} V_τ of them
    X_t = np.cumsum(R) - np.cumsum(_covered(done, inst.hbm_units, diff, lo))
    base = np.cumsum(c2[:done])  # Σ_{τ<=t} of bound 2's step times
    # in: bytes the split Ĩ leaves uncarried by step t, each 1/B_ext more
    extra = _short(s * X_t - np.cumsum(split), 1.0 / Bx)
    # out: every step writes a unit to HBM or out; HBM takes R0 more units at most
    # (inclusive: every new unit is written home), so by step t at least
    # (t + 1 - R0)^+ units leave over the links, B_out per second at most
    out_t = s * np.maximum(0.0, np.arange(1, done + 1) - out_room(inst))
    extra = max(extra, _short(out_t - inst.out_rate * base, 1.0 / inst.out_rate))
    # both directions share the external tiers' own bandwidth Σ_k B_k
    Bt = sum(t.bandwidth for t in inst.tiers[1:])
    extra = max(extra, _short(s * X_t + out_t - Bt * base, 1.0 / Bt))
    X = max(0.0, float(X_t[-1])) if done else 0.0
    value = float(c2[:done].sum()) + extra + float(c2[done:].sum())
    return ReuseBound(value, done, done == T, X, int(R.sum()), time.perf_counter() - t_start)
