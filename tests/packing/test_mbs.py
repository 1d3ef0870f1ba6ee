"""Minimum Bin Slack: valid packings, exact fills where FFD leaves a bin, solve by name."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from optkit.packing import BinPackingInstance, MakespanInstance, check, solve
from optkit.packing import heuristics as H
from optkit.packing.mbs import _fill, bins_to_machines, mbs, perturbed_mbs
from optkit.result import Status

from .helpers import brute_bins


@given(st.lists(st.integers(1, 10), min_size=1, max_size=7), st.integers(10, 15))
def test_mbs_packs_validly_and_never_below_the_optimum(s, W):
    inst = BinPackingInstance(W, np.array(s, dtype=float))
    plan = perturbed_mbs(np.array(s), W, 1, budget_s=0.01)
    verdict = check(inst, plan)
    bins, viol = verdict.objective, list(verdict.violations)
    assert not viol
    assert bins >= brute_bins(inst)


@given(st.lists(st.integers(1, 30), min_size=1, max_size=9), st.integers(1, 60))
def test_fill_finds_the_largest_subset_sum(sizes, room):
    sizes = sorted(sizes, reverse=True)
    pick = _fill(sizes, room, limit=10**9)
    assert len(set(pick)) == len(pick) and sum(sizes[k] for k in pick) <= room
    reachable = {0}
    for x in sizes:
        reachable |= {r + x for r in reachable if r + x <= room}
    assert sum(sizes[k] for k in pick) == max(reachable)


def test_exact_fill_beats_first_fit_decreasing():
    # W = 20: FFD packs [9, 8] [7, 6, 5] [5]; the optimum is [9, 6, 5] [8, 7, 5]
    sizes = np.array([9, 8, 7, 6, 5, 5])
    inst = BinPackingInstance(20, sizes.astype(float))
    assert check(inst, H.first_fit_decreasing(inst)).objective == 3
    assert check(inst, mbs(sizes, 20)).objective == 2
    res = solve(inst, "mbs")
    assert res.status is Status.OPTIMAL and res.objective == 2


def test_makespan_at_the_bound_and_folding():
    # p = 9 8 7 6 5 5 on 2 machines: bound 20, and 9+6+5 | 8+7+5 meets it
    inst = MakespanInstance.identical([9, 8, 7, 6, 5, 5], 2)
    res = solve(inst, "mbs")
    assert res.status is Status.OPTIMAL and res.objective == 20
    folded = bins_to_machines(np.array([9, 8, 7, 6, 5, 5]), np.array([0, 1, 2, 0, 1, 2]), 2)
    assert set(folded.tolist()) <= {0, 1} and check(inst, folded).valid
