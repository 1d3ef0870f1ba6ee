"""A KV-placement plan: the moves of every decode step, serialisable.

Step t's moves are ``(promoted, demoted, new_to_hbm)``: unit ids promoted into HBM
and demoted out of it during the step (in force from step t + 1), and whether the
unit written in step t also lands in HBM. Unit ids are creation order
(``KvInstance.creation_index``): prefill units layer by layer, then one per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optkit.io import FieldError, is_int

KIND = "kv_moves"

Step = tuple[np.ndarray, np.ndarray, bool]


@dataclass(frozen=True, eq=False)
class KvPlan:
    steps: tuple[Step, ...]

    @classmethod
    def of(cls, steps: Sequence[tuple[Any, Any, bool]]) -> KvPlan:
        return cls(
            tuple(
                (np.asarray(p, dtype=np.int64), np.asarray(d, dtype=np.int64), bool(w))
                for p, d, w in steps
            )
        )

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Any:
        return iter(self.steps)

    def __getitem__(self, t: int) -> Step:
        return self.steps[t]

    @property
    def moved(self) -> int:
        """Units promoted or demoted over the whole plan."""
        return sum(len(p) + len(d) for p, d, _ in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "steps": [[p.tolist(), d.tolist(), w] for p, d, w in self.steps],
        }

    @classmethod
    def from_json(cls, data: Any) -> KvPlan:
        """Parse ``to_json()``'s form; raises :class:`FieldError` naming the field."""
        if not isinstance(data, dict) or data.get("kind") != KIND:
            got = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise FieldError("plan.kind", f"{KIND!r} (KV moves per step)", got)
        steps = data.get("steps")
        if not isinstance(steps, list):
            raise FieldError("plan.steps", "a list of [promoted, demoted, new_to_hbm]", steps)
        out = []
        for t, st in enumerate(steps):
            path = f"plan.steps[{t}]"
            if not (isinstance(st, list) and len(st) == 3 and isinstance(st[2], bool)):
                raise FieldError(path, "[promoted ids, demoted ids, true|false]", st)
            for k, ids in enumerate(st[:2]):
                if not isinstance(ids, list) or not all(is_int(u) for u in ids):
                    raise FieldError(f"{path}[{k}]", "a list of integer unit ids", ids)
            out.append((st[0], st[1], st[2]))
        return cls.of(out)
