"""The CLI contract: JSON Lines fields, exit codes, messages on bad input."""

import json
from pathlib import Path

import pytest

from tests.clirun import SOLVE_KEYS, run

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "instances" / "packing").glob("*.json"))
#: known optima of the bundled packing instances (azure-conv: the best known plan)
KNOWN = {
    "N1C1W4_I": 35,
    "U_1_0010_05_5": 121,
    "azure-conv-200x8": 40.575613,
    "class4-n40-m20": 212,
    "uniform-3speeds": 13,
    "unrelated-4x12": 14,
}


def test_solve_json_lines_contract():
    r = run("solve", *BUNDLED, "--json", "--time-limit", "5")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == len(BUNDLED)
    for row in lines:
        assert set(row) >= SOLVE_KEYS
        assert row["verified"] is True
        best = KNOWN[Path(row["instance"]).stem]  # optimum, or best known (azure)
        assert row["bound"] <= best * (1 + 1e-9) and row["objective"] >= best * (1 - 1e-9)
    assert {row["status"] for row in lines} <= {"OPTIMAL", "FEASIBLE"}


def test_solve_table_and_outputs(tmp_path):
    inst = ROOT / "instances" / "packing" / "U_1_0010_05_5.json"
    r = run("solve", inst, "--out", tmp_path / "res", "--plot", tmp_path / "plots")
    assert r.returncode == 0 and "OPTIMAL" in r.stdout
    result = json.loads((tmp_path / "res" / "U_1_0010_05_5.result.json").read_text())
    assert result["objective"] == 121 and len(result["plan"]) == 10
    assert (tmp_path / "plots" / "U_1_0010_05_5.png").stat().st_size > 1000
    # The written result is a valid plan file for `check`.
    r = run("check", inst, tmp_path / "res" / "U_1_0010_05_5.result.json", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["objective"] == 121


def test_bound_json_contract():
    r = run("bound", ROOT / "instances" / "packing" / "N1C1W4_I.json", "--json")
    row = json.loads(r.stdout)
    assert r.returncode == 0 and row["bound"] == 35 and row["bound_kind"] and "runtime_s" in row


def test_bad_file_exit_2_names_file_and_field_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"problem": "makespan", "format_version": 1, "machines": 2, "durations": [1, null]}'
    )
    good = ROOT / "instances" / "packing" / "U_1_0010_05_5.json"
    r = run("solve", good, bad, "--out", tmp_path / "out")
    assert r.returncode == 2
    assert f"{bad}: field 'durations[1]': expected a finite number, got null" in r.stderr
    assert not (tmp_path / "out").exists()


def test_invalid_plan_exit_2(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([0] * 9 + [7]))
    r = run("check", ROOT / "instances" / "packing" / "U_1_0010_05_5.json", plan)
    assert r.returncode == 2
    assert "job 9 is on machine 7, outside 0..4" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["solve", "nope.json"], "nope.json: file not found"),
        (
            ["solve", "instances/packing/N1C1W4_I.json", "--method", "lpt"],
            "method 'lpt' does not apply to binpacking",
        ),
        (
            ["solve", "instances/packing/N1C1W4_I.json", "--time-limit", "0"],
            "time limit: expected a finite number of seconds > 0",
        ),
        (["solve", "--bogus"], "No such option"),
        (
            ["solve", "instances/packing/uniform-3speeds.json", "--method", "cpsat"],
            "method 'cpsat' needs integral times (uniform machines: use milp or auto)",
        ),
    ],
)
def test_usage_errors_exit_2(args, message):
    r = run(*args, cwd=ROOT)
    assert r.returncode == 2
    assert message in r.stderr


def test_export(tmp_path):
    inst = ROOT / "instances" / "packing" / "class4-n40-m20.json"
    r = run("export", inst, "--method", "milp", "--format", "mps", "--out", tmp_path / "m.mps")
    assert r.returncode == 0 and "ROWS" in (tmp_path / "m.mps").read_text()


def test_infeasible_is_a_result_not_an_error(tmp_path):
    f = tmp_path / "inf.json"
    f.write_text('{"problem": "binpacking", "format_version": 1, "capacity": 5, "sizes": [3, 6]}')
    r = run("solve", f, "--json")
    row = json.loads(r.stdout)
    assert r.returncode == 0 and row["status"] == "INFEASIBLE"
    assert row["reason"] == "item 1 of size 6 exceeds the bin capacity 5 (1 such items)"
