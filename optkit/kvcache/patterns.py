"""Synthetic decode traces generated on the fly from a pattern and a seed.

:class:`PatternTrace` yields the read sets of a :class:`Pattern` (full, Λ-shaped,
heavy-hitter with drifting Zipf popularity, Quest-like pages), so a 10k-token ×
32-layer trace never has to be stored. formulations/kv_placement.md, "Trace
patterns", defines the generators.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from optkit.io import FieldError, is_int, is_real
from optkit.kvcache.trace import Trace

PATTERNS = ("full", "lambda", "heavy-hitter", "page")


@dataclass(frozen=True)
class Pattern:
    """A synthetic sparse-attention pattern (see the module doc)."""

    kind: str = "heavy-hitter"
    sparsity: float = 0.6  # share of the context NOT read at a step
    sinks: int = 4  # first tokens always read
    window: int = 64  # last tokens always read
    drift: float = 0.02  # share of the heavy set replaced per decode step
    alpha: float = 1.0  # Zipf exponent of token popularity
    page: int = 16  # tokens per page (kind "page")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in PATTERNS:
            raise FieldError("trace.pattern", "one of " + ", ".join(PATTERNS), self.kind)
        checks = (
            ("sparsity", 0 <= self.sparsity < 1, "a number in [0, 1)"),
            ("sinks", self.sinks >= 0, "an integer >= 0"),
            ("window", self.window >= 1, "an integer >= 1"),
            ("drift", 0 <= self.drift <= 1, "a number in [0, 1]"),
            ("alpha", self.alpha >= 0, "a number >= 0"),
            ("page", self.page >= 1, "an integer >= 1"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise FieldError(f"trace.{name}", expected, getattr(self, name))

    @property
    def block(self) -> int:
        """Selection granularity in tokens (1 except for page patterns)."""
        return self.page if self.kind == "page" else 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pattern"] = d.pop("kind")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pattern:
        kinds = {"pattern": str, "sparsity": float, "drift": float, "alpha": float}
        vals: dict[str, Any] = {}
        for key, v in d.items():
            if key not in {"pattern", *[f for f in cls.__dataclass_fields__ if f != "kind"]}:
                raise FieldError(f"trace.{key}", "a pattern parameter (" + _FIELDS + ")", v)
            want = kinds.get(key, int)
            ok = isinstance(v, str) if want is str else (is_int if want is int else is_real)(v)
            if not ok:
                raise FieldError(f"trace.{key}", "a string" if want is str else want.__name__, v)
            vals["kind" if key == "pattern" else key] = v
        return cls(**vals)


_FIELDS = "pattern, sparsity, sinks, window, drift, alpha, page, seed"


@dataclass(frozen=True, eq=False)
class PatternTrace(Trace):
    """A generated trace; the same seed always gives the same read sets."""

    pattern: Pattern
    layers: int
    prompt: int
    decode: int

    def _shape(self, c: int) -> tuple[int, int, int, int]:
        """(blocks, sink blocks, window blocks, heavy blocks) at context c."""
        p, g = self.pattern, self.pattern.block
        nb = -(-c // g)
        budget = c if p.kind == "full" else math.ceil((1 - p.sparsity) * c)
        sb = min(nb, -(-p.sinks // g))
        wb = min(nb - sb, max(1, -(-p.window // g)))
        hb = max(0, min(nb - sb - wb, -(-budget // g) - sb - wb))
        return nb, sb, wb, hb

    def counts(self) -> np.ndarray:
        out = np.empty(self.steps_total, dtype=np.int64)
        g = self.pattern.block
        for n in range(self.decode):
            c = self.prompt + n
            if self.pattern.kind == "full":
                k = c
            elif self.pattern.kind == "lambda":
                k = min(c, max(math.ceil((1 - self.pattern.sparsity) * c), self.pattern.sinks + 1))
            else:
                nb, sb, wb, hb = self._shape(c)
                k = (sb + wb + hb) * g - (nb * g - c)  # the last block (in the window) is partial
            out[n * self.layers : (n + 1) * self.layers] = k
        return out

    def steps(self) -> Iterator[np.ndarray]:
        p = self.pattern
        if p.kind == "full":
            for t in range(self.steps_total):
                yield np.arange(self.context(t), dtype=np.intp)
            return
        if p.kind == "lambda":
            for t in range(self.steps_total):
                c = self.context(t)
                b = min(c, max(math.ceil((1 - p.sparsity) * c), p.sinks + 1))
                s = min(p.sinks, b)
                yield np.concatenate(
                    [np.arange(s, dtype=np.intp), np.arange(c - (b - s), c, dtype=np.intp)]
                )
            return
        yield from self._heavy()

    def _heavy(self) -> Iterator[np.ndarray]:
        """Heavy-hitter and page top-k read sets, O(churn + blocks) per step.

        Per layer, ``rd`` marks the blocks read (sinks, heavy set, window): a step
        changes it by the drifted-out and drawn-in heavy blocks and the window's
        advance, and the read set is its non-zeros (sorted, so the simulator's
        gathers and scatters stay cache-friendly). The heavy set of the previous
        step is the middle of its read set (a view, never a copy).
        """
        p, g, L = self.pattern, self.pattern.block, self.layers
        rng = np.random.default_rng(p.seed)
        nmax = self._blocks_total()
        rank_to_block = self._ranking(rng)
        block_to_rank = np.argsort(rank_to_block, axis=1).astype(np.int32)
        taken = np.zeros((L, nmax), dtype=bool)  # membership by rank: draws test it cache-hot
        member = np.zeros((L, nmax), dtype=bool)  # the heavy set
        rd = np.zeros((L, nmax), dtype=bool)  # sinks | heavy set | window
        first = np.empty(nmax, dtype=np.int64)  # scratch of _add
        heavy: list[np.ndarray] = [np.zeros(0, dtype=np.intp) for _ in range(L)]  # sorted
        ws_prev = 0  # where the window started at the previous decode step (every layer)
        offsets = np.arange(g, dtype=np.int32)
        hints = [[0.25] for _ in range(L)]
        for n in range(self.decode):
            c = self.prompt + n
            nb, sb, wb, hb = self._shape(c)  # the window only moves forward: no member in it
            ws = nb - wb
            for layer in range(L):
                mem, rdl, tk, b2r = member[layer], rd[layer], taken[layer], block_to_rank[layer]
                cur = heavy[layer]
                cnt = len(cur)
                if cnt and p.drift > 0:
                    idx = rng.integers(0, cnt, int(p.drift * cnt))
                    if len(idx):
                        out = cur[idx]
                        mem[out] = False
                        tk[b2r[out]] = False
                        rdl[out] = False
                        idx.sort()
                        cnt -= 1 + int(np.count_nonzero(idx[1:] != idx[:-1]))
                rdl[ws_prev:ws] = False  # left the window (never members)
                rdl[ws:nb] = True
                rdl[:sb] = True
                if cnt < hb:  # hb never decreases: the context only grows
                    new = self._add(
                        rng,
                        p.alpha,
                        rank_to_block[layer],
                        tk,
                        mem,
                        first,
                        sb,
                        ws,
                        hb - cnt,
                        hints[layer],
                    )
                    tk[b2r[new]] = True
                    rdl[new] = True
                blocks = np.flatnonzero(rdl[:nb])
                heavy[layer] = blocks[sb : len(blocks) - wb]  # sinks first, window last
                if g == 1:
                    yield blocks
                else:
                    toks = (blocks[:, None] * g + offsets).ravel()
                    yield toks[toks < c]
            ws_prev = ws

    def _blocks_total(self) -> int:
        return -(-(self.prompt + self.decode) // self.pattern.block)

    def _ranking(self, rng: np.random.Generator) -> np.ndarray:
        """(layers, blocks) rank → block: the per-layer random ranking that popularity
        follows, the generator's first draws."""
        n = self._blocks_total()
        return np.stack([rng.permutation(n) for _ in range(self.layers)]).astype(np.int32)

    def popularity(self) -> np.ndarray:
        """(layers, blocks): the probability that one Zipf draw of the generator picks
        each block (before it skips taken ones) — what an online policy could at best
        estimate from the reads it has seen (``heavy-hitter`` and ``page`` kinds)."""
        n = self._blocks_total()
        block_to_rank = np.argsort(self._ranking(np.random.default_rng(self.pattern.seed)), axis=1)
        return zipf_rank_probabilities(self.pattern.alpha, n)[block_to_rank]

    @staticmethod
    def _add(
        rng: np.random.Generator,
        alpha: float,
        rank_to_block: np.ndarray,
        taken: np.ndarray,
        mem: np.ndarray,
        first: np.ndarray,
        lo: int,
        hi: int,
        need: int,
        hint: list[float],
    ) -> np.ndarray:
        """Mark and return ``need`` eligible non-member blocks in [lo, hi), drawn by
        popularity (``hint[0]``: acceptance rate seen last time, to size the draws;
        ``first``: scratch of one entry per block)."""
        added: list[np.ndarray] = []
        accept = hint[0]
        for _ in range(6):
            size = int(1.5 * need / max(accept, 1e-3)) + 16
            ranks = zipf_ranks(rng, alpha, len(rank_to_block), size)
            ok = rank_to_block[ranks[~taken[ranks]]]
            ok = ok[(ok >= lo) & (ok < hi)]
            accept = hint[0] = max(len(ok) / size, 1e-3)
            if added:
                ok = ok[~mem[ok]]
            # distinct, in draw order: the first draw of a block writes last
            at = np.arange(len(ok))
            first[ok[::-1]] = at[::-1]
            take = ok[first[ok] == at][:need]
            mem[take] = True
            added.append(take)
            need -= len(take)
            if need <= 0:
                break
        else:
            free = np.flatnonzero(~mem[lo:hi]) + lo  # popularity mass exhausted: uniform
            take = rng.choice(free, min(need, len(free)), replace=False).astype(np.int32)
            mem[take] = True
            added.append(take)
        return np.sort(added[0] if len(added) == 1 else np.concatenate(added))


def zipf_rank_probabilities(alpha: float, n: int) -> np.ndarray:
    """P(rank = k), k = 0..n-1, of :func:`zipf_ranks`: the continuous law's mass on
    [k + 1, k + 2)."""
    r = np.arange(1, n + 2, dtype=np.float64)
    if abs(alpha - 1.0) < 1e-9:
        cdf = np.log(r) / math.log(n + 1.0)
    else:
        a = 1.0 - alpha
        cdf = (r**a - 1.0) / ((n + 1.0) ** a - 1.0)
    return np.diff(cdf)


def zipf_ranks(rng: np.random.Generator, alpha: float, n: int, size: int) -> np.ndarray:
    """0-based ranks with P(rank >= r) following the continuous Zipf(alpha) law on [1, n+1)."""
    if abs(alpha - 1.0) < 1e-9:
        u = rng.random(size, dtype=np.float32)
        u *= np.float32(np.log(n + 1.0))
        r = np.exp(u, out=u)
    else:
        a = 1.0 - alpha
        r = (1.0 + rng.random(size) * ((n + 1.0) ** a - 1.0)) ** (1.0 / a)
    out = r.astype(np.int32)
    out -= 1
    return np.minimum(out, n - 1, out=out)
