"""Decode traces: which past tokens each step (decode token n, layer l) reads.

Two kinds, one protocol (``steps()`` yields the token indices read at each step,
in step order t = n·L + l; ``counts()`` gives |R_t|):

- :class:`CsrTrace`: explicit read sets, CSR arrays (``indptr``, ``indices``), one
  row per step. Imported from ``.npz`` (:func:`read_npz`) or written inline in an
  instance file for small cases.
- :class:`~optkit.kvcache.patterns.PatternTrace`: generated on the fly from a pattern
  and a seed (``optkit.kvcache.patterns``).

This module holds the protocol, the explicit storage and its I/O.
"""

from __future__ import annotations

import os
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optkit.io import FieldError, InputError, is_int


class Trace(ABC):
    """What both trace kinds provide."""

    layers: int
    prompt: int
    decode: int

    @property
    def steps_total(self) -> int:
        return self.layers * self.decode

    def context(self, t: int) -> int:
        """Tokens before step t (0-based step index): c_n = P + n."""
        return self.prompt + t // self.layers

    @abstractmethod
    def steps(self) -> Iterator[np.ndarray]:
        """Token indices read at each step, in step order."""

    @abstractmethod
    def counts(self) -> np.ndarray:
        """|R_t| for every step."""

    def materialize(self, progress: Callable[[int], None] | None = None) -> CsrTrace:
        """The trace as explicit CSR arrays; ``progress(t)`` every 1024 steps (may raise
        to stop)."""
        rows = []
        for t, r in enumerate(self.steps()):
            if progress is not None and t % 1024 == 0:
                progress(t)
            rows.append(r)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r) for r in rows])
        indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
        return CsrTrace(
            self.layers, self.prompt, self.decode, indptr, indices.astype(np.int32), trusted=True
        )


