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


class Refused(ValueError):
    """A request optkit declines, not a bug: a method, policy or back-end the problem
    does not offer, or a model above a size limit. The message names the option or
    the limit and what to do instead; the CLI exits 2."""


def _short(x: Any, limit: int = 60) -> str:
    s = "null" if x is None else repr(x)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def parse_instance(data: Any, name: str = "", base: Path | None = None) -> Any:
    """Build an instance object from an already-parsed JSON document (``base``: the
    folder that relative file references in the document are resolved against)."""
    if not isinstance(data, dict):
        raise FieldError("<root>", "a JSON object", type(data).__name__)
    from optkit import problems  # the registry imports this module

    face = problems.get(str(data.get("problem")))
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise FieldError("format_version", f"{FORMAT_VERSION}", version)
    if name and "name" not in data:
        data = {**data, "name": name}
    return face.from_dict(data, base)


def read_instance(path: str | os.PathLike[str], fmt: str | None = None) -> Any:
    """Read an instance file: JSON (any registered problem) or a problem's own text
    format (``bpp``, ``pcmax``: see each problem's ``text_formats``); ``fmt`` None detects.

    Raises :class:`InputError` naming the file and the field on any problem.
    """
    from optkit import problems

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read file ({e.__class__.__name__})") from None
    if fmt is None and text.lstrip()[:1] in ("{", "["):
        fmt = "json"
    try:
        if fmt == "json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                msg = f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
                raise InputError(p, msg) from None
            return parse_instance(data, p.stem, p.parent)
        known = ["json"]
        for name in problems.names():
            face = problems.get(name)
            known += face.text_formats
            if (fmt is None and face.sniff(text)) or fmt in face.text_formats:
                return face.read_text(fmt or face.text_formats[0], text, p.stem)
    except FieldError as e:
        raise InputError(p, str(e)) from None
    raise InputError(p, f"unknown format {fmt!r}; expected " + ", ".join(known))


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
