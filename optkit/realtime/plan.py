"""A real-time schedule: per job a backend and a start, or dropped (backend -1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optkit.io import FieldError, is_int, is_real

KIND = "realtime_schedule"


@dataclass(frozen=True, eq=False)
class RtPlan:
    backend: np.ndarray  # (n,) int, -1 = dropped
    start: np.ndarray  # (n,) seconds, nan when dropped

    def __post_init__(self) -> None:
        b = np.asarray(self.backend, dtype=np.int64)
        s = np.asarray(self.start, dtype=float)
        object.__setattr__(self, "backend", b)
        object.__setattr__(self, "start", np.where(b < 0, np.nan, s))

    def __len__(self) -> int:
        return len(self.backend)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "backend": self.backend.tolist(),
            "start": [
                None if b < 0 else float(s) for b, s in zip(self.backend, self.start, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> RtPlan:
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise FieldError(
                "plan.kind", f"{KIND!r}", None if not isinstance(data, dict) else data.get("kind")
            )
        b, s = data.get("backend"), data.get("start")
        if not isinstance(b, list) or not all(is_int(x) and x >= -1 for x in b):
            raise FieldError("plan.backend", "a list of backend indices (-1: dropped)", b)
        if not isinstance(s, list) or len(s) != len(b):
            raise FieldError("plan.start", f"a list of {len(b)} start times (null: dropped)", s)
        starts = []
        for i, (x, bb) in enumerate(zip(s, b, strict=True)):
            if bb >= 0 and not is_real(x):
                raise FieldError(f"plan.start[{i}]", "seconds for a job that runs", x)
            starts.append(float("nan") if bb < 0 else float(x))
        return cls(np.asarray(b, dtype=np.int64), np.asarray(starts, dtype=float))