@dataclass(frozen=True, eq=False)
class CsrTrace(Trace):
    """Explicit read sets: row t of (indptr, indices) lists the tokens step t reads."""

    layers: int
    prompt: int
    decode: int
    indptr: np.ndarray
    indices: np.ndarray
    #: Rows already validated (a reader that checked them, or a generator): skip the
    #: per-step check, which costs seconds on a 50M-read trace.
    trusted: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if not self.trusted:
            validate_csr(self.layers, self.prompt, self.indptr, self.indices)

    def row(self, t: int) -> np.ndarray:
        return self.indices[self.indptr[t] : self.indptr[t + 1]]

    def steps(self) -> Iterator[np.ndarray]:
        for t in range(self.steps_total):
            yield self.row(t)

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def materialize(self, progress: Callable[[int], None] | None = None) -> CsrTrace:
        return self

    def next_use(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For oracles: (next step reading the same unit, per read entry; first step
        reading each unit, shape (L, P + decode); next step reading each step's new
        unit). Steps are 0-based; ``steps_total`` means never."""
        L, N = self.layers, self.prompt + self.decode
        never = self.steps_total
        nxt = np.empty(len(self.indices), dtype=np.int64)
        seen = np.full((L, N), never, dtype=np.int64)
        new_next = np.empty(self.steps_total, dtype=np.int64)
        for t in range(self.steps_total - 1, -1, -1):
            layer = t % L
            lo, hi = self.indptr[t], self.indptr[t + 1]
            r = self.indices[lo:hi]
            new_next[t] = seen[layer, self.context(t)]
            nxt[lo:hi] = seen[layer, r]
            seen[layer, r] = t
        return nxt, seen, new_next


def validate_csr(layers: int, prompt: int, indptr: np.ndarray, indices: np.ndarray) -> None:
    """Raise :class:`FieldError` naming the array and entry that is wrong."""
    if layers < 1:
        raise FieldError("layers", "an integer >= 1", layers)
    if prompt < 1:
        raise FieldError("prompt", "an integer >= 1", prompt)
    if indptr.ndim != 1 or len(indptr) < 1 or (len(indptr) - 1) % layers:
        raise FieldError(
            "indptr", f"a 1-D array of decode·layers + 1 offsets (layers = {layers})", indptr.shape
        )
    if indptr[0] != 0 or indptr[-1] != len(indices):
        raise FieldError(
            "indptr", f"offsets from 0 to len(indices) = {len(indices)}", int(indptr[-1])
        )
    bad = np.flatnonzero(np.diff(indptr) < 0)
    if len(bad):
        raise FieldError(f"indptr[{bad[0] + 1}]", "non-decreasing offsets", int(indptr[bad[0] + 1]))
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise FieldError("indices", "a 1-D integer array of token indices", str(indices.dtype))
    steps = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    limit = prompt + steps // layers
    wrong = np.flatnonzero((indices < 0) | (indices >= limit))
    if len(wrong):
        e = wrong[0]
        raise FieldError(
            f"indices[{e}]",
            f"a token index in [0, {limit[e]}) (step {steps[e]} reads the context before it)",
            int(indices[e]),
        )
    for t in range(len(indptr) - 1):
        r = indices[indptr[t] : indptr[t + 1]]
        if len(r) > 1 and len(np.unique(r)) != len(r):
            raise FieldError(f"indices (step {t})", "distinct token indices in a step", "repeats")


def read_npz(path: str | os.PathLike[str]) -> CsrTrace:
    """A user trace: ``.npz`` with ``indptr``, ``indices``, ``layers``, ``prompt``."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(p, f"not a readable .npz archive ({e.__class__.__name__}: {e})") from None
    missing = [k for k in ("indptr", "indices", "layers", "prompt") if k not in data]
    if missing:
        raise InputError(p, f"field '{missing[0]}': expected an array in the archive (missing)")
    try:
        layers, prompt = int(data["layers"]), int(data["prompt"])
        indptr = np.asarray(data["indptr"], dtype=np.int64)
        validate_csr(layers, prompt, indptr, data["indices"])
    except FieldError as e:
        raise InputError(p, str(e)) from None
    except (TypeError, ValueError) as e:
        raise InputError(p, f"field 'layers'/'prompt': expected integers ({e})") from None
    decode = (len(indptr) - 1) // layers
    return CsrTrace(layers, prompt, decode, indptr, data["indices"].astype(np.int32), trusted=True)


def write_npz(path: str | os.PathLike[str], trace: Trace) -> None:
    csr = trace.materialize()
    np.savez_compressed(
        path,
        indptr=csr.indptr,
        indices=csr.indices,
        layers=np.int64(csr.layers),
        prompt=np.int64(csr.prompt),
    )


def trace_from_dict(
    d: Any, layers: int, prompt: int, decode: int, base: Path | None = None
) -> Trace:
    """The ``trace`` field of an instance: a pattern, an ``.npz`` file, or inline reads."""
    if not isinstance(d, dict):
        raise FieldError("trace", "an object with 'pattern', 'file' or 'reads'", d)
    if "file" in d:
        if not isinstance(d["file"], str) or not d["file"]:
            raise FieldError("trace.file", "the path of a .npz trace (a string)", d["file"])
        f = Path(d["file"])
        if base is not None and not f.is_absolute():
            f = base / f
        try:
            tr: Trace = read_npz(f)
        except InputError as e:
            raise FieldError("trace.file", f"a readable trace ({e})", str(f)) from None
    elif "reads" in d:
        rows = d["reads"]
        if not isinstance(rows, list) or len(rows) != layers * decode:
            raise FieldError("trace.reads", f"{layers * decode} rows (decode × layers)", rows)
        for i, r in enumerate(rows):
            if not isinstance(r, list) or not all(is_int(x) for x in r):
                raise FieldError(f"trace.reads[{i}]", "a list of token indices", r)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r) for r in rows])
        flat = np.array([x for r in rows for x in r], dtype=np.int64)
        try:
            validate_csr(layers, prompt, indptr, flat)
        except FieldError as e:
            raise FieldError(f"trace.reads ({e.field})", e.expected, e.got) from None
        return CsrTrace(layers, prompt, decode, indptr, flat.astype(np.int32), trusted=True)
    elif "pattern" in d:
        from optkit.kvcache.patterns import Pattern, PatternTrace

        return PatternTrace(Pattern.from_dict(d), layers, prompt, decode)
    else:
        raise FieldError("trace", "an object with 'pattern', 'file' or 'reads'", d)
    if (tr.layers, tr.prompt, tr.decode) != (layers, prompt, decode):
        raise FieldError(
            "trace.file",
            f"a trace with layers={layers}, prompt={prompt}, decode={decode}",
            f"layers={tr.layers}, prompt={tr.prompt}, decode={tr.decode}",
        )
    return tr
