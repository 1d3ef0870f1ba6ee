"""Reading and writing instance and result files.

Every JSON instance carries ``"problem"`` and ``"format_version"``. Errors name
the file, the field path and what was expected (:class:`InputError`); the CLI
turns them into exit code 2. Writes go to a temporary file first and are
renamed into place, so a failure never leaves a half-written file.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


#: Keys every instance file may carry besides its problem's own.
COMMON_KEYS = ("problem", "format_version", "name", "generated_by")


def parse_instance(data: Any, name: str = "", base: Path | None = None) -> Any:
    """Build an instance object from an already-parsed JSON document (``base``: the
    folder that relative file references in the document are resolved against).

    Refuses an unknown top-level key, naming the closest valid one."""
    from optkit import problems  # the registry imports this module

    if not isinstance(data, dict):
        raise FieldError("<root>", "a JSON object", type(data).__name__)
    problem = data.get("problem")
    if not isinstance(problem, str):
        raise FieldError("problem", "one of " + ", ".join(sorted(problems.names())), problem)
    face = problems.get(problem)
    version = data.get("format_version")
    if not is_int(version) or version != FORMAT_VERSION:
        raise FieldError("format_version", f"the integer {FORMAT_VERSION}", version)
    allowed = (*COMMON_KEYS, *face.keys)
    for key in data:
        if key not in allowed:
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise FieldError(key, f"a {problem} field{hint}: one of " + ", ".join(allowed), "")
    if not isinstance(data.get("generated_by", {}), dict):
        raise FieldError(
            "generated_by", "an object (how the instance was made)", data["generated_by"]
        )
    if not isinstance(data.get("name", ""), str):
        raise FieldError("name", "a string", data["name"])
    if name and "name" not in data:
        data = {**data, "name": name}
    return face.from_dict(data, base)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(path: str | os.PathLike[str], text: str) -> Any:
    """Parse JSON strictly: duplicated keys, NaN/Infinity and absurd nesting are
    refused with :class:`InputError` naming the file."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKey as e:
        raise InputError(path, f"key '{e.args[0]}' appears twice in one object") from None
    except json.JSONDecodeError as e:
        msg = f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        raise InputError(path, msg) from None
    except ValueError as e:  # NaN / Infinity
        raise InputError(path, f"not valid JSON ({e})") from None
    except RecursionError:
        raise InputError(path, "not valid JSON (nested too deeply)") from None


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """The text of a regular file, or :class:`InputError` naming it (missing, a folder,
    a FIFO or device, unreadable, a symlink loop, not UTF-8). A UTF-8 byte-order mark
    is dropped."""
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise InputError(p, f"cannot read {what}: {kind}")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(p, f"{what} not found") from None
    except UnicodeDecodeError:
        raise InputError(p, f"cannot read {what}: not UTF-8 text") from None
    except OSError as e:
        raise InputError(p, f"cannot read {what} ({e.strerror or e.__class__.__name__})") from None
    return text.removeprefix("\ufeff")


def read_instance(path: str | os.PathLike[str], fmt: str | None = None) -> Any:
    """Read an instance file: JSON (any registered problem) or a problem's own text
    format (``bpp``, ``pcmax``: see each problem's ``text_formats``); ``fmt`` None detects.

    Raises :class:`InputError` naming the file and the field on any problem.
    """
    from optkit import problems

    p = Path(path)
    text = read_text(p)
    if fmt is None and text.lstrip()[:1] in ("{", "["):
        fmt = "json"
    try:
        if fmt == "json":
            return parse_instance(load_json(p, text), p.stem, p.parent)
        known = ["json"]
        for name in problems.names():
            face = problems.get(name)
            known += face.text_formats
            if (fmt is None and face.sniff(text)) or fmt in face.text_formats:
                return face.read_text(fmt or face.text_formats[0], text, p.stem)
    except FieldError as e:
        raise InputError(p, str(e)) from None
    except (OverflowError, MemoryError) as e:  # numbers or sizes no machine holds
        raise InputError(
            p, f"a number or size too large to hold ({e.__class__.__name__})"
        ) from None
    raise InputError(p, f"unknown format {fmt!r}; expected " + ", ".join(known))


def is_int(v: Any) -> TypeGuard[int]:
    """A JSON integer of magnitude at most :data:`MAX_MAGNITUDE` (``true``/``false`` are
    not numbers)."""
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_MAGNITUDE


#: The largest magnitude a number in an instance may have: sums of many of them stay
#: finite and exact enough in float64, and every back-end can represent them.
MAX_MAGNITUDE = 1e18


def is_real(v: Any) -> TypeGuard[float]:
    """A finite JSON number of magnitude at most :data:`MAX_MAGNITUDE` (``true``/``false``
    are not numbers; an integer too large for a float is not one either)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        x = float(v)
    except OverflowError:
        return False
    return math.isfinite(x) and abs(x) <= MAX_MAGNITUDE


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
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block
    ends, removed if it fails, so nothing is ever half-written. Only a regular file (or a
    new one) is replaced: a folder, a device such as /dev/null or a FIFO is refused, as
    is a folder that cannot be written; :class:`InputError` names the path."""
    p = Path(path)
    try:
        if p.exists() and not stat.S_ISREG(p.stat().st_mode):
            raise InputError(p, "cannot write here: not a regular file (refusing to replace it)")
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=suffix)
        os.close(fd)
        os.chmod(name, 0o666 & ~_umask())  # what open() would give, not mkstemp's 0600
    except OSError as e:
        raise InputError(p, f"cannot write ({e.strerror or e.__class__.__name__})") from None
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, p)
    except OSError as e:
        raise InputError(p, f"cannot write ({e.strerror or e.__class__.__name__})") from None
    finally:
        tmp.unlink(missing_ok=True)
