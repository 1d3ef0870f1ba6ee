"""Run the optkit CLI in a subprocess (shared by the CLI tests)."""

import subprocess
import sys


def run(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "optkit.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


#: Keys every ``optkit simulate --json`` row carries (DESIGN.md contract).
SIMULATE_KEYS = {
    "instance",
    "problem",
    "policy",
    "objective",
    "bound",
    "ratio_to_bound",
    "metrics",
    "runtime_s",
}

#: Keys every ``optkit solve --json`` row carries (DESIGN.md contract).
SOLVE_KEYS = {
    "instance",
    "problem",
    "method",
    "solver",
    "status",
    "objective",
    "bound",
    "gap",
    "runtime_s",
    "verified",
}
