"""Trace patterns, the CSR form, and the .npz importer's error messages."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optkit.io import FieldError, InputError
from optkit.kvcache.patterns import Pattern, PatternTrace
from optkit.kvcache.trace import (
    CsrTrace,
    read_npz,
    trace_from_dict,
    validate_csr,
    write_npz,
)


@given(
    kind=st.sampled_from(["full", "lambda", "heavy-hitter", "page"]),
    layers=st.integers(1, 3),
    prompt=st.integers(1, 80),
    decode=st.integers(1, 6),
    sparsity=st.floats(0, 0.95),
    window=st.integers(1, 20),
    sinks=st.integers(0, 6),
    page=st.integers(1, 8),
    seed=st.integers(0, 5),
)
def test_pattern_rows_are_valid_and_match_counts(
    kind, layers, prompt, decode, sparsity, window, sinks, page, seed
):
    p = Pattern(kind, sparsity, sinks, window, 0.1, 1.0, page, seed)
    tr = PatternTrace(p, layers, prompt, decode)
    csr = tr.materialize()
    validate_csr(layers, prompt, csr.indptr, csr.indices)  # in [0, c_n), distinct per step
    assert np.array_equal(csr.counts(), tr.counts())
    assert csr.steps_total == layers * decode
    for t in range(csr.steps_total):
        row = csr.row(t)
        c = tr.context(t)
        assert c - 1 in row  # the newest token is always read (window >= 1)
        assert np.all(np.diff(row) > 0)  # sorted: the simulator's gathers stay cache-friendly
        if kind in ("heavy-hitter", "page"):
            assert set(range(min(sinks, c))) <= set(row.tolist())  # sinks always read
        if kind == "full":
            assert len(row) == c


def test_same_seed_same_trace_and_drift_changes_reads():
    a = PatternTrace(Pattern(seed=3), 2, 500, 20).materialize()
    b = PatternTrace(Pattern(seed=3), 2, 500, 20).materialize()
    assert np.array_equal(a.indices, b.indices)
    first, later = set(a.row(0)), set(a.row(2 * 19))
    assert 0.5 < len(first & later) / len(first) < 1.0  # mostly stable, but drifting


def test_sparsity_sets_the_read_share():
    tr = PatternTrace(Pattern("heavy-hitter", sparsity=0.6), 1, 10_000, 3)
    assert tr.counts()[0] == pytest.approx(0.4 * 10_000, rel=0.01)


def test_npz_round_trip(tmp_path):
    tr = PatternTrace(Pattern("page", page=4), 2, 40, 5)
    write_npz(tmp_path / "t.npz", tr)
    back = read_npz(tmp_path / "t.npz")
    csr = tr.materialize()
    assert (back.layers, back.prompt, back.decode) == (2, 40, 5)
    assert np.array_equal(back.indices, csr.indices)
    assert np.array_equal(back.indptr, csr.indptr)


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            {"indptr": [0, 1], "indices": [0], "layers": 1},
            "field 'prompt': expected an array in the archive (missing)",
        ),
        (
            {"indptr": [0, 1, 2], "indices": [0, 5], "layers": 1, "prompt": 4},
            "field 'indices[1]': expected a token index in [0, 5) (step 1 reads the context "
            "before it), got 5",
        ),
        (
            {"indptr": [0, 1, 3], "indices": [0], "layers": 1, "prompt": 4},
            "field 'indptr': expected offsets from 0 to len(indices) = 1, got 3",
        ),
        (
            {"indptr": [0, 1, 2], "indices": [0, 1], "layers": 3, "prompt": 4},
            "field 'indptr': expected a 1-D array of decode·layers + 1 offsets (layers = 3)",
        ),
        (
            {"indptr": [0, 2], "indices": [1, 1], "layers": 1, "prompt": 4},
            "field 'indices (step 0)': expected distinct token indices in a step",
        ),
        (
            {"indptr": [0, 2, 1, 3], "indices": [0, 1, 2], "layers": 1, "prompt": 4},
            "field 'indptr[2]': expected non-decreasing offsets, got 1",
        ),
    ],
)
def test_importer_errors_name_the_field(tmp_path, arrays, message):
    path = _npz(tmp_path, **{k: np.asarray(v) for k, v in arrays.items()})
    with pytest.raises(InputError) as e:
        read_npz(path)
    assert str(e.value).startswith(f"{path}: {message}")


def test_importer_rejects_a_file_that_is_not_npz(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("hello")
    with pytest.raises(InputError, match=r"not a readable \.npz archive"):
        read_npz(path)
    with pytest.raises(InputError, match="file not found"):
        read_npz(tmp_path / "missing.npz")


def test_inline_and_pattern_specs():
    tr = trace_from_dict({"reads": [[0, 1], [2]]}, 1, 3, 2)
    assert isinstance(tr, CsrTrace) and list(tr.row(1)) == [2]
    with pytest.raises(FieldError, match=r"trace.reads \(indices\[1\]\)"):
        trace_from_dict({"reads": [[0], [9]]}, 1, 3, 2)
    with pytest.raises(FieldError, match=r"trace\.sparsity"):
        trace_from_dict({"pattern": "lambda", "sparsity": 1.5}, 1, 3, 2)
    with pytest.raises(FieldError, match=r"trace\.colour"):
        trace_from_dict({"pattern": "lambda", "colour": 1}, 1, 3, 2)
    with pytest.raises(FieldError, match="'trace': expected an object"):
        trace_from_dict([], 1, 3, 2)
