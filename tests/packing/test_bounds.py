import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optkit.packing import BinPackingInstance, MakespanInstance, bound
from optkit.packing import bounds as B

from .helpers import brute_bins, brute_makespan


def test_mcnaughton_and_pigeonhole_by_hand():
    p = np.array([5, 5, 5, 1])
    assert B.mcnaughton(p, 3, True) == 6  # ceil(16 / 3) = 6 > max p = 5
    assert B.pigeonhole(p, 3, True) == 6  # p_3 + p_4 = 5 + 1
    # 7 jobs of 10 on 3 machines: some machine gets 3 of them.
    assert B.pigeonhole(np.full(7, 10.0), 3, True) == 30


def test_bpp_bounds_by_hand():
    # Martello–Toth L2 beats L1: six items of 6 with W = 10 need six bins.
    s = np.full(6, 6.0)
    assert B.bpp_l1(s, 10) == 4
    assert B.bpp_l2(s, 10) == 6
    # DFF (u_k with k = 2): three items of 4 with W = 10 fit two per bin -> 2 bins, L1 = 2.
    assert B.bpp_dff(np.array([4.0, 4.0, 4.0, 4.0, 4.0]), 10) == 3


def test_dell_amico_martello_raises_l1():
    # 4 jobs of 6 on 3 machines: L1 = max(8, 6) = 8, but two jobs share a machine -> 12.
    p = np.full(4, 6.0)
    assert B.dell_amico_martello(p, 3, B.mcnaughton(p, 3, True)) == 12


def test_uniform_bound():
    # Two jobs of 4 on speeds (2, 1): the k = 1 ratio 4/2 = 2 and total 8/3.
    assert B.uniform_bound(np.array([4.0, 4.0]), np.array([2.0, 1.0])) == pytest.approx(8 / 3)


def test_lst_bound_beats_simple_bound():
    # Job 0 only fast on machine 0, job 1 too: LST sees that they share machine 0 or pay 10.
    t = np.array([[1.0, 1.0], [10.0, 10.0]])
    assert B.unrelated_simple(t) == 1.0
    assert B.lst_lp_bound(t) >= 1.0 and B.lst_lp_bound(t) <= 2.0


small_p = st.lists(st.integers(1, 30), min_size=1, max_size=7)


@given(small_p, st.integers(1, 3))
def test_makespan_bounds_never_exceed_optimum(p, m):
    inst = MakespanInstance.identical(p, m)
    opt = brute_makespan(inst)
    for b in B.makespan_bounds(inst):
        assert b.value <= opt + 1e-9, b
    assert bound(inst, "lp").value <= opt + 1e-9


@given(
    st.lists(st.floats(0.5, 20), min_size=1, max_size=6),
    st.lists(st.floats(0.5, 3), min_size=1, max_size=3),
)
def test_uniform_bound_never_exceeds_optimum(p, s):
    inst = MakespanInstance.uniform(p, s)
    opt = brute_makespan(inst)
    for b in B.makespan_bounds(inst):
        assert b.value <= opt * (1 + 1e-9)


@given(
    st.lists(
        st.lists(st.integers(1, 20) | st.none(), min_size=5, max_size=5), min_size=1, max_size=3
    )
)
def test_unrelated_bounds_never_exceed_optimum(rows):
    t = np.array([[np.inf if v is None else v for v in r] for r in rows], dtype=float)
    t[0, :] = np.where(np.isinf(t[0]), 15, t[0])  # every job has a machine
    inst = MakespanInstance.unrelated(t)
    opt = brute_makespan(inst)
    for b in B.makespan_bounds(inst):
        assert b.value <= opt + 1e-6


@given(st.lists(st.integers(1, 10), min_size=1, max_size=7), st.integers(10, 16))
def test_binpacking_bounds_never_exceed_optimum(s, W):
    inst = BinPackingInstance(W, np.array(s, dtype=float))
    opt = brute_bins(inst)
    for b in B.binpacking_bounds(inst):
        assert b.value <= opt, b
    assert bound(inst, "lp").value <= opt


def test_infeasible_bin_packing_bound_is_inf():
    inst = BinPackingInstance(5, np.array([3.0, 6.0]))
    assert B.binpacking_bounds(inst)[0].value == float("inf")
