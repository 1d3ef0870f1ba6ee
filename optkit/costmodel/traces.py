"""Request traces: arrival time, prompt tokens and output tokens per request.

Reads the CSV layouts of the data in ``../shared/data`` (detected from the
header):

- Azure LLM inference trace 2023: ``TIMESTAMP,ContextTokens,GeneratedTokens``;
- ShareGPT and arXiv-summarisation lengths (Sarathi/Vidur):
  ``num_prefill_tokens,num_decode_tokens,...`` (no arrival times: all 0);
- GSM8K token counts: ``index,question_tokens,answer_tokens`` (the answer
  length is the known output length);
- a generic file with ``prompt_tokens,output_tokens[,arrival_s][,id]``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from optkit.io import InputError

# layout name -> (prompt column, output column, arrival column or None, id column or None)
LAYOUTS: dict[str, tuple[str, str, str | None, str | None]] = {
    "azure": ("ContextTokens", "GeneratedTokens", "TIMESTAMP", "TIMESTAMP"),
    "sarathi": ("num_prefill_tokens", "num_decode_tokens", None, None),
    "gsm8k": ("question_tokens", "answer_tokens", None, "index"),
    "generic": ("prompt_tokens", "output_tokens", "arrival_s", "id"),
}


@dataclass(frozen=True)
class Trace:
    name: str
    layout: str
    arrival_s: np.ndarray  # seconds since the first request
    prompt: np.ndarray  # prompt tokens (int)
    output: np.ndarray  # output tokens (int, >= 1)
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.prompt)

    def slice(self, offset: int = 0, limit: int | None = None) -> Trace:
        end = None if limit is None else offset + limit
        sl = slice(offset, end)
        return Trace(
            self.name,
            self.layout,
            self.arrival_s[sl],
            self.prompt[sl],
            self.output[sl],
            self.ids[sl],
        )


def _timestamp(text: str) -> float:
    t = text.strip()
    if "." in t:  # the Azure trace has 7 fractional digits; datetime takes 6
        head, frac = t.split(".", 1)
        t = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(t).timestamp()


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a trace CSV; errors name the file, the row and the column."""
    p = Path(path)
    try:
        with p.open(newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            layout = next(
                (k for k, (a, b, _, _) in LAYOUTS.items() if a in header and b in header), None
            )
            if layout is None:
                expected = "; ".join(f"{k}: {a}, {b}" for k, (a, b, _, _) in LAYOUTS.items())
                raise InputError(
                    p,
                    f"field 'header': expected the columns of a known trace ({expected}), "
                    f"got {header}",
                )
            pc, oc, ac, ic = LAYOUTS[layout]
            prompt, output, arrival, ids = [], [], [], []
            for i, row in enumerate(reader, start=2):
                try:
                    prompt.append(int(row[pc]))
                    output.append(int(row[oc]))
                    arrival.append(
                        (_timestamp(row[ac]) if layout == "azure" else float(row[ac]))
                        if ac and row.get(ac) not in (None, "")
                        else 0.0
                    )
                except (TypeError, ValueError) as exc:
                    raise InputError(
                        p,
                        f"line {i}: field '{pc}'/'{oc}'{'/' + ac if ac else ''}: "
                        f"expected numbers ({exc})",
                    ) from exc
                ids.append(str(row[ic]) if ic and row.get(ic) not in (None, "") else str(i - 2))
    except OSError as exc:
        raise InputError(p, f"cannot read trace: {exc.strerror or exc}") from exc
    if not prompt:
        raise InputError(p, "field 'rows': expected at least one request, got none")
    pr = np.asarray(prompt, dtype=np.int64)
    out = np.asarray(output, dtype=np.int64)
    bad = np.flatnonzero((pr < 0) | (out < 0))
    if len(bad):
        raise InputError(p, f"line {bad[0] + 2}: token counts must be >= 0")
    arr = np.asarray(arrival, dtype=float)
    arr = arr - arr.min()
    return Trace(p.stem, layout, arr, pr, np.maximum(out, 1), tuple(ids))
