"""Makespan scheduling (P||Cmax, Q||Cmax, R||Cmax) and 1-D bin packing.

Public face: :func:`solve`, :func:`bound`, :func:`check`, the instance classes
and the online :class:`OnlineAssigner`.
"""

from optkit.packing.driver import (
    BINPACKING_METHODS,
    MAKESPAN_METHODS,
    all_bounds,
    bound,
    check,
    methods,
)
from optkit.packing.face import BINPACKING, MAKESPAN
from optkit.packing.instance import BinPackingInstance, MakespanInstance
from optkit.packing.online import OnlineAssigner
from optkit.packing.portfolio import solve

__all__ = [
    "BINPACKING",
    "BINPACKING_METHODS",
    "MAKESPAN",
    "MAKESPAN_METHODS",
    "BinPackingInstance",
    "MakespanInstance",
    "OnlineAssigner",
    "all_bounds",
    "bound",
    "check",
    "methods",
    "solve",
]
