"""Lower bounds on the total decode time Σ_t T_t (formulations/kv_placement.md).

1. ``ceiling``: every read byte is served by HBM or through a link,
   ``T_t >= max(W_t/B_0, D_t/(B_0 + B_ext))``.
2. ``capacity``: at most ⌊C_0/s⌋ units are in HBM during a step, so the rest
   of the reads cross the links: ``T_t >= e_t / B_ext``.
3. ``lp``: the LP relaxation of the time-expanded model (``exact.lp_bound``).
4. ``reuse``: HBM capacity counted over the intervals between a unit's reads, the
   reads it cannot cover charged to the links (``reuse.reuse_bound``); one pass over
   the trace, never below 2.

``unlimited_hbm`` (everything in HBM) is the paper's reference point; it is not
a lower bound when external tiers add bandwidth, and is never reported as one.
"""

from __future__ import annotations

import time

import numpy as np

from optkit.kvcache.instance import KvInstance
from optkit.result import Bound

#: ``bound(method="auto")`` solves the LP when the model has at most this many columns.
LP_AUTO_COLUMNS = 60_000
#: the reuse pass is skipped with less time than this until its kernels are compiled
REUSE_COLD_S = 2.0


def per_step(inst: KvInstance, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(bound 1, bound 2) per step."""
    R = inst.trace.counts() if counts is None else counts
    s, W = inst.unit_bytes, inst.weight_bytes
    B0, Bx = inst.tiers[0].bandwidth, inst.external_rate
    ceil = np.maximum(W / B0, (W + s * R) / (B0 + Bx))
    excess = s * np.maximum(0, R - inst.hbm_units)
    return ceil, np.maximum(ceil, excess / Bx)


def unlimited_hbm(inst: KvInstance, counts: np.ndarray | None = None) -> float:
    """Σ_t (W_t + s|R_t| + s)/B_0: every unit in HBM (a reference, not a bound)."""
    R = inst.trace.counts() if counts is None else counts
    s = inst.unit_bytes
    return float(((inst.weight_bytes + s * R + s) / inst.tiers[0].bandwidth).sum())


BOUND_METHODS = ("auto", "cheap", "reuse", "lp")


def reuse(inst: KvInstance, time_limit_s: float | None) -> Bound:
    """Bound 4 as a :class:`Bound`; stopped by the limit, the steps it did not reach are
    charged bound 2 (still a bound, and the reason says so)."""
    from optkit.kvcache.reuse import compiled, reuse_bound, too_large

    why = too_large(inst)
    if why:
        return Bound.missing("reuse", "too_large", why)
    if time_limit_s is not None and time_limit_s < REUSE_COLD_S and not compiled():
        # its first use in a process compiles (or loads) its kernels: about a second
        return Bound.missing(
            "reuse", "time_limit", f"{time_limit_s:.2g} s is too short to compile its pass"
        )
    rb = reuse_bound(inst, time_limit_s)
    if rb.complete:
        return Bound(rb.value, "reuse")
    return Bound(
        rb.value,
        "reuse",
        reason=f"time limit: reuse intervals of the first {rb.steps:,} of {inst.steps:,} "
        "steps, the capacity bound for the others",
    )


def bounds(inst: KvInstance, method: str = "auto", time_limit_s: float = 60.0) -> list[Bound]:
    """Every bound ``method`` asks for: ``cheap`` (1, 2), ``reuse`` (1, 2, 4), ``lp``
    (1, 2, 4, 3) or ``auto`` (1, 2, 4, and 3 only when the model is small enough,
    :data:`LP_AUTO_COLUMNS`), all within ``time_limit_s``. An LP asked for with ``lp``
    that does not finish is returned without a value, with the reason."""
    from optkit.kvcache.exact import lp_bound, model_size

    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}; expected auto, cheap, reuse or lp")
    t0 = time.perf_counter()
    c1, c2 = per_step(inst)
    out = [Bound(float(c1.sum()), "ceiling"), Bound(float(c2.sum()), "capacity")]
    if method == "cheap":
        return out
    small = model_size(inst) <= LP_AUTO_COLUMNS
    # the reuse pass streams the trace once; with an LP to come it leaves it most of the time
    out.append(reuse(inst, time_limit_s * (0.3 if method == "lp" or small else 1.0)))
    if method == "lp" or (method == "auto" and small):
        lp = lp_bound(inst, max(0.01, time_limit_s - (time.perf_counter() - t0)))
        if lp.value is not None:
            out.append(Bound(lp.value, "lp"))
        else:
            status = "time_limit" if "time" in lp.status else "failed"
            why = f"the LP ({lp.columns:,} columns) stopped: {lp.status}"
            out.append(Bound.missing("lp", status, why))
    return out
