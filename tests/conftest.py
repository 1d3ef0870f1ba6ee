"""Shared fixtures; ``--solvers`` runs every solver-parametrised test once per back-end.

pytest --solvers highs,cbc       # only these back-ends
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from optkit.solvers import ALL_BACKENDS, MILP_BACKENDS, available

settings.register_profile(
    "ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
#: for tests that read ../shared/data (a checkout without it skips them)
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--solvers",
        default=",".join(ALL_BACKENDS),
        help="comma-separated back-ends to test (default: all available)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    wanted = [s for s in metafunc.config.getoption("--solvers").split(",") if s]
    if "milp_solver" in metafunc.fixturenames:
        names = [s for s in wanted if s in MILP_BACKENDS]
        metafunc.parametrize(
            "milp_solver",
            [
                pytest.param(
                    s, marks=pytest.mark.skipif(s not in available(), reason=f"{s} missing")
                )
                for s in names
            ],
        )
    if "solver" in metafunc.fixturenames:
        metafunc.parametrize(
            "solver",
            [
                pytest.param(
                    s, marks=pytest.mark.skipif(s not in available(), reason=f"{s} missing")
                )
                for s in wanted
            ],
        )


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED
