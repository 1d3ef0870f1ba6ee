"""A serving schedule as a plan: every iteration of every client, serialisable.

``Schedule`` is what ``solve`` returns as ``Result.plan`` and what ``solve --out``
writes: per client, its iterations in order, each with its start, the duration the
scheduler claims, the prompt chunks it prefills ``(request, tokens)`` and whether the
running batch decodes in it. ``check`` (``optkit.serving.check``) re-verifies a
schedule from the instance alone, recomputing every duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optkit.io import FieldError, is_int, is_real

KIND = "serving_schedule"


@dataclass(frozen=True)
class Iteration:
    start: float  # seconds
    duration: float  # seconds, as claimed; check() recomputes it
    prefill: tuple[tuple[int, int], ...]  # (request, prompt tokens prefilled now)
    decode: bool  # the running batch decodes in this iteration

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "duration": self.duration,
            "prefill": [[j, x] for j, x in self.prefill],
            "decode": self.decode,
        }


@dataclass(frozen=True)
class Schedule:
    """Per client, its iterations in order."""

    clients: tuple[tuple[Iteration, ...], ...]

    def assignment(self, n: int) -> np.ndarray:
        """The client of each request (-1: never prefilled)."""
        out = np.full(n, -1, dtype=np.int64)
        for i, its in enumerate(self.clients):
            for it in its:
                for j, _ in it.prefill:
                    if 0 <= j < n:
                        out[j] = i
        return out

    @property
    def iterations(self) -> int:
        return sum(len(c) for c in self.clients)

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, "clients": [[it.to_json() for it in c] for c in self.clients]}

    @classmethod
    def from_json(cls, data: Any) -> Schedule:
        """Parse ``to_json()``'s form; raises :class:`FieldError` naming the field."""
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise FieldError("plan.kind", f"{KIND!r} (a serving schedule)", _kind(data))
        clients = data.get("clients")
        if not isinstance(clients, list):
            raise FieldError("plan.clients", "a list of clients' iteration lists", clients)
        out = []
        for i, its in enumerate(clients):
            if not isinstance(its, list):
                raise FieldError(f"plan.clients[{i}]", "a list of iterations", its)
            out.append(tuple(_iteration(it, f"plan.clients[{i}][{k}]") for k, it in enumerate(its)))
        return cls(tuple(out))


def _kind(data: Any) -> Any:
    return data.get("kind") if isinstance(data, dict) else type(data).__name__


def _iteration(d: Any, path: str) -> Iteration:
    if not isinstance(d, dict):
        raise FieldError(path, "an object with start, duration, prefill, decode", d)
    for k in ("start", "duration"):
        if not is_real(d.get(k)) or d[k] < 0:
            raise FieldError(f"{path}.{k}", "a finite time >= 0 (seconds)", d.get(k))
    pre = d.get("prefill", [])
    if not isinstance(pre, list):
        raise FieldError(f"{path}.prefill", "a list of [request, tokens] pairs", pre)
    chunks = []
    for c, pair in enumerate(pre):
        if not (isinstance(pair, list) and len(pair) == 2 and all(is_int(v) for v in pair)):
            raise FieldError(f"{path}.prefill[{c}]", "a [request, tokens] pair of integers", pair)
        chunks.append((int(pair[0]), int(pair[1])))
    decode = d.get("decode", False)
    if not isinstance(decode, bool):
        raise FieldError(f"{path}.decode", "true or false", decode)
    return Iteration(float(d["start"]), float(d["duration"]), tuple(chunks), decode)
