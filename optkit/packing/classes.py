"""Generators of the published bin-packing instance classes, so that methods are
measured on fresh instances of each class rather than on a fixed sample.

Each generator takes a ``numpy.random.Generator`` and returns a :class:`Generated`
(sizes, capacity, and the optimum where the construction fixes it). The parameters
are those of the papers; where a paper's generator is not reproduced exactly the
docstring says ``-style`` and what differs.

- Falkenauer (1996) U: W = 150, sizes uniform in [20, 100]; T: W = 1,000, triplets
  that fill a bin exactly (optimum n / 3), each size in [250, 500].
- Scholl, Klein & Jürgens (1997) set 1: W ∈ {100, 120, 150}, sizes uniform in
  [1, 100], [20, 100] or [30, 100]; set 2: W = 1,000, mean size W/3, W/5, W/7 or W/9,
  spread 20%, 50% or 90% around it; set 3: n = 200, W = 100,000, sizes in
  [20,000, 35,000].
- Schwerin & Wäscher (1997): W = 1,000, sizes uniform in [150, 200], n = 100 or 120.
- Wäscher & Gau (1996), CUTGEN1 (Gau & Wäscher 1995): W = 10,000, m types of sizes
  uniform in [v1 W, v2 W] with v1 = 0.1, v2 = 0.8 (their hard class), demands
  drawn so that they sum to about m x d̄.
- Schoenfield-style hard (Schoenfield 2002 built the 28 "hard" instances by search,
  not by a published formula): n in [160, 200], W = 1,000, sizes in [W/20, 3W/4]
  with most mass near W/4..W/2. Measured, these are NOT hard (``auto`` proves all
  of 20 in about 2 s, benchmarks/packing/README.md): a shape, not a Hard28 proxy.
- AI-style (Delorme, Iori & Martello 2016, "augmented IRUP"): bins cut into 3–4
  items each, sizes mostly in (W/5, W/2), W in [2,000, 2,500] for n ≈ 200, so the
  optimum is the number of bins and every bin of an optimal packing is full; many
  distinct sizes (the published AI are built the same way, then perturbed; the
  perturbation is not reproduced).
- GI-style (Gschwind & Irnich 2016): cutting-stock instances with W ∈ {500,000,
  1,500,000}, 125–500 types of sizes uniform in [0.1 W, 0.8 W], demands in [1, 20]
  (their AB/BA classes differ in the size ranges; these are one range).

ANI (augmented non-IRUP) instances need a non-IRUP kernel whose construction is not
at hand; the sample's ANI instances in ``../shared/data/bpplib_public`` stand in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Generated:
    sizes: np.ndarray  # int64
    capacity: int
    optimum: int | None = None  # known by construction
    params: str = ""


def falkenauer_u(rng: np.random.Generator, n: int = 250) -> Generated:
    return Generated(rng.integers(20, 101, n), 150, None, f"n={n}")


def _cut(rng: np.random.Generator, W: int, k: int, lo: int, hi: int) -> list[int] | None:
    """k sizes in [lo, hi] summing to W, or None after a few tries."""
    for _ in range(100):
        head = rng.integers(lo, hi + 1, k - 1)
        last = W - int(head.sum())
        if lo <= last <= hi:
            return [*head.tolist(), last]
    return None


def falkenauer_t(rng: np.random.Generator, n: int = 249) -> Generated:
    """n / 3 triplets filling W = 1,000 exactly: the first in [380, 490], the second in
    [250, (W - first) / 2], the third the rest (all in [250, 500])."""
    W, out = 1000, []
    for _ in range(n // 3):
        a = int(rng.integers(380, 491))
        b = int(rng.integers(250, min((W - a) // 2, 750 - a) + 1))
        out += [a, b, W - a - b]
    return Generated(np.array(out, dtype=np.int64), W, n // 3, f"n={n // 3 * 3}")


def scholl_1(rng: np.random.Generator, n: int = 200, W: int = 120, lo: int = 20) -> Generated:
    return Generated(rng.integers(lo, 101, n), W, None, f"n={n} W={W} sizes=[{lo},100]")


def scholl_2(
    rng: np.random.Generator, n: int = 200, per: int = 5, spread: float = 0.5
) -> Generated:
    W = 1000
    mean = W / per
    lo, hi = max(1, round(mean * (1 - spread))), min(W, round(mean * (1 + spread)))
    return Generated(rng.integers(lo, hi + 1, n), W, None, f"n={n} mean=W/{per} spread={spread}")


def scholl_3(rng: np.random.Generator, n: int = 200) -> Generated:
    return Generated(rng.integers(20_000, 35_001, n), 100_000, None, f"n={n}")


def schwerin(rng: np.random.Generator, n: int = 100) -> Generated:
    return Generated(rng.integers(150, 201, n), 1000, None, f"n={n}")


def waescher(rng: np.random.Generator, m: int = 30, mean_demand: float = 4.0) -> Generated:
    """CUTGEN1: m types in [0.1 W, 0.8 W], demands by cutting m x d̄ at random."""
    W = 10_000
    sizes = np.unique(rng.integers(W // 10, 8 * W // 10 + 1, m))
    total = max(len(sizes), round(len(sizes) * mean_demand))
    r = rng.random(len(sizes)) + 1e-3
    demand = np.maximum(1, np.round(r / r.sum() * total)).astype(np.int64)
    return Generated(np.repeat(sizes, demand), W, None, f"m={len(sizes)} dbar={mean_demand}")


def hard(rng: np.random.Generator, n: int | None = None) -> Generated:
    W = 1000
    n = int(rng.integers(160, 201)) if n is None else n
    mid = rng.integers(W // 4 - 30, W // 2 + 30, n)
    wide = rng.integers(W // 20, 3 * W // 4 + 1, n)
    sizes = np.where(rng.random(n) < 0.8, mid, wide)
    return Generated(sizes.astype(np.int64), W, None, f"n={n}")


def ai(rng: np.random.Generator, n: int = 202) -> Generated:
    """Bins cut into 3 items (4 in a few) in (W/5, W/2): the optimum is the number of
    bins (every bin full; the total size is bins x W, so none fewer)."""
    W = int(rng.integers(2000, 2501))
    out: list[int] = []
    bins = 0
    while len(out) < n:
        k = 4 if rng.random() < 0.04 * (n / 200) else 3
        k = min(k, max(3, n - len(out)))
        lo, hi = (W // 5 + 1, W // 2 - 1) if k == 3 else (W // 8, W // 3)
        got = _cut(rng, W, k, lo, hi)
        if got is not None:
            out += got
            bins += 1
    sizes = np.array(out, dtype=np.int64)
    return Generated(sizes, W, bins, f"n={len(sizes)} W={W}")


def gi(rng: np.random.Generator, types: int = 250, W: int = 1_500_000) -> Generated:
    sizes = np.unique(rng.integers(W // 10, 8 * W // 10 + 1, types))
    demand = rng.integers(1, 21, len(sizes))
    return Generated(np.repeat(sizes, demand), W, None, f"types={len(sizes)} W={W}")


#: class name -> (generator, parameter sets cycled over the seeds)
CLASSES: dict[str, tuple[Callable[..., Generated], list[dict]]] = {
    "falkenauer_u": (falkenauer_u, [{"n": 120}, {"n": 250}, {"n": 500}]),
    "falkenauer_t": (falkenauer_t, [{"n": 120}, {"n": 249}, {"n": 501}]),
    "scholl_1": (
        scholl_1,
        [{"n": n, "W": W, "lo": lo} for n in (50, 200) for W in (100, 150) for lo in (1, 20, 30)],
    ),
    "scholl_2": (
        scholl_2,
        [
            {"n": n, "per": p, "spread": s}
            for n in (100, 200)
            for p in (3, 5, 9)
            for s in (0.2, 0.9)
        ],
    ),
    "scholl_3": (scholl_3, [{}]),
    "schwerin": (schwerin, [{"n": 100}, {"n": 120}]),
    "waescher": (waescher, [{"m": 20}, {"m": 30}, {"m": 40}]),
    "hard": (hard, [{}]),
    "ai": (ai, [{"n": 202}, {"n": 403}]),
    "gi": (gi, [{"types": 125, "W": 500_000}, {"types": 250, "W": 1_500_000}]),
}


def generate(name: str, seed: int) -> Generated:
    """Instance number ``seed`` of class ``name`` (its parameters cycle with the seed)."""
    if name not in CLASSES:
        raise ValueError(f"unknown class {name!r}; expected one of " + ", ".join(CLASSES))
    fn, params = CLASSES[name]
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    out = fn(rng, **params[seed % len(params)])
    sizes = rng.permutation(out.sizes.astype(np.int64))  # no order to lean on
    return Generated(sizes, out.capacity, out.optimum, out.params)
