"""Reading and writing instance and result files.

Every JSON instance carries ``"problem"`` and ``"format_version"``. Errors name
the file, the field path and what was expected (:class:`InputError`); the CLI
turns them into exit code 2. Writes go to a temporary file first and are
renamed into place, so a failure never leaves a half-written file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any, TypeGuard

FORMAT_VERSION = 1


class FieldError(ValueError):
    """An instance field is wrong: ``field`` is a path such as ``times[2][5]``."""

    def __init__(self, field: str, expected: str, got: Any = ...) -> None:
        self.field = field
        self.expected = expected
        self.got = got
        shown = "" if got is ... else f", got {_short(got)}"
        super().__init__(f"field '{field}': expected {expected}{shown}")


class InputError(ValueError):
    """Bad input file: the message names the file, the field and the expectation."""

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


def _short(x: Any, limit: int = 60) -> str:
    s = "null" if x is None else repr(x)
    return s if len(s) <= limit else s[: limit - 3] + "..."


# problem name -> "module:Class" with a ``from_dict`` classmethod; imported lazily.
PROBLEMS: dict[str, str] = {
    "makespan": "optkit.packing.instance:MakespanInstance",
    "binpacking": "optkit.packing.instance:BinPackingInstance",
    "serving": "optkit.serving.instance:ServingInstance",
    "kv_placement": "optkit.kvcache.instance:KvInstance",
}


def instance_class(problem: str) -> Any:
    module, _, name = PROBLEMS[problem].partition(":")
    return getattr(import_module(module), name)


def parse_instance(data: Any, name: str = "", base: Path | None = None) -> Any:
    """Build an instance object from an already-parsed JSON document (``base``: the
    folder that relative file references in the document are resolved against)."""
    if not isinstance(data, dict):
        raise FieldError("<root>", "a JSON object", type(data).__name__)
    problem = data.get("problem")
    if problem not in PROBLEMS:
        raise FieldError("problem", "one of " + ", ".join(sorted(PROBLEMS)), problem)
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise FieldError("format_version", f"{FORMAT_VERSION}", version)
    if name and "name" not in data:
        data = {**data, "name": name}
    cls = instance_class(problem)
    if problem == "kv_placement":  # the only format that may point at other files
        return cls.from_dict(data, base)
    return cls.from_dict(data)


def read_instance(path: str | os.PathLike[str], fmt: str | None = None) -> Any:
    """Read an instance file; ``fmt`` is ``json``, ``bpp`` or ``pcmax`` (None: detect).

    Raises :class:`InputError` naming the file and the field on any problem.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read file ({e.__class__.__name__})") from None
    fmt = fmt or detect_format(text)
    stem = p.stem
    try:
        if fmt == "json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                msg = f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
                raise InputError(p, msg) from None
            return parse_instance(data, stem, p.parent)
        if fmt in READERS:
            return READERS[fmt](text, stem)
    except FieldError as e:
        raise InputError(p, str(e)) from None
    raise InputError(p, f"unknown format {fmt!r}; expected json, bpp or pcmax")


def detect_format(text: str) -> str:
    """``json`` for a JSON document, ``pcmax`` for ``p p_cmax n m`` files, else ``bpp``."""
    head = text.lstrip()[:1]
    if head in "{[":
        return "json"
    if text.lstrip().startswith("p p_cmax") or text.lstrip().startswith("p pcmax"):
        return "pcmax"
    return "bpp"


def _numbers(tokens: list[str], field: str) -> list[int | float]:
    out: list[int | float] = []
    for i, t in enumerate(tokens):
        try:
            out.append(int(t))
        except ValueError:
            try:
                f = float(t)
            except ValueError:
                raise FieldError(f"{field}[{i}]", "a number", t) from None
            out.append(f)
    return out


def read_bpp(text: str, name: str) -> Any:
    """BPPLIB "BPP format": n, capacity, then n weights (one per line)."""
    tokens = text.split()
    if len(tokens) < 2:
        raise FieldError("n", "two header numbers (n, capacity)", len(tokens))
    try:
        n = int(tokens[0])
    except ValueError:
        raise FieldError("n", "an integer item count on line 1", tokens[0]) from None
    (capacity,) = _numbers(tokens[1:2], "capacity")
    sizes = _numbers(tokens[2:], "sizes")
    if len(sizes) != n:
        raise FieldError("sizes", f"{n} weights (line 1 says n = {n})", len(sizes))
    cls = instance_class("binpacking")
    return cls.from_dict({"name": name, "capacity": capacity, "sizes": sizes})


def read_pcmax(text: str, name: str) -> Any:
    """P||Cmax benchmark format: ``p p_cmax n m``, then n processing times ending in 0."""
    lines = text.split("\n", 1)
    head = lines[0].split()
    if len(head) != 4:
        raise FieldError("header", "'p p_cmax <n> <m>'", lines[0])
    try:
        n, m = int(head[2]), int(head[3])
    except ValueError:
        raise FieldError("header", "integers n and m", lines[0]) from None
    times = _numbers(lines[1].split() if len(lines) > 1 else [], "durations")
    if times and times[-1] == 0 and len(times) == n + 1:
        times = times[:-1]
    if len(times) != n:
        raise FieldError("durations", f"{n} processing times (header says n = {n})", len(times))
    cls = instance_class("makespan")
    return cls.from_dict({"name": name, "machines": m, "durations": times})


READERS: dict[str, Callable[[str, str], Any]] = {"bpp": read_bpp, "pcmax": read_pcmax}


def is_int(v: Any) -> TypeGuard[int]:
    """A JSON integer (``true``/``false`` are not numbers)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_real(v: Any) -> TypeGuard[float]:
    """A finite JSON number (``true``/``false`` are not numbers)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON atomically (temporary file + rename)."""
    atomic_write(path, json.dumps(obj, indent=1) + "\n")


def write_csv(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> Path:
    """Write dict rows (the keys of the first are the columns) as CSV, atomically."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, buf.getvalue())
    return Path(path)


def atomic_write(path: str | os.PathLike[str], text: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_plan(path: str | os.PathLike[str]) -> list[int]:
    """A plan file: a JSON list of machine/bin indices, or an object with ``"plan"``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except json.JSONDecodeError as e:
        raise InputError(
            p, f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None
    plan = data.get("plan") if isinstance(data, dict) else data
    if not isinstance(plan, list):
        raise InputError(p, "field 'plan': expected a list of machine/bin indices")
    for i, v in enumerate(plan):
        if not is_int(v):
            raise InputError(p, f"field 'plan[{i}]': expected an integer index, got {_short(v)}")
    return plan
