"""Regenerate the bundled packing instances (run from the repository root).

    .venv/bin/python instances/packing/make_instances.py

Sources:
- ``U_1_0010_05_5``, ``class4-n40-m20`` (P||Cmax, known optima 121 and 212) and
  ``N1C1W4_I`` (bin packing, optimum 35) are converted unchanged from the samples in
  ``../shared/data/pcmax_public`` and ``../shared/data/bpplib_public`` (see their READMEs).
- ``azure-conv-200x8`` takes the first 200 requests of the Azure LLM inference trace 2023
  (conversation service, ``../shared/data/azure_llm_inference_2023``, CC-BY 4.0, Patel et al.,
  Splitwise, ISCA 2024) and turns each into a job duration with a stand-in linear time model
  (until the cost model lands):  d = t0 + a * prompt_tokens + b * output_tokens, with
  t0 = 20 ms, a = 0.2 ms/token (prefill) and b = 25 ms/token (decode) — the order of magnitude
  of a 7B model on one A100 at small batch. 8 identical instances (machines).
- ``uniform-3speeds`` and ``unrelated-4x12`` are small hand-made examples of the other
  machine environments (the unrelated one has forbidden pairs, written as null).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from optkit.io import read_instance

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "instances" / "packing"

T0_S, PREFILL_S_PER_TOKEN, DECODE_S_PER_TOKEN = 0.020, 0.0002, 0.025


def dump(name: str, d: dict) -> None:
    (OUT / f"{name}.json").write_text(json.dumps(d, indent=1) + "\n")


def main() -> None:
    for src, name in (
        ("pcmax_public/U_1_0010_05_5.txt", "U_1_0010_05_5"),
        ("pcmax_public/p_cmax-class4-n40-m20-mu100-sigma20-seed5797.txt", "class4-n40-m20"),
        ("bpplib_public/N1C1W4_I.txt", "N1C1W4_I"),
    ):
        inst = read_instance(DATA / src).replace(name=name)
        dump(name, inst.to_dict())
    with (
        DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_conv_until_1855.csv"
    ).open() as f:
        rows = list(csv.DictReader(f))[:200]
    durations = [
        round(
            T0_S
            + PREFILL_S_PER_TOKEN * int(r["ContextTokens"])
            + DECODE_S_PER_TOKEN * int(r["GeneratedTokens"]),
            4,
        )
        for r in rows
    ]
    dump(
        "azure-conv-200x8",
        {
            "problem": "makespan",
            "format_version": 1,
            "name": "azure-conv-200x8",
            "machines": 8,
            "durations": durations,
            "job_ids": [r["TIMESTAMP"] for r in rows],
        },
    )
    dump(
        "uniform-3speeds",
        {
            "problem": "makespan",
            "format_version": 1,
            "name": "uniform-3speeds",
            "speeds": [1.0, 1.5, 2.0],
            "durations": [7, 3, 9, 4, 4, 6, 2, 8, 5, 5, 3, 1],
        },
    )
    dump(
        "unrelated-4x12",
        {
            "problem": "makespan",
            "format_version": 1,
            "name": "unrelated-4x12",
            "times": [
                [4, 7, 3, None, 9, 2, 6, 5, 8, 3, 4, 7],
                [5, 6, 4, 8, None, 3, 5, 6, 7, 4, 5, 6],
                [None, 9, 2, 7, 6, 4, 8, 3, 9, None, 3, 5],
                [6, 5, 5, 6, 7, None, 4, 4, 6, 5, 6, 4],
            ],
        },
    )


if __name__ == "__main__":
    main()
