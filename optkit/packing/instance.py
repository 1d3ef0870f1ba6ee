"""Instances of makespan scheduling (P||Cmax, Q||Cmax, R||Cmax) and 1-D bin packing.

Both classes are immutable: numpy arrays are stored read-only, ``replace`` returns
a new object. ``from_dict`` validates a JSON document and raises
:class:`optkit.io.FieldError` naming the offending field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from typing import Any

import numpy as np

from optkit.io import FORMAT_VERSION, FieldError, is_int, is_real

#: Most machines an instance may have (every method allocates per machine).
MAX_MACHINES = 1_000_000


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _is_integral(a: np.ndarray) -> bool:
    finite = a[np.isfinite(a)]
    return bool(np.all(finite == np.round(finite))) and bool(np.all(np.abs(finite) < 2**53))


def unit_scale(values: np.ndarray, max_digits: int = 15) -> tuple[float, bool]:
    """A factor f that puts ``values`` (finite entries) in a unit where solvers work well:
    ``(f, True)`` when ``values * f`` are integers with greatest common divisor 1 (data
    written with at most ``max_digits`` decimals: seconds to the microsecond, bytes in
    multiples of a page), else ``(2**e, False)`` with the largest value in (512, 1024]
    (a power of two: scaling is exact in floating point). The solvers then see the
    same numbers whatever unit the user chose (formulations/makespan.md, "Units").
    """
    finite = np.abs(values[np.isfinite(values)])
    if not len(finite) or float(finite.max()) == 0.0:
        return 1.0, _is_integral(values)
    for k in range(max_digits + 1):
        scaled = finite * 10.0**k
        r = np.round(scaled)
        if float(r.sum()) >= 2**53:
            break
        if np.all(np.abs(scaled - r) <= 1e-9 * scaled):  # relative: 1e-11 is not 0
            g = int(np.gcd.reduce(r.astype(np.int64)))
            return 10.0**k / max(g, 1), True
    return 2.0 ** (10 - math.ceil(math.log2(float(finite.max())))), False


def _number_list(value: Any, fld: str, *, allow_null: bool = False, positive: bool = False) -> list:
    if not isinstance(value, list | tuple):
        raise FieldError(fld, "a list of numbers", type(value).__name__)
    out: list[float | None] = []
    for i, v in enumerate(value):
        if v is None and allow_null:
            out.append(None)
            continue
        if not is_real(v):
            kind = "a finite number" + (" or null" if allow_null else "")
            raise FieldError(f"{fld}[{i}]", kind, v)
        if positive and v <= 0:
            raise FieldError(f"{fld}[{i}]", "a positive number", v)
        if v < 0:
            raise FieldError(f"{fld}[{i}]", "a non-negative number", v)
        out.append(float(v))
    return out


def _ids(value: Any, n: int, fld: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != n:
        raise FieldError(fld, f"a list of {n} ids (one per job)", value)
    return tuple(str(v) for v in value)


@dataclass(frozen=True, eq=False)
class MakespanInstance:
    """Assign n jobs to m machines to minimise the makespan (largest machine finish time).

    Exactly one machine environment is set:

    - identical (``kind == "identical"``): ``durations`` p_j, ``machines`` m;
    - uniform: ``durations`` p_j and ``speeds`` s_i, time of j on i is p_j / s_i;
    - unrelated: ``times`` (m x n), ``inf`` where job j cannot run on machine i.
    """

    machines: int
    durations: np.ndarray | None = None
    speeds: np.ndarray | None = None
    times: np.ndarray | None = None
    name: str = ""
    job_ids: tuple[str, ...] | None = field(default=None, repr=False)

    problem = "makespan"
    sense = "min"

    def __post_init__(self) -> None:
        if self.times is not None:
            t = np.asarray(self.times, dtype=np.float64)
            if t.ndim != 2 or t.shape[0] != self.machines:
                raise ValueError("times must be an m x n matrix with one row per machine.")
            if np.any(np.isnan(t)) or np.any(t < 0):
                raise ValueError("times must be non-negative (inf where a job cannot run).")
            object.__setattr__(self, "times", _frozen(t))
            if self.durations is not None or self.speeds is not None:
                raise ValueError("give either times (unrelated) or durations (+ speeds), not both.")
        else:
            if self.durations is None:
                raise ValueError("durations are required unless times are given.")
            d = np.asarray(self.durations, dtype=np.float64).ravel()
            if np.any(~np.isfinite(d)) or np.any(d < 0):
                raise ValueError("durations must be finite and non-negative.")
            object.__setattr__(self, "durations", _frozen(d))
            if self.speeds is not None:
                s = np.asarray(self.speeds, dtype=np.float64).ravel()
                if len(s) != self.machines or np.any(~np.isfinite(s)) or np.any(s <= 0):
                    raise ValueError("speeds must be m positive finite numbers.")
                object.__setattr__(self, "speeds", _frozen(s))
        if self.machines < 1:
            raise ValueError("machines must be at least 1.")
        if self.job_ids is not None and len(self.job_ids) != self.n:
            raise ValueError("job_ids must have one id per job.")

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def identical(cls, durations: Any, machines: int, name: str = "") -> MakespanInstance:
        return cls(machines=int(machines), durations=np.asarray(durations), name=name)

    @classmethod
    def uniform(cls, durations: Any, speeds: Any, name: str = "") -> MakespanInstance:
        s = np.asarray(speeds, dtype=np.float64)
        return cls(machines=len(s), durations=np.asarray(durations), speeds=s, name=name)

    @classmethod
    def unrelated(cls, times: Any, name: str = "") -> MakespanInstance:
        t = np.asarray(times, dtype=np.float64)
        return cls(machines=t.shape[0], times=t, name=name)

    def replace(self, **changes: Any) -> MakespanInstance:
        return _replace(self, **changes)

    # -- views --------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        if self.times is not None:
            return "unrelated"
        return "uniform" if self.speeds is not None else "identical"

    @property
    def n(self) -> int:
        if self.times is not None:
            return int(self.times.shape[1])
        assert self.durations is not None
        return len(self.durations)

    @property
    def m(self) -> int:
        return self.machines

    @property
    def integral(self) -> bool:
        """True when every job time is an integer (so the optimum is an integer)."""
        if self.kind == "uniform":
            return False
        arr = self.times if self.times is not None else self.durations
        assert arr is not None
        return _is_integral(arr)

    def normal_form(self) -> tuple[float, MakespanInstance]:
        """``(f, instance with every time multiplied by f)`` in the unit of
        :func:`unit_scale` (integers with gcd 1 when the times are decimals); the
        makespan of the scaled instance is f times the makespan of this one."""
        arr = self.times if self.times is not None else self.durations
        assert arr is not None
        f, integral = unit_scale(arr)
        if f == 1.0:
            return f, self
        return f, self.scaled(f, integral)

    def scaled(self, factor: float, integral: bool = False) -> MakespanInstance:
        """The same instance with every time multiplied by ``factor`` (and rounded to
        integers when ``integral``)."""

        def sc(a: np.ndarray) -> np.ndarray:
            out = a * factor
            return np.round(out) if integral else out

        if self.times is not None:
            t = np.where(
                np.isfinite(self.times),
                sc(np.where(np.isfinite(self.times), self.times, 0)),
                np.inf,
            )
            return self.replace(times=t)
        assert self.durations is not None
        return self.replace(durations=sc(self.durations))

    def time_matrix(self) -> np.ndarray:
        """m x n processing times (``inf`` = not allowed). Allocates m*n floats."""
        if self.times is not None:
            return self.times
        assert self.durations is not None
        if self.speeds is None:
            return np.broadcast_to(self.durations, (self.m, self.n))
        return self.durations[None, :] / self.speeds[:, None]

    def min_times(self) -> np.ndarray:
        """Shortest time of each job over its allowed machines (``inf`` if none)."""
        if self.times is not None:
            return self.times.min(axis=0) if self.m else np.full(self.n, np.inf)
        assert self.durations is not None
        if self.speeds is None:
            return self.durations
        return self.durations / float(self.speeds.max())

    def infeasibility(self) -> str:
        """Why no plan exists (a job with no allowed machine), or ``""``."""
        if self.times is not None and self.n:
            bad = np.flatnonzero(~np.isfinite(self.times).any(axis=0))
            if len(bad):
                j = int(bad[0])
                return f"job {self.job_label(j)} has no allowed machine ({len(bad)} such jobs)"
        return ""

    def job_label(self, j: int) -> str:
        return self.job_ids[j] if self.job_ids is not None else str(j)

    # -- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"problem": "makespan", "format_version": FORMAT_VERSION}
        if self.name:
            d["name"] = self.name
        if self.times is not None:
            d["times"] = [[None if math.isinf(v) else _plain(v) for v in row] for row in self.times]
        else:
            assert self.durations is not None
            d["machines"] = self.machines
            d["durations"] = [_plain(v) for v in self.durations]
            if self.speeds is not None:
                d["speeds"] = [_plain(v) for v in self.speeds]
        if self.job_ids is not None:
            d["job_ids"] = list(self.job_ids)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MakespanInstance:
        name = str(d.get("name", ""))
        ids_raw = d.get("job_ids")
        if "times" in d:
            if "durations" in d or "speeds" in d:
                raise FieldError("times", "either 'times' or 'durations' (+ 'speeds'), not both")
            rows = d["times"]
            if not isinstance(rows, list) or not rows:
                raise FieldError("times", "a non-empty list of rows (one per machine)", rows)
            parsed = [_number_list(r, f"times[{i}]", allow_null=True) for i, r in enumerate(rows)]
            n = len(parsed[0])
            for i, r in enumerate(parsed):
                if len(r) != n:
                    raise FieldError(f"times[{i}]", f"{n} entries (as in times[0])", len(r))
            if "machines" in d and d["machines"] != len(parsed):
                raise FieldError(
                    "machines", f"{len(parsed)} (the number of rows of times)", d["machines"]
                )
            t = np.array([[np.inf if v is None else v for v in r] for r in parsed], dtype=float)
            return cls(
                machines=len(parsed),
                times=t.reshape(len(parsed), n),
                name=name,
                job_ids=_ids(ids_raw, n, "job_ids"),
            )
        if "durations" not in d:
            raise FieldError("durations", "a list of job durations (or 'times' for unrelated)")
        dur = _number_list(d["durations"], "durations")
        speeds = None
        if "speeds" in d:
            speeds = _number_list(d["speeds"], "speeds", positive=True)
            if not speeds:
                raise FieldError("speeds", "at least one machine speed", speeds)
            if "machines" in d and d["machines"] != len(speeds):
                raise FieldError("machines", f"{len(speeds)} (the number of speeds)", d["machines"])
            m = len(speeds)
        else:
            raw = d.get("machines")
            if not is_int(raw) or not 1 <= raw <= MAX_MACHINES:
                raise FieldError("machines", f"an integer in [1, {MAX_MACHINES:,}]", raw)
            m = raw
        return cls(
            machines=m,
            durations=np.array(dur, dtype=float),
            speeds=None if speeds is None else np.array(speeds),
            name=name,
            job_ids=_ids(ids_raw, len(dur), "job_ids"),
        )


@dataclass(frozen=True, eq=False)
class BinPackingInstance:
    """Pack items of ``sizes`` w_i into the fewest bins of ``capacity`` W."""

    capacity: float
    sizes: np.ndarray
    name: str = ""
    item_ids: tuple[str, ...] | None = field(default=None, repr=False)

    problem = "binpacking"
    sense = "min"

    def __post_init__(self) -> None:
        s = np.asarray(self.sizes, dtype=np.float64).ravel()
        if np.any(~np.isfinite(s)) or np.any(s <= 0):
            raise ValueError("sizes must be positive finite numbers.")
        if not (math.isfinite(self.capacity) and self.capacity > 0):
            raise ValueError("capacity must be a positive finite number.")
        object.__setattr__(self, "sizes", _frozen(s))
        object.__setattr__(self, "capacity", float(self.capacity))
        if self.item_ids is not None and len(self.item_ids) != len(s):
            raise ValueError("item_ids must have one id per item.")

    @property
    def n(self) -> int:
        return len(self.sizes)

    @property
    def integral(self) -> bool:
        return _is_integral(self.sizes) and float(self.capacity).is_integer()

    def normal_form(self) -> tuple[float, BinPackingInstance]:
        """``(f, the instance with sizes and capacity multiplied by f)`` in the unit of
        :func:`unit_scale`; the number of bins does not change."""
        f, integral = unit_scale(np.append(self.sizes, self.capacity))
        if f == 1.0:
            return f, self
        sizes, cap = self.sizes * f, self.capacity * f
        if integral:
            sizes, cap = np.round(sizes), round(cap)
        return f, self.replace(sizes=sizes, capacity=float(cap))

    def infeasibility(self) -> str:
        big = np.flatnonzero(self.sizes > self.capacity)
        if len(big):
            i = int(big[0])
            return (
                f"item {i} of size {_plain(self.sizes[i])} exceeds the bin capacity "
                f"{_plain(self.capacity)} ({len(big)} such items)"
            )
        return ""

    def replace(self, **changes: Any) -> BinPackingInstance:
        return _replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"problem": "binpacking", "format_version": FORMAT_VERSION}
        if self.name:
            d["name"] = self.name
        d["capacity"] = _plain(self.capacity)
        d["sizes"] = [_plain(v) for v in self.sizes]
        if self.item_ids is not None:
            d["item_ids"] = list(self.item_ids)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BinPackingInstance:
        cap = d.get("capacity")
        if not is_real(cap) or not cap > 0:
            raise FieldError("capacity", "a positive number", cap)
        if "sizes" not in d:
            raise FieldError("sizes", "a list of item sizes")
        sizes = _number_list(d["sizes"], "sizes", positive=True)
        return cls(
            capacity=float(cap),
            sizes=np.array(sizes, dtype=float),
            name=str(d.get("name", "")),
            item_ids=_ids(d.get("item_ids"), len(sizes), "item_ids"),
        )


def _plain(v: float) -> int | float:
    """Write integral floats as JSON integers."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f
