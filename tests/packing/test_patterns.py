"""Low-waste pattern model: exact at the optimum, proves one bin fewer impossible."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from optkit.packing import BinPackingInstance, MakespanInstance, check, solve
from optkit.packing.patterns import pattern_packing

from .helpers import brute_bins


@given(st.lists(st.integers(1, 10), min_size=1, max_size=7), st.integers(10, 15))
def test_feasible_at_the_optimum_and_infeasible_below(s, W):
    inst = BinPackingInstance(W, np.array(s, dtype=float))
    opt = brute_bins(inst)
    out = pattern_packing(np.array(s), W, opt, None)
    assert out.plan is not None
    verdict = check(inst, out.plan)
    bins, viol = verdict.objective, list(verdict.violations)
    assert not viol and bins <= opt
    if opt > 1:
        below = pattern_packing(np.array(s), W, opt - 1, None)
        assert below.plan is None and below.infeasible


def test_by_hand():
    # waste 2 allowed, but 6 + 6 > 10 and 6 < 8: no pattern, so 2 bins are impossible
    out = pattern_packing(np.array([6, 6, 6]), 10, 2, None)
    assert out.infeasible and out.status == "infeasible (no pattern)"
    # a perfect packing: 9 + 6 + 5 | 8 + 7 + 5 (waste 0, so only exact fills are patterns)
    out = pattern_packing(np.array([9, 8, 7, 6, 5, 5]), 20, 2, None)
    assert out.plan is not None and sorted(np.bincount(out.plan).tolist()) == [3, 3]


def test_auto_proves_a_bound_above_the_cheap_ones():
    # P||Cmax, m = 2, p = 11 26 14 10 25 (sum 86): cheap bounds 43, MULTIFIT 46
    # (26 + 14 | 25 + 11 + 10). No subset sums to 41..45, so no plan has makespan
    # 43..45; the pattern model (after the arc-flow LP bound) proves 46.
    inst = MakespanInstance.identical([11, 26, 14, 10, 25], 2)
    for C in (43, 44, 45):
        assert pattern_packing(np.array([11, 26, 14, 10, 25]), C, 2, None).infeasible
    res = solve(inst)
    assert res.log[0] == "bounds: L1=43, pigeonhole=39, DM-binpacking=43"
    assert res.status.value == "OPTIMAL" and res.objective == 46 and res.bound == 46
