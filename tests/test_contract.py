"""The contract every registered problem keeps (DESIGN.md, "The registry").

Parametrised over ``optkit.problems.names()``: a problem that registers is tested here
without a line of its own. For each, on its smallest bundled instance:
solve -> ``--out`` -> ``check`` accepts the plan; a tampered result is rejected with
exit 2; every bound is below the verified objective; bad input exits 2 naming the
file; the JSON keys of DESIGN.md are present.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optkit import problems
from optkit.io import read_instance
from optkit.result import Status
from optkit.solvers import SolverOptions
from tests.clirun import SIMULATE_KEYS, SOLVE_KEYS, run
from tests.conftest import ROOT

BOUND_KEYS = {"instance", "problem", "bound", "bound_kind", "runtime_s"}


def bundled(name: str) -> Path:
    """The smallest bundled instance of problem ``name``."""
    found = [
        p
        for p in (ROOT / "instances").glob("*/*.json")
        if json.loads(p.read_text()).get("problem") == name
    ]
    assert found, f"no bundled instance of {name}: add one under instances/"
    return min(found, key=lambda p: p.stat().st_size)


@pytest.fixture(params=problems.names())
def problem(request) -> str:
    return request.param


def test_every_problem_has_a_face(problem):
    face = problems.get(problem)
    assert face.name == problem and face.sense in ("min", "max")
    assert face.methods and face.methods[0] == "auto" and face.bound_methods
    inst = read_instance(bundled(problem))
    assert problems.of(inst) is face


def test_solve_out_check_round_trip(problem, tmp_path):
    f = bundled(problem)
    r = run("solve", f, "--json", "--time-limit", "10", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert set(row) >= SOLVE_KEYS and row["problem"] == problem
    assert row["verified"] and row["status"] in ("OPTIMAL", "FEASIBLE")
    result = tmp_path / f"{f.stem}.result.json"
    saved = json.loads(result.read_text())
    assert saved["plan"] is not None
    r = run("check", f, result, "--json")
    assert r.returncode == 0, r.stderr
    checked = json.loads(r.stdout)
    assert checked["valid"] and checked["objective"] == pytest.approx(row["objective"], rel=1e-9)
    # the bare plan (without the result around it) is accepted too
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(saved["plan"]))
    assert run("check", f, bare).returncode == 0
    # a result that claims a better objective than its plan achieves is rejected
    saved["objective"] = row["objective"] * 0.9
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(saved))
    r = run("check", f, tampered)
    assert r.returncode == 2 and str(tampered) in r.stderr and "claims" in r.stderr
    # bound <= verified objective, for every bound method
    face = problems.get(problem)
    for method in face.bound_methods:
        r = run("bound", f, "--json", "--method", method, "--time-limit", "10")
        assert r.returncode == 0, r.stderr
        b = json.loads(r.stdout)
        assert set(b) >= BOUND_KEYS
        assert b["bound"] <= row["objective"] * (1 + 1e-6)


def test_library_face_matches_the_cli(problem):
    face = problems.get(problem)
    inst = read_instance(bundled(problem))
    res = face.solve(inst, "auto", SolverOptions(time_limit_s=10))
    assert res.verified and res.status in (Status.OPTIMAL, Status.FEASIBLE)
    verdict = face.check(inst, face.plan_from_json(json.loads(json.dumps(res.to_dict()["plan"]))))
    assert verdict.valid and verdict.objective == pytest.approx(res.objective, rel=1e-12)
    for b in face.bound(inst, "cheap", SolverOptions(10)):
        assert b.obtained and b.value <= res.objective * (1 + 1e-6)


def test_bad_input_exit_2(problem, tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"problem": problem, "format_version": 1}))
    for cmd in ("solve", "bound"):
        r = run(cmd, f)
        assert r.returncode == 2 and str(f) in r.stderr and "field" in r.stderr, r.stderr
    r = run("solve", bundled(problem), "--method", "no-such-method")
    assert r.returncode == 2 and "no-such-method" in r.stderr
    garbage = tmp_path / "plan.json"
    garbage.write_text(json.dumps({"plan": {"kind": "nothing"}}))
    r = run("check", bundled(problem), garbage)
    assert r.returncode == 2 and str(garbage) in r.stderr


def test_simulate_contract(problem):
    face = problems.get(problem)
    if not face.policies:
        r = run("simulate", bundled(problem))
        assert r.returncode == 2 and "no online policies" in r.stderr
        return
    for policy in face.policies[:2]:
        r = run("simulate", bundled(problem), "--policy", policy, "--json")
        assert r.returncode == 0, r.stderr
        row = json.loads(r.stdout)
        assert set(row) >= SIMULATE_KEYS and row["problem"] == problem
        assert row["ratio_to_bound"] >= 1 - 1e-9


def test_a_face_that_lacks_a_room_cannot_be_made():
    class NoCheck(problems.Problem):
        plan_type = tuple

        def instance_class(self):
            return dict

        def bounds_of(self, inst, method, time_limit_s):
            return []

        def solve_with(self, inst, method, options, backend):
            raise AssertionError

    with pytest.raises(TypeError, match="check"):
        NoCheck()

    class NoPlan(NoCheck):
        plan_type = None

        def check(self, inst, plan):
            raise AssertionError

    with pytest.raises(TypeError, match="plan_type"):
        NoPlan()


def test_bound_row_says_why_a_bound_is_missing_and_what_a_partial_one_covers():
    from optkit.result import Bound

    inst = read_instance(ROOT / "instances" / "packing" / "N1C1W4_I.json")
    partial = Bound(3.0, "reuse", reason="time limit: the first 10 of 20 steps")
    row = problems.bound_row(
        "x.json", inst, [partial, Bound.missing("lp", "too_large", "big")], 0.1
    )
    assert row["bound"] == 3.0 and row["bound_kind"] == "reuse"
    assert row["notes"] == {"reuse": "time limit: the first 10 of 20 steps"}
    assert row["not_obtained"] == {"lp": "too_large: big"}
