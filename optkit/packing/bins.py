"""Bins given by the sizes they hold -> the bin of every item (one rule for every
method that packs by size: the dives, the pattern model, branch-and-price)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def plan_of_bins(sizes: np.ndarray, bins: Iterable[np.ndarray]) -> np.ndarray | None:
    """Bin of every item of ``sizes``: bin b takes an item of each size it lists while
    one is left (a size listed beyond the items left is dropped; a bin left empty gets
    no number). None when an item is in no bin."""
    s = np.asarray(sizes, dtype=np.int64)
    pools = {int(w): np.flatnonzero(s == w).tolist() for w in np.unique(s).tolist()}
    plan = np.full(len(s), -1, dtype=np.int64)
    b = 0
    for held in bins:
        used = False
        for w in np.asarray(held, dtype=np.int64).tolist():
            pool = pools.get(int(w))
            if pool:
                plan[pool.pop()] = b
                used = True
        b += used
    return None if (plan < 0).any() else plan
