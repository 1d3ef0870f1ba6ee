"""Real-time multi-model scheduling on a heterogeneous SoC (formulations/realtime.md)."""

from optkit.realtime.instance import JobTable, RealtimeInstance

__all__ = ["JobTable", "RealtimeInstance"]
