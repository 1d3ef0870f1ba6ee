"""optkit: optimal plans, proven bounds and graded online heuristics for LLM inference systems."""

from optkit.result import Result, Status

__version__ = "0.1.0"
__all__ = ["Result", "Status", "__version__"]
