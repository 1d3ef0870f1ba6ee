"""An expert-cache plan: the loads and evictions decided at every step, serialisable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optkit.io import FieldError, is_int

KIND = "expert_moves"

Step = tuple[np.ndarray, np.ndarray]  # (loads, evictions), unit ids l·E + e


@dataclass(frozen=True, eq=False)
class ExpertPlan:
    steps: tuple[Step, ...]

    @classmethod
    def of(cls, steps: Sequence[tuple[Any, Any]]) -> ExpertPlan:
        return cls(
            tuple((np.asarray(a, dtype=np.int64), np.asarray(d, dtype=np.int64)) for a, d in steps)
        )

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def loads(self) -> int:
        return sum(len(a) for a, _ in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, "steps": [[a.tolist(), d.tolist()] for a, d in self.steps]}

    @classmethod
    def from_json(cls, data: Any) -> ExpertPlan:
        if not isinstance(data, dict) or data.get("kind") != KIND:
            got = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise FieldError("plan.kind", f"{KIND!r} (loads and evictions per step)", got)
        steps = data.get("steps")
        if not isinstance(steps, list):
            raise FieldError("plan.steps", "a list of [loads, evictions]", steps)
        out = []
        for t, st in enumerate(steps):
            ok = isinstance(st, list) and len(st) == 2
            if not ok or not all(isinstance(x, list) and all(is_int(u) for u in x) for x in st):
                raise FieldError(f"plan.steps[{t}]", "[loads, evictions]: lists of unit ids", st)
            out.append((st[0], st[1]))
        return cls.of(out)
