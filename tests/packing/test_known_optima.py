"""Known optima from public benchmark sets.

- P||Cmax: França et al. (1994) U/NU classes and Lawrinenko-style classes, optima from
  the KIT collection (../shared/data/pcmax_public/README.md).
- Bin packing: BPPLIB (Delorme, Iori & Martello 2018), optima from its solution table
  (../shared/data/bpplib_public/README.md).
The first three also ship in instances/packing/, so they run without ../shared.
"""

import csv
from pathlib import Path

import pytest

from optkit.io import read_instance
from optkit.packing import bound, solve
from optkit.result import Status
from optkit.solvers import SolverOptions

ROOT = Path(__file__).resolve().parents[2]
OPTS = SolverOptions(time_limit_s=20)


@pytest.mark.parametrize(
    ("name", "optimum"),
    [("U_1_0010_05_5", 121), ("class4-n40-m20", 212), ("N1C1W4_I", 35)],
)
def test_bundled_classic_instances(name, optimum):
    inst = read_instance(ROOT / "instances" / "packing" / f"{name}.json")
    res = solve(inst, options=OPTS)
    assert res.status is Status.OPTIMAL and res.objective == optimum


SMALL_PCMAX = [
    "U_1_0010_05_6.txt",
    "NU_1_0010_05_9.txt",
    "NU_2_0010_05_9.txt",
    "p_cmax-class2-n20-m10-minsize20-maxsize100-seed6389.txt",
    "p_cmax-class5-n20-m10-mu100-sigma50-seed23586.txt",
    "p_cmax-class6-n20-m10-minsize20-maxsize80-seed23924.txt",
    "p_cmax-class3-n60-m30-minsize50-maxsize100-seed6738.txt",
]
SMALL_BPP = [
    "N1C1W4_I.txt",
    "BPP_50_50_0.1_0.8_3.txt",
    "Falkenauer_u120_02.txt",
    "Falkenauer_t60_05.txt",
    "N1W2B2R4.txt",
    "Schwerin1_BPP16.txt",
]


def _optima(path: Path, key: str, value: str) -> dict[str, float]:
    with path.open() as f:
        return {r[key]: float(r[value]) for r in csv.DictReader(f) if r[value]}


@pytest.mark.parametrize("fname", SMALL_PCMAX)
def test_pcmax_known_optimum(shared_data, fname):
    opt = _optima(shared_data / "pcmax_public" / "optima.csv", "instance", "optimum")[fname]
    inst = read_instance(shared_data / "pcmax_public" / fname)
    assert bound(inst).value <= opt
    res = solve(inst, options=OPTS)
    assert res.objective == opt and res.status is Status.OPTIMAL


@pytest.mark.parametrize("fname", SMALL_BPP)
def test_bpplib_known_optimum(shared_data, fname):
    opt = _optima(shared_data / "bpplib_public" / "optima.csv", "file", "optimum")[fname]
    inst = read_instance(shared_data / "bpplib_public" / fname)
    assert bound(inst).value <= opt
    res = solve(inst, options=OPTS)
    assert res.objective == opt and res.status is Status.OPTIMAL


def test_truncated_solve_brackets_known_optimum(shared_data):
    """python-mip's check: a time-limited solve keeps objective >= OPT >= bound."""
    fname = "p_cmax-class7-n126-m42-mu504-sigma126-seed4554.txt"
    opt = _optima(shared_data / "pcmax_public" / "optima.csv", "instance", "optimum")[fname]
    res = solve(
        read_instance(shared_data / "pcmax_public" / fname), options=SolverOptions(time_limit_s=3)
    )
    assert res.bound <= opt <= res.objective
