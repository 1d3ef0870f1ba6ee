"""Many solves: a process pool, a real Dask cluster (worker processes, so solver children
are forked inside daemonic processes), per-instance failures, determinism, --keep-going,
--resume and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from optkit import batch, problems
from optkit.io import read_instance
from optkit.packing import BinPackingInstance, MakespanInstance
from optkit.result import Status
from optkit.solvers import SolverOptions
from tests.clirun import run
from tests.conftest import ROOT

#: one bundled instance of every problem, and a bin-packing arc-flow solve that runs its
#: MILP in a forked child (call_with_deadline)
EVERY = sorted(
    {
        json.loads(p.read_text())["problem"]: p for p in (ROOT / "instances").glob("*/*.json")
    }.values()
)


def _jobs():
    rng = np.random.default_rng(1)
    return [
        batch.Job(
            MakespanInstance.identical(rng.integers(1, 50, 12), 3, name=f"r{i}"),
            options=SolverOptions(5),
        )
        for i in range(3)
    ]


def _every_problem_jobs():
    jobs = [batch.Job(read_instance(p), options=SolverOptions(5)) for p in EVERY]
    rng = np.random.default_rng(7)
    child = BinPackingInstance(150, rng.integers(20, 100, 40).astype(float), name="child")
    jobs.append(batch.Job(child, "arcflow", options=SolverOptions(5)))
    broken = SimpleNamespace(problem="makespan", name="broken", n=3)  # fails inside solve
    jobs.append(batch.Job(broken, "ffd", options=SolverOptions(5)))
    return jobs


def _summary(res):
    return (res.status, res.objective, res.bound)


def test_pool_matches_serial_and_keeps_order():
    serial = [r.objective for _, r in batch.run(_jobs())]
    pooled = [(i, r.objective) for i, r in batch.run(_jobs(), workers=2)]
    assert [i for i, _ in pooled] == [0, 1, 2]
    assert [o for _, o in pooled] == serial


def test_dask_cluster_of_processes_runs_every_problem():
    from dask.distributed import LocalCluster

    jobs = _every_problem_jobs()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        got = list(batch.run(jobs, scheduler=cluster.scheduler_address))
    assert [i for i, _ in got] == list(range(len(jobs)))
    *solved, broken = [r for _, r in got]
    assert broken.status is Status.ERROR and broken.reason  # recorded; the batch went on
    local = [r for _, r in batch.run(jobs[:-1])]
    for r, ref in zip(solved, local, strict=True):
        assert r.status in (Status.OPTIMAL, Status.FEASIBLE) and r.verified, r.reason
        assert r.status is ref.status or r.objective == pytest.approx(ref.objective)
    assert solved[-1].status is Status.OPTIMAL  # the arc-flow MILP ran in a forked child


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
def test_same_seed_same_answer(path):
    inst = read_instance(path)
    face = problems.of(inst)
    opts = SolverOptions(time_limit_s=5, threads=1, seed=3)
    a, b = face.solve(inst, "auto", opts), face.solve(inst, "auto", opts)
    if a.status is Status.OPTIMAL:  # a time-limited search may stop at other points
        assert _summary(a) == _summary(b)
        assert json.dumps(a.to_dict()["plan"]) == json.dumps(b.to_dict()["plan"])


def test_keep_going_and_resume(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"problem": "makespan"}')
    good = [ROOT / "instances/packing/U_1_0010_05_5.json", ROOT / "instances/packing/N1C1W4_I.json"]
    out = tmp_path / "out"
    r = run("solve", good[0], bad, good[1], "--out", out, "--json")
    assert r.returncode == 2 and not out.exists()  # nothing written when an input is bad
    r = run("solve", good[0], bad, good[1], "--out", out, "--json", "--keep-going")
    assert r.returncode == 2 and str(bad) in r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["status"] for x in rows] == ["OPTIMAL", "ERROR", "OPTIMAL"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{g.stem}.result.json" for g in good)
    stamp = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    r = run("solve", *good, "--out", out, "--json", "--resume")
    assert r.returncode == 0
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamp  # not solved again
    assert [json.loads(x)["objective"] for x in r.stdout.splitlines()] == [121, 35]


def test_ctrl_c_exits_130_and_leaves_no_temporary_files(tmp_path):
    slow = ROOT / "instances/packing/azure-conv-200x8.json"
    fast = ROOT / "instances/packing/U_1_0010_05_5.json"
    p = subprocess.Popen(
        [sys.executable, "-m", "optkit.cli", "solve", fast, slow, slow, "--out", tmp_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "U_1_0010_05_5.result.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "interrupted" in err
    assert [f.name for f in tmp_path.iterdir()] == ["U_1_0010_05_5.result.json"]
    assert json.loads(Path(tmp_path / "U_1_0010_05_5.result.json").read_text())["objective"] == 121
