"""Online assignment of jobs that arrive one at a time (list scheduling and a target rule).

Usable from a scheduler loop without the CLI::

    a = OnlineAssigner(machines=8)
    for p in estimated_durations:
        machine = a.assign(p)

Rules (formulations/makespan.md, "Online"):

- ``least-loaded`` — Graham's list scheduling, (2 - 1/m)-competitive; O(log m)
  per job with a heap. With ``speeds`` (uniform machines) it becomes
  earliest completion, O(m) per job.
- ``target`` — semi-online with a target makespan T (e.g. ``(1 + eps)`` times
  the offline lower bound of the expected workload): best fit, i.e. the most
  loaded machine that stays within T after the job; if none, the least loaded
  one. It keeps light machines free for late long jobs. Its makespan is at most
  max(T, (2 - 1/m) OPT) for any T (proof in the formulation file).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence

import numpy as np

RULES = ("least-loaded", "target")


class OnlineAssigner:
    """Assign each arriving job to a machine immediately and irrevocably."""

    def __init__(
        self,
        machines: int,
        rule: str = "least-loaded",
        target: float | None = None,
        speeds: Sequence[float] | None = None,
    ) -> None:
        if machines < 1:
            raise ValueError("machines must be at least 1.")
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
        if rule == "target" and (target is None or not target > 0):
            raise ValueError("rule 'target' needs a positive target makespan.")
        if speeds is not None:
            if len(speeds) != machines or min(speeds) <= 0:
                raise ValueError("speeds must be one positive number per machine.")
            if rule != "least-loaded":
                raise ValueError("uniform machines (speeds) support the 'least-loaded' rule only.")
        self.m = machines
        self.rule = rule
        self.target = float(target) if target is not None else None
        self._speeds = None if speeds is None else np.asarray(speeds, dtype=np.float64)
        # One structure of (load, machine) pairs, shaped for the rule: a heap for
        # least-loaded, a sorted list for best fit (both start as the sorted zeros);
        # uniform machines keep a load vector instead.
        self._keys = [(0.0, i) for i in range(machines)]
        self._uloads = np.zeros(machines)
        self.assigned = 0

    def assign(self, p: float) -> int:
        """Machine for a job of duration ``p`` (work units for uniform machines)."""
        if not p >= 0:
            raise ValueError("a job duration must be non-negative.")
        self.assigned += 1
        if self._speeds is not None:
            finish = self._uloads + p / self._speeds
            i = int(np.argmin(finish))
            self._uloads[i] = finish[i]
            return i
        if self.rule == "least-loaded":
            load, i = self._keys[0]
            heapq.heapreplace(self._keys, (load + p, i))
            return i
        assert self.target is not None
        keys = self._keys
        # Most loaded machine with load + p <= T: the predecessor of (T - p, +inf).
        pos = bisect.bisect_right(keys, (self.target - p, self.m)) - 1
        if pos < 0:
            pos = 0  # nothing fits: the least loaded machine
        load, i = keys.pop(pos)
        bisect.insort(keys, (load + p, i))
        return i

    def assign_many(self, durations: Sequence[float]) -> np.ndarray:
        """Assign jobs in the given order; returns the machine of each."""
        return np.fromiter(
            (self.assign(float(p)) for p in durations), dtype=np.int64, count=len(durations)
        )

    @property
    def loads(self) -> np.ndarray:
        """Current finish time of each machine."""
        if self._speeds is not None:
            return self._uloads.copy()
        out = np.zeros(self.m)
        for load, i in self._keys:
            out[i] = load
        return out

    @property
    def makespan(self) -> float:
        if self._speeds is not None:
            return float(self._uloads.max())
        return max(load for load, _ in self._keys)
