import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optkit.io import InputError, parse_instance, read_instance
from optkit.packing import BinPackingInstance, MakespanInstance


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_bpp_format(tmp_path):
    inst = read_instance(write(tmp_path, "a.txt", "3\n10\n4\n5\n6\n"))
    assert isinstance(inst, BinPackingInstance)
    assert inst.capacity == 10 and list(inst.sizes) == [4, 5, 6] and inst.name == "a"


def test_reads_pcmax_format(tmp_path):
    inst = read_instance(write(tmp_path, "b.txt", "p p_cmax 3 2\n5 4 3 0\n"))
    assert isinstance(inst, MakespanInstance)
    assert inst.m == 2 and list(inst.durations) == [5, 4, 3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON (line 1, column 2"),
        (
            '{"problem": "nope", "format_version": 1}',
            "field 'problem': expected one of binpacking, expert_cache, kv_placement, "
            "makespan, realtime, serving, got 'nope'",
        ),
        (
            '{"problem": "makespan", "format_version": 7, "machines": 2, "durations": [1]}',
            "field 'format_version': expected the integer 1, got 7",
        ),
        (
            '{"problem": "makespan", "format_version": 1, "machines": 0, "durations": [1]}',
            "field 'machines': expected an integer in [1, 1,000,000], got 0",
        ),
        (
            '{"problem": "makespan", "format_version": 1, "machines": 2, "durations": [1, -3]}',
            "field 'durations[1]': expected a non-negative number, got -3",
        ),
        (
            '{"problem": "makespan", "format_version": 1, "machines": 2, "durations": [1, "x"]}',
            "field 'durations[1]': expected a finite number, got 'x'",
        ),
        (
            '{"problem": "makespan", "format_version": 1, "times": [[1, 2], [3]]}',
            "field 'times[1]': expected 2 entries (as in times[0]), got 1",
        ),
        (
            '{"problem": "makespan", "format_version": 1, "speeds": [1, 0], "durations": [1]}',
            "field 'speeds[1]': expected a positive number, got 0",
        ),
        (
            '{"problem": "binpacking", "format_version": 1, "capacity": -1, "sizes": [1]}',
            "field 'capacity': expected a positive number, got -1",
        ),
        (
            '{"problem": "binpacking", "format_version": 1, "capacity": 5, "sizes": [1, 0]}',
            "field 'sizes[1]': expected a positive number, got 0",
        ),
        ("3\n10\n4\n5\n", "field 'sizes': expected 3 weights (line 1 says n = 3), got 2"),
        ("p p_cmax 3 2\n5 x 3 0\n", "field 'durations[1]': expected a number, got 'x'"),
    ],
)
def test_errors_name_file_field_and_expectation(tmp_path, text, message):
    p = write(tmp_path, "bad.json" if text.startswith("{") else "bad.txt", text)
    with pytest.raises(InputError) as e:
        read_instance(p)
    assert str(e.value) == f"{p}: {message}" or str(e.value).startswith(f"{p}: {message}")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_instance(tmp_path / "nope.json")


def test_packing_plan_errors():
    from optkit.io import FieldError
    from optkit.packing import MAKESPAN

    with pytest.raises(FieldError, match=r"field 'plan\[2\]': expected an integer index"):
        MAKESPAN.plan_from_json([0, 1, "a"])
    assert MAKESPAN.plan_from_json([1, 0]) == (1, 0)


durations = st.lists(
    st.integers(0, 10**6) | st.floats(0, 1e6, allow_nan=False), min_size=0, max_size=30
)


@given(durations, st.integers(1, 9))
def test_identical_round_trip(ds, m):
    inst = MakespanInstance.identical(ds, m, name="x")
    back = parse_instance(json.loads(json.dumps(inst.to_dict())))
    assert (
        back.kind == "identical" and back.m == m and np.array_equal(back.durations, inst.durations)
    )


@given(
    st.lists(
        st.lists(st.none() | st.integers(0, 100), min_size=3, max_size=3), min_size=1, max_size=4
    )
)
def test_unrelated_round_trip(rows):
    inst = MakespanInstance.unrelated([[np.inf if v is None else v for v in r] for r in rows])
    back = parse_instance(json.loads(json.dumps(inst.to_dict())))
    assert back.kind == "unrelated" and np.array_equal(back.times, inst.times)


@given(
    st.lists(st.floats(0.1, 100), min_size=1, max_size=20),
    st.lists(st.floats(0.5, 4), min_size=1, max_size=5),
)
def test_uniform_and_binpacking_round_trip(sizes, speeds):
    inst = MakespanInstance.uniform(sizes, speeds)
    back = parse_instance(json.loads(json.dumps(inst.to_dict())))
    assert np.array_equal(back.speeds, inst.speeds) and np.array_equal(
        back.durations, inst.durations
    )
    b = BinPackingInstance(100.0, np.array(sizes))
    back = parse_instance(json.loads(json.dumps(b.to_dict())))
    assert back.capacity == 100 and np.array_equal(back.sizes, b.sizes)


def test_instances_are_immutable():
    inst = MakespanInstance.identical([3, 2, 1], 2)
    with pytest.raises(ValueError):
        inst.durations[0] = 5
    other = inst.replace(machines=3)
    assert inst.m == 2 and other.m == 3


def test_write_csv_round_trip_and_atomic(tmp_path):
    import csv

    from optkit.io import write_csv

    rows = [{"a": 1, "b": "x,y"}, {"a": 2, "b": ""}]
    path = write_csv(tmp_path / "sub" / "r.csv", rows)
    with path.open(newline="") as f:
        assert list(csv.DictReader(f)) == [{"a": "1", "b": "x,y"}, {"a": "2", "b": ""}]
    assert [p.name for p in path.parent.iterdir()] == ["r.csv"]  # no temporary left
