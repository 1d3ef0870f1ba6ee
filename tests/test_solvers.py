"""Shared solver plumbing: a PuLP model solved in a stopped child hands its
solution back, and statuses mean what they say."""

import os

import pulp
import pytest

from optkit.solvers import SolverOptions, available, call_with_deadline, solve_pulp


def _knapsack() -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    # max 5a + 4b + 3c s.t. 2a + 3b + c <= 5, binaries: a + b (9) beats a + c (8)
    prob = pulp.LpProblem("knap", pulp.LpMaximize)
    xs = [pulp.LpVariable(n, cat="Binary") for n in "abc"]
    prob += 5 * xs[0] + 4 * xs[1] + 3 * xs[2]
    prob += 2 * xs[0] + 3 * xs[1] + xs[2] <= 5
    return prob, xs


@pytest.mark.parametrize("backend", [b for b in ("highs", "cbc", "scip") if b in available()])
@pytest.mark.parametrize("limit", [None, 30.0])
def test_values_and_bound_come_back(backend, limit):
    prob, xs = _knapsack()
    ans = solve_pulp(prob, backend, SolverOptions(limit))
    assert ans.status == "optimal" and ans.objective == pytest.approx(9.0)
    # the values are in the variables, also when the solve ran in a child
    assert [round(v.value()) for v in xs] == [1, 1, 0]


@pytest.mark.parametrize("backend", [b for b in ("highs", "cbc") if b in available()])
def test_infeasible_is_said(backend):
    prob = pulp.LpProblem("none", pulp.LpMinimize)
    y = pulp.LpVariable("y", cat="Binary")
    prob += y
    prob += y >= 2
    ans = solve_pulp(prob, backend, SolverOptions(10.0))
    assert ans.status == "infeasible" and ans.objective is None


def test_a_child_past_its_deadline_is_stopped():
    import time

    t0 = time.perf_counter()
    assert call_with_deadline(lambda: time.sleep(30), 0.5) is None
    assert time.perf_counter() - t0 < 5
    assert call_with_deadline(os.getpid, 5.0) != os.getpid()  # it ran in a child


def test_a_change_of_thread_count_does_not_break_the_next_highs_run():
    # HiGHS sizes one global scheduler on its first run; a later run asking for another
    # thread count used to fail silently ("already initialized"), which read as no bound
    import numpy as np

    from optkit.packing import arcflow
    from optkit.solvers import new_highs

    for threads in (2, 1, 2):
        h = new_highs(threads)
        h.run()  # an empty model: sizes the scheduler
        sol = arcflow.solve(np.array([3, 3, 2, 2, 2]), 6, relax=True, threads=1)
        assert sol.status == "optimal" and sol.lp_value == 2.0


def test_deadline_tells_none_left_from_no_limit():
    import time

    from optkit.solvers import Deadline, OutOfTime

    done = Deadline(0.01)
    time.sleep(0.02)
    assert done.left() == 0.0 and done.portion(0.5) == 0.0 and done.part(0.5) == 0.0
    assert done.expired() and not done.fits(0.001)
    with pytest.raises(OutOfTime):
        done.check()
    free = Deadline(None)
    assert free.left() is None and free.portion(0.5) is None and free.fits(1e9)
    assert free.options(SolverOptions(5.0)).time_limit_s is None
    assert done.options(SolverOptions(5.0)).time_limit_s == 0.01
