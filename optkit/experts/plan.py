"""An expert-cache plan: the loads and evictions decided at every step, serialisable.

Stored as two CSR pairs (a replay of millions of steps makes no per-step objects):
step n loads ``load_units[load_off[n]:load_off[n + 1]]`` and evicts
``evict_units[evict_off[n]:evict_off[n + 1]]``."""

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
    load_units: np.ndarray
    load_off: np.ndarray
    evict_units: np.ndarray
    evict_off: np.ndarray

    @classmethod
    def of(cls, steps: Sequence[tuple[Any, Any]]) -> ExpertPlan:
        loads = [np.asarray(a, dtype=np.int64).ravel() for a, _ in steps]
        evicts = [np.asarray(d, dtype=np.int64).ravel() for _, d in steps]

        def csr(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            off = np.zeros(len(parts) + 1, dtype=np.int64)
            off[1:] = np.cumsum([len(x) for x in parts])
            flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            return flat.astype(np.int64), off

        return cls(*csr(loads), *csr(evicts))

    def __len__(self) -> int:
        return len(self.load_off) - 1

    def step(self, n: int) -> Step:
        lo, eo = self.load_off, self.evict_off
        return self.load_units[lo[n] : lo[n + 1]], self.evict_units[eo[n] : eo[n + 1]]

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self.step(n) for n in range(len(self)))

    @property
    def loads(self) -> int:
        return len(self.load_units)

    def loads_per_step(self) -> np.ndarray:
        return np.diff(self.load_off)

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
            if not ok or not all(
                isinstance(x, list) and all(is_int(u) and abs(u) < 2**62 for u in x) for x in st
            ):
                raise FieldError(f"plan.steps[{t}]", "[loads, evictions]: lists of unit ids", st)
            out.append((st[0], st[1]))
        return cls.of(out)
