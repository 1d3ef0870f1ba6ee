"""Prefill/decode iteration scheduling on a fleet of serving instances."""

from optkit.serving.bounds import BOUND_METHODS, bounds, chains, lower_bound, workloads
from optkit.serving.check import check
from optkit.serving.driver import METHODS, metrics, solve
from optkit.serving.face import SERVING
from optkit.serving.heuristics import packing_assignment
from optkit.serving.instance import IterationModel, ServingInstance
from optkit.serving.policies import (
    SCHEDULERS,
    ClientState,
    Fcfs,
    Hybrid,
    IterationPlan,
    Sarathi,
    Scheduler,
)
from optkit.serving.schedule import Iteration, Schedule
from optkit.serving.simulate import SimResult, least_work_dispatch, simulate

__all__ = [
    "BOUND_METHODS",
    "METHODS",
    "SCHEDULERS",
    "SERVING",
    "ClientState",
    "Fcfs",
    "Hybrid",
    "Iteration",
    "IterationModel",
    "IterationPlan",
    "Sarathi",
    "Schedule",
    "Scheduler",
    "ServingInstance",
    "SimResult",
    "bounds",
    "chains",
    "check",
    "least_work_dispatch",
    "lower_bound",
    "metrics",
    "packing_assignment",
    "simulate",
    "solve",
    "workloads",
]
