"""Regenerate the bundled packing instances (run from the repository root).

    .venv/bin/python instances/packing/make_instances.py

Sources:
- ``U_1_0010_05_5``, ``class4-n40-m20`` (P||Cmax, known optima 121 and 212) and
  ``N1C1W4_I`` (bin packing, optimum 35) are converted unchanged from the samples in
  ``../shared/data/pcmax_public`` and ``../shared/data/bpplib_public`` (see their READMEs).
- ``azure-conv-200x8`` takes the first 200 requests of the Azure LLM inference trace 2023
  (conversation service, ``../shared/data/azure_llm_inference_2023``, CC-BY 4.0, Patel et al.,
  Splitwise, ISCA 2024). Each job's duration is the request's time from the cost model
  (``optkit.costmodel.request_time``: Llama-2-7B, fp16, one A100 80GB, batch 1, pure
  roofline), the same as ``optkit generate makespan --trace ... --model llama-2-7b
  --hardware a100-80gb --devices 8 --limit 200``. 8 identical instances (machines).
- ``uniform-3speeds`` and ``unrelated-4x12`` are small hand-made examples of the other
  machine environments (the unrelated one has forbidden pairs, written as null).
"""

from __future__ import annotations

import json
from pathlib import Path

from optkit.costmodel import builtin_catalog
from optkit.costmodel.generate import makespan_instance
from optkit.costmodel.traces import read_trace
from optkit.io import read_instance

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "instances" / "packing"


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
    cat = builtin_catalog()
    trace = read_trace(
        DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_conv_until_1855.csv"
    ).slice(0, 200)
    doc = makespan_instance(
        trace, cat.get_model("llama-2-7b"), cat.get_hardware("a100-80gb"), 8, name="azure-conv-200x8"
    )
    dump("azure-conv-200x8", doc)
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
