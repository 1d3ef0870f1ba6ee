"""Every bad input answered: exit 0 or 2, never 1, never a traceback, and a message that
names the file and the field. Run in-process (``optkit.cli.run``), so hundreds of cases
take seconds. The named cases are the regressions of the reliability issue."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optkit.cli import run
from tests.conftest import ROOT

SMALL = {
    "makespan": ROOT / "instances/packing/unrelated-4x12.json",
    "uniform": ROOT / "instances/packing/uniform-3speeds.json",
    "binpacking": ROOT / "instances/packing/N1C1W4_I.json",
    "serving": ROOT / "instances/serving/gsm8k20-llama2-7b-a100x2.json",
    "kv_placement": ROOT / "instances/kvcache/gh200-llama3.1-8b-tiny.json",
    "expert_cache": ROOT / "instances/experts/humaneval0-mixtral-rtx4090-c25.json",
    "realtime": ROOT / "instances/realtime/ar-gaming-ryzen-ai-llama3.2-1b-e0.1.json",
}


def _rt(**task0) -> dict:
    """The realtime instance with its first task changed."""
    d = json.loads(SMALL["realtime"].read_text())
    d["tasks"][0] = {**d["tasks"][0], **task0}
    return d


def cli(capsys, *args) -> tuple[int, str]:
    code = run([str(a) for a in args])
    return code, capsys.readouterr().err


def write(tmp: Path, name: str, doc) -> Path:
    p = tmp / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def doc(kind: str) -> dict:
    return json.loads(SMALL[kind].read_text())


# --- named regressions -------------------------------------------------------------------

BAD_DOCS = [
    ("huge integer", {**doc("makespan"), "times": [[10**400] * 12] * 4}, "times"),
    (
        "1e308",
        {"problem": "makespan", "format_version": 1, "machines": 2, "durations": [1e308]},
        "durations",
    ),
    (
        "10**12 machines",
        {"problem": "makespan", "format_version": 1, "machines": 10**12, "durations": [1]},
        "machines",
    ),
    (
        "huge capacity",
        {"problem": "binpacking", "format_version": 1, "capacity": 10**400, "sizes": [1]},
        "capacity",
    ),
    ("problem is a list", {"problem": ["makespan"], "format_version": 1}, "problem"),
    ("format_version true", {**doc("binpacking"), "format_version": True}, "format_version"),
    ("format_version 1.0", {**doc("binpacking"), "format_version": 1.0}, "format_version"),
    (
        "misspelled key",
        {"problem": "makespan", "format_version": 1, "speed": [1, 2], "durations": [1]},
        "did you mean 'speeds'",
    ),
    (
        "prompt 2^62",
        {**doc("serving"), "prompt": [2**62, *doc("serving")["prompt"][1:]]},
        "prompt[0]",
    ),
    ("clients 10^12", {**doc("serving"), "clients": 10**12}, "clients"),
    ("kv trace path a number", {**doc("kv_placement"), "trace": {"file": 3}}, "trace.file"),
    ("kv trace path null", {**doc("kv_placement"), "trace": {"file": None}}, "trace.file"),
    ("kv decode 10^9", {**doc("kv_placement"), "decode": 10**9}, "decode"),
    ("realtime negative rate", _rt(fps=-45), "tasks[0].fps"),
    (
        "realtime cycle",
        {
            **doc("realtime"),
            "tasks": [
                {"name": "a", "model": "HT_hand_graph_cnn_half", "fps": 30, "after": "b"},
                {"name": "b", "model": "HT_hand_graph_cnn_half", "fps": 30, "after": "a"},
            ],
        },
        "no cycle of dependencies",
    ),
    ("realtime unknown upstream", _rt(after="nope"), "tasks[0].after"),
    ("realtime jitter past deadline", _rt(jitter=1.0), "tasks[0].jitter"),
    (
        "realtime model fits no memory",
        {
            **doc("realtime"),
            "networks": {
                **doc("realtime")["networks"],
                "HT_hand_graph_cnn_half": {
                    **doc("realtime")["networks"]["HT_hand_graph_cnn_half"],
                    "weight_bytes": 1e15,
                },
            },
        },
        "tasks[0].model",
    ),
    (
        "realtime unknown llm",
        {**doc("realtime"), "llm": [{**doc("realtime")["llm"][0], "model": "gpt-9"}]},
        "llm[0].model",
    ),
]


@pytest.mark.parametrize(("case", "document", "field"), BAD_DOCS, ids=[c[0] for c in BAD_DOCS])
def test_bad_documents_exit_2_naming_the_field(case, document, field, tmp_path, capsys):
    f = write(tmp_path, "bad.json", document)
    for cmd in ("solve", "bound"):
        code, err = cli(capsys, cmd, f, "--time-limit", "2")
        assert code == 2, (case, err)
        assert str(f) in err and field in err and "Traceback" not in err


RAW_TEXTS = [
    (
        "duplicated key",
        '{"problem": "makespan", "format_version": 1, "machines": 2, "machines": 3, '
        '"durations": [1]}',
        "appears twice",
    ),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (
        "NaN",
        '{"problem": "makespan", "format_version": 1, "machines": 2, "durations": [NaN]}',
        "NaN",
    ),
    ("pcmax n disagrees", "p p_cmax 3 2\n5 4\n", "durations"),
    ("empty bpp", "", "field 'n'"),
]


@pytest.mark.parametrize(("case", "text", "message"), RAW_TEXTS, ids=[c[0] for c in RAW_TEXTS])
def test_bad_texts_exit_2(case, text, message, tmp_path, capsys):
    f = write(tmp_path, "bad.txt", text)
    code, err = cli(capsys, "solve", f)
    assert code == 2 and str(f) in err and message in err, (case, err)


def test_bom_is_read(tmp_path, capsys):
    f = write(tmp_path, "bom.json", "\ufeff" + SMALL["binpacking"].read_text())
    code, err = cli(capsys, "bound", f, "--json")
    assert code == 0, err
    p = write(tmp_path, "bom.txt", "\ufeffp p_cmax 2 2\n3 4 0\n")
    assert cli(capsys, "bound", p)[0] == 0


def test_paths_that_are_not_files(tmp_path, capsys):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    for p, msg in ((fifo, "not a regular file"), (loop, "cannot read"), (tmp_path, "a folder")):
        code, err = cli(capsys, "solve", p)
        assert code == 2 and str(p) in err and msg in err, err
    npz = tmp_path / "t.npz"
    npz.write_bytes(b"PK\x03\x04 truncated")
    code, err = cli(
        capsys,
        "solve",
        write(tmp_path, "kv.json", {**doc("kv_placement"), "trace": {"file": str(npz)}}),
    )
    assert code == 2 and "trace.file" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    code, err = cli(capsys, "solve", SMALL["binpacking"], "--out", ro)
    assert code == 2 and str(ro) in err


def test_outputs_never_replace_what_is_not_a_file(tmp_path, capsys):
    (tmp_path / "N1C1W4_I.result.json").mkdir()  # a folder where the result would go
    code, err = cli(capsys, "solve", SMALL["binpacking"], "--out", tmp_path)
    assert code == 2 and "not a regular file" in err
    code, err = cli(capsys, "simulate", SMALL["serving"], "--plot", "/dev/null")
    assert code == 2 and "/dev/null" in err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    code, err = cli(capsys, "export", SMALL["binpacking"], "--out", tmp_path)
    assert code == 2


FLAGS = [
    (["solve", SMALL["binpacking"], "--seed", "-1"], "seed"),
    (
        ["solve", SMALL["binpacking"], "--method", "milp", "--solver", "cpsat"],
        "does not run method 'milp'",
    ),
    (["solve", SMALL["binpacking"], "--scheduler", "not-an-address"], "--scheduler"),
    (["solve", SMALL["binpacking"], "--workers", "0"], "--workers"),
    (["solve", SMALL["binpacking"], "--workers", "-2"], "--workers"),
    (["bound", SMALL["binpacking"], "--time-limit", "-5"], "time limit"),
    (["bound", SMALL["binpacking"], "--time-limit", "nan"], "time limit"),
    (["solve", SMALL["binpacking"], "--time-limit", "inf"], "time limit"),
    (
        [
            "generate",
            "kv",
            "--model",
            "llama-3.1-8b",
            "--hardware",
            "gh200",
            "--prompt",
            "10",
            "--decode",
            "2",
            "--hbm-gb",
            "nan",
        ],
        "hbm_gb",
    ),
    (["solve", SMALL["kv_placement"], "--method", "page-99999999999"], "page-99999999999"),
]


@pytest.mark.parametrize(
    ("args", "message"), FLAGS, ids=[" ".join(map(str, a[2:])) or a[0] for a, _ in FLAGS]
)
def test_bad_flags_exit_2(args, message, capsys):
    code, err = cli(capsys, *args)
    assert code == 2 and message in err, err


def test_policy_with_a_huge_page_runs(capsys):
    code, err = cli(
        capsys, "simulate", SMALL["kv_placement"], "--policy", "page-99999999999", "--json"
    )
    assert code == 0, err


def test_check_with_a_huge_bin_id(tmp_path, capsys):
    n = json.loads(SMALL["binpacking"].read_text())["sizes"]
    plan = write(tmp_path, "plan.json", [10**12] * len(n))
    code, err = cli(capsys, "check", SMALL["binpacking"], plan)
    assert code == 2 and "capacity" in err


def test_empty_durations_are_refused(tmp_path, capsys):
    f = write(
        tmp_path,
        "e.json",
        {"problem": "makespan", "format_version": 1, "machines": 2, "durations": []},
    )
    code, err = cli(capsys, "bound", f)
    assert code in (0, 2) and "Traceback" not in err and "internal error" not in err


# --- generated cases ----------------------------------------------------------------------

weird = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([0, -1, 1, 2**53, 10**19, 10**400])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw):
    """A bundled small instance with one field (or one list entry) replaced, dropped, or
    an extra key added."""
    kind = draw(st.sampled_from(sorted(SMALL)))
    d = doc(kind)
    key = draw(st.sampled_from(sorted(k for k in d if k not in ("problem",))))
    action = draw(st.sampled_from(["replace", "drop", "entry", "extra"]))
    if action == "replace":
        d[key] = draw(weird)
    elif action == "drop":
        d.pop(key)
    elif action == "entry" and isinstance(d[key], list) and d[key]:
        i = draw(st.integers(0, len(d[key]) - 1))
        d[key][i] = draw(weird)
    else:
        d[draw(st.text(min_size=1, max_size=6))] = draw(weird)
    return kind, d


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mutated(), cmd=st.sampled_from(["bound", "bound", "bound", "solve", "simulate"]))
def test_mutated_instances_exit_0_or_2(case, cmd, tmp_path_factory, capsys):
    _kind, document = case
    f = write(tmp_path_factory.mktemp("fuzz"), "i.json", document)
    extra = ["--method", "cheap"] if cmd == "bound" else []
    code, err = cli(capsys, cmd, f, *extra, *(["--time-limit", "1"] if cmd != "simulate" else []))
    assert code in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err
    if code == 2 and not (cmd == "simulate" and "no online policies" in err):
        assert err.startswith(f"error: {f}") and "field" in err, err


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_random_text_exits_2_or_reads(text, tmp_path_factory, capsys):
    f = write(tmp_path_factory.mktemp("fuzz"), "i.txt", text)
    code, err = cli(capsys, "bound", f, "--method", "cheap")
    assert code in (0, 2) and "internal error" not in err, err


def test_numpy_is_quiet():
    # a RuntimeWarning from a bound on an odd instance would be a silent wrong number
    with np.errstate(all="raise"):
        assert run(["bound", str(SMALL["uniform"]), "--json"]) == 0
