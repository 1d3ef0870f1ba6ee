"""Traces -> makespan instances; the cost and catalog commands."""

import json
from pathlib import Path

import numpy as np
import pytest

from optkit.costmodel import Setup, builtin_catalog
from optkit.costmodel.generate import makespan_instance, request_durations
from optkit.costmodel.traces import read_trace
from optkit.io import InputError, parse_instance
from optkit.packing import check, solve
from optkit.solvers import SolverOptions
from tests.clirun import run

TRACES = sorted((Path(__file__).resolve().parents[1] / "data" / "traces").glob("*.csv"))
CAT = builtin_catalog()


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_each_bundled_trace_gives_a_valid_packing_instance(path):
    tr = read_trace(path)
    assert len(tr) == 20 and np.all(tr.output >= 1)
    doc = makespan_instance(tr, CAT.get_model("llama-2-7b"), CAT.get_hardware("a100-80gb"), 4)
    inst = parse_instance(json.loads(json.dumps(doc)))
    assert inst.machines == 4 and inst.n == 20
    assert np.all(inst.durations > 0)
    res = solve(inst, options=SolverOptions(time_limit_s=2))
    assert res.verified and check(inst, res.plan).valid


def test_durations_grow_with_tokens_and_shrink_with_batching():
    tr = read_trace(TRACES[0])
    m, h = CAT.get_model("llama-2-7b"), CAT.get_hardware("a100-80gb")
    d1 = request_durations(tr, m, h)
    longer = tr.__class__(tr.name, tr.layout, tr.arrival_s, tr.prompt, tr.output + 10, tr.ids)
    assert np.all(request_durations(longer, m, h) > d1)
    assert np.all(request_durations(tr, m, h, batch=16) < d1)


def test_tensor_parallel_devices_make_fewer_machines():
    tr = read_trace(TRACES[0])
    doc = makespan_instance(
        tr, CAT.get_model("llama-65b"), CAT.get_hardware("a100-80gb"), 16, Setup(tp=8)
    )
    assert doc["machines"] == 2
    with pytest.raises(ValueError, match="multiple of tp x pp"):
        makespan_instance(
            tr, CAT.get_model("llama-65b"), CAT.get_hardware("a100-80gb"), 12, Setup(tp=8)
        )


def test_azure_arrivals_are_relative_seconds():
    tr = read_trace(next(p for p in TRACES if p.stem == "azure_conv_20"))
    assert tr.arrival_s[0] == 0 and np.all(np.diff(tr.arrival_s) >= 0)
    assert tr.arrival_s[1] == pytest.approx(4.3145791, abs=1e-6)


def test_bad_trace_names_the_file_and_columns(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,2\n")
    with pytest.raises(
        InputError, match=r"t.csv: field 'header': expected the columns of a known trace"
    ):
        read_trace(f)
    g = tmp_path / "g.csv"
    g.write_text("prompt_tokens,output_tokens\n10,x\n")
    with pytest.raises(InputError, match=r"g.csv: line 2: field 'prompt_tokens'/'output_tokens'"):
        read_trace(g)


def test_cli_generate_writes_a_solvable_instance(tmp_path):
    out = tmp_path / "g.json"
    r = run(
        "generate",
        "makespan",
        "--trace",
        TRACES[0],
        "--model",
        "llama-2-7b",
        "--hardware",
        "h100-sxm",
        "--devices",
        "4",
        "--out",
        out,
    )
    assert r.returncode == 0, r.stderr
    r = run("solve", out, "--json", "--time-limit", "2")
    assert r.returncode == 0 and json.loads(r.stdout)["verified"] is True
    bad = run(
        "generate",
        "makespan",
        "--trace",
        tmp_path / "none.csv",
        "--model",
        "llama-2-7b",
        "--hardware",
        "h100-sxm",
        "--devices",
        "4",
        "--out",
        tmp_path / "x.json",
    )
    assert bad.returncode == 2 and "none.csv: cannot read trace" in bad.stderr
    assert not (tmp_path / "x.json").exists()


def test_cli_cost_json_contract():
    r = run(
        "cost",
        "--model",
        "llama-2-70b",
        "--hardware",
        "h100-sxm",
        "--tp",
        "4",
        "--batch",
        "8",
        "--input",
        "1000",
        "--output",
        "100",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    for key in (
        "model",
        "hardware",
        "prefill_s",
        "decode_step_s",
        "request_s",
        "throughput_tok_s",
        "memory_bytes",
        "bottleneck",
    ):
        assert key in row
    assert row["bottleneck"] in ("compute", "memory", "communication")
    assert row["request_s"] > row["prefill_s"] > 0
    assert row["throughput_tok_s"] == pytest.approx(800 / row["request_s"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "llama-9b", "--hardware", "h100-sxm"], "unknown model 'llama-9b'"),
        (
            ["--model", "llama-2-7b", "--hardware", "h100-sxm", "--dtype", "w3"],
            "unknown precision 'w3'",
        ),
        (
            ["--model", "llama-2-7b", "--hardware", "h100-sxm", "--attention", "sliding"],
            "attention kind must be",
        ),
        (["--model", "bert-base", "--hardware", "h100-sxm", "--output", "5"], "is an encoder"),
        (
            ["--model", "llama-2-7b", "--hardware", "ascend-910b", "--kv-tier", "0.5:"],
            "has no host memory",
        ),
    ],
)
def test_cli_cost_bad_input_exit_2(args, message):
    r = run("cost", *args)
    assert r.returncode == 2
    assert message in r.stderr


def test_cli_catalog_lists_entries_with_sources():
    r = run("catalog", "hardware", "--json")
    assert r.returncode == 0
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert {"h100-sxm", "u280", "gh200"} <= {x["key"] for x in rows}
    assert all(x["sources"] for x in rows)
    assert run("catalog", "widgets").returncode == 2
