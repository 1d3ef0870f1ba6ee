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
    bins, viol = check(inst, out.plan)
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


def test_auto_raises_the_bound_by_proof():
    # P||Cmax, m = 2, p = 11 26 14 10 25 (sum 86): cheap bounds 43, MULTIFIT 46
    # (26 + 14 | 25 + 11 + 10). No machine load can be 43, 44 or 45 in a 2-machine
    # plan of makespan <= 45 (no subset sums to 41..45), which the pattern model proves.
    inst = MakespanInstance.identical([11, 26, 14, 10, 25], 2)
    res = solve(inst)
    assert res.status.value == "OPTIMAL" and res.objective == 46 and res.bound == 46
    assert "low-waste patterns at 45: infeasible (no pattern) (0 patterns)" in res.log
