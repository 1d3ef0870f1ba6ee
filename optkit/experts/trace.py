"""Routing traces: which experts each token uses at each MoE layer.

:func:`read_routing` reads JSON Lines with one record per (problem, layer, token):
``dataset``, ``problem_id``, ``layer``, ``token_idx``, ``experts`` (the top-k ids,
highest gate first) — the format of the Mixtral-8x7B sample in
``../shared/data/mixtral_moe_routing`` (speculative-moe, patched vLLM).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from optkit.io import FieldError, read_text


def problems_in(path: str | Path) -> list[tuple[str, int]]:
    """The (dataset, problem_id) pairs a routing file holds, in file order."""
    seen: dict[tuple[str, int], None] = {}
    for rec in _records(path):
        seen.setdefault((str(rec.get("dataset")), int(rec.get("problem_id", 0))), None)
    return list(seen)


def read_routing(path: str | Path, dataset: Any = None, problem_id: Any = None) -> np.ndarray:
    """(tokens, layers, k) expert ids of one problem (default: the file's first)."""
    records = _records(path)
    if not records:
        raise FieldError("routing.file", "a routing file with at least one record", str(path))
    first = records[0]
    ds = first.get("dataset") if dataset is None else dataset
    pid = first.get("problem_id") if problem_id is None else problem_id
    rows: dict[tuple[int, int], list[int]] = {}
    for rec in records:
        if rec.get("dataset") != ds or rec.get("problem_id") != pid:
            continue
        try:
            key = (int(rec["token_idx"]), int(rec["layer"]))
            rows[key] = [int(e) for e in rec["experts"]]
        except (KeyError, TypeError, ValueError):
            raise FieldError(
                "routing.file", "records with token_idx, layer, experts", rec
            ) from None
    if not rows:
        raise FieldError("routing.problem_id", f"a problem in the file (dataset {ds!r})", pid)
    tokens = 1 + max(t for t, _ in rows)
    layers = 1 + max(layer for _, layer in rows)
    k = len(next(iter(rows.values())))
    out = np.full((tokens, layers, k), -1, dtype=np.int64)
    for (t, layer), ex in rows.items():
        if len(ex) != k:
            raise FieldError("routing.file", f"{k} experts in every record", ex)
        out[t, layer] = ex
    complete = np.all(out >= 0, axis=(1, 2))
    # keep the longest prefix of tokens routed at every layer
    n = int(np.argmin(complete)) if not complete.all() else tokens
    if n == 0:
        raise FieldError("routing.file", "token 0 routed at every layer", "missing layers")
    return out[:n]


def _records(path: str | Path) -> list[dict[str, Any]]:
    text = read_text(path, "routing file")
    out = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise FieldError(f"routing.file line {i + 1}", "a JSON object", line[:40]) from None
        if not isinstance(rec, dict):
            raise FieldError(f"routing.file line {i + 1}", "a JSON object", line[:40])
        out.append(rec)
    return out
