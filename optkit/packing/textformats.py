"""The benchmark text formats of packing instances.

``bpp``: BPPLIB's "BPP format" (n, capacity, then n weights, one per line).
``pcmax``: the P||Cmax benchmark format (``p p_cmax n m``, then n processing times,
optionally ending in 0).
"""

from __future__ import annotations

from optkit.io import FieldError
from optkit.packing.instance import BinPackingInstance, MakespanInstance


def is_pcmax(text: str) -> bool:
    head = text.lstrip()
    return head.startswith("p p_cmax") or head.startswith("p pcmax")


def _numbers(tokens: list[str], field: str) -> list[int | float]:
    out: list[int | float] = []
    for i, t in enumerate(tokens):
        try:
            out.append(int(t))
        except ValueError:
            try:
                f = float(t)
            except ValueError:
                raise FieldError(f"{field}[{i}]", "a number", t) from None
            out.append(f)
    return out


def read_bpp(text: str, name: str) -> BinPackingInstance:
    """BPPLIB "BPP format": n, capacity, then n weights (one per line)."""
    tokens = text.split()
    if len(tokens) < 2:
        raise FieldError("n", "two header numbers (n, capacity)", len(tokens))
    try:
        n = int(tokens[0])
    except ValueError:
        raise FieldError("n", "an integer item count on line 1", tokens[0]) from None
    (capacity,) = _numbers(tokens[1:2], "capacity")
    sizes = _numbers(tokens[2:], "sizes")
    if len(sizes) != n:
        raise FieldError("sizes", f"{n} weights (line 1 says n = {n})", len(sizes))
    return BinPackingInstance.from_dict({"name": name, "capacity": capacity, "sizes": sizes})


def read_pcmax(text: str, name: str) -> MakespanInstance:
    """P||Cmax benchmark format: ``p p_cmax n m``, then n processing times ending in 0."""
    lines = text.split("\n", 1)
    head = lines[0].split()
    if len(head) != 4:
        raise FieldError("header", "'p p_cmax <n> <m>'", lines[0])
    try:
        n, m = int(head[2]), int(head[3])
    except ValueError:
        raise FieldError("header", "integers n and m", lines[0]) from None
    times = _numbers(lines[1].split() if len(lines) > 1 else [], "durations")
    if times and times[-1] == 0 and len(times) == n + 1:
        times = times[:-1]
    if len(times) != n:
        raise FieldError("durations", f"{n} processing times (header says n = {n})", len(times))
    return MakespanInstance.from_dict({"name": name, "machines": m, "durations": times})
