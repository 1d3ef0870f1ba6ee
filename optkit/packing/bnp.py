"""Branch-and-price for bin packing on the Gilmore–Gomory master (formulations/
binpacking.md, "Branch-and-price"): column generation at every node
(:class:`optkit.packing.colgen.Master`), branching on the arc flows of the columns,
best-bound order, and a dive with limited discrepancy as the primal heuristic.

Sizes and capacity are integers. The tree needs the exact pricing table (its arc duals
are charged per height); above it only the root bound and the dive run, their pricing
exact by branch and bound (:mod:`optkit.packing.knapsack`) where that closes.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optkit.packing import knapsack
from optkit.packing.bins import plan_of_bins
from optkit.packing.colgen import Master, ceil_bins
from optkit.packing.heuristics import first_fit_decreasing
from optkit.packing.instance import BinPackingInstance
from optkit.packing.mbs import mbs
from optkit.solvers import Deadline

#: Dives with limited discrepancy, tried in turn while the dive's time lasts:
#: (discrepancies along one dive path, backtracks in all before it gives up).
DIVES = ((2, 8), (3, 32), (4, 128), (6, 512), (8, 4096))
#: Items left at which a dive level tries MBS' on the rest (FFD is tried at every level).
MBS_ITEMS = 60
#: Share of the time left that the dive may take before the tree starts.
DIVE_SHARE = 0.5
#: An arc flow within this of an integer is integral.
INTEGRAL = 1e-6


@dataclass(frozen=True)
class BnPOutcome:
    plan: np.ndarray | None  # bin of every item: the best packing known (None: none given or found)
    bins: int | None  # its number of bins
    bound: int  # proven: every packing needs at least this many bins
    status: str  # "optimal" (bins == bound), "goal" (the goal's question answered), "time_limit"
    nodes: int  # tree nodes solved
    note: str = ""


class _Packer:
    """Types (sizes non-increasing ``w``, demands ``d``) and the plan of a set of bins
    given as patterns (counts per type) over the items ``sizes``."""

    def __init__(self, sizes: np.ndarray, capacity: int) -> None:
        self.sizes = sizes
        self.W = capacity
        w, d = np.unique(sizes, return_counts=True)
        self.w, self.d = w[::-1].copy(), d[::-1].copy()

    def plan(self, bins: list[np.ndarray]) -> np.ndarray | None:
        """Bin of every item: bin b takes a_t items of type t while any are left; None
        when the bins leave an item out."""
        return plan_of_bins(self.sizes, (np.repeat(self.w, a) for a in bins))

    def close(self, rest: np.ndarray) -> list[np.ndarray]:
        """The best of FFD and (on few items) MBS' on the items ``rest`` (counts per
        type), as patterns."""
        items = np.repeat(self.w, rest)
        if len(items) == 0:
            return []
        ffd = first_fit_decreasing(BinPackingInstance(float(self.W), items.astype(float)))
        plan = ffd
        if len(items) <= MBS_ITEMS:
            alt = mbs(items, self.W)
            if alt.max() < plan.max():
                plan = alt
        type_of = np.repeat(np.arange(len(self.w)), rest)
        out = []
        for b in range(int(plan.max()) + 1):
            out.append(np.bincount(type_of[plan == b], minlength=len(self.w)).astype(np.int64))
        return out


def decompose(flows: dict[int, float], weights: np.ndarray, capacity: int) -> list[np.ndarray]:
    """The paths of an integral arc flow ({code: x}), as patterns: from height 0 follow
    any arc with flow left out of the current height until none leaves it.

    Every height h > 0 has at least as much flow in as out (each column's path enters
    h before leaving it), so this uses every arc's flow and yields Σ_h=0 x paths."""
    T = len(weights)
    out_of: dict[int, list[list[int]]] = {}  # height -> [[type, flow], ...]
    for code, x in flows.items():
        k = int(round(x))
        if k > 0:
            t, h = divmod(code, capacity + 1)
            out_of.setdefault(h, []).append([t, k])
    paths = []
    while out_of.get(0):
        a = np.zeros(T, dtype=np.int64)
        h = 0
        while out_of.get(h):
            arc = out_of[h][-1]
            t = arc[0]
            arc[1] -= 1
            if arc[1] == 0:
                out_of[h].pop()
            a[t] += 1
            h += int(weights[t])
        paths.append(a)
    return paths


def branch_and_price(
    sizes: np.ndarray,
    capacity: int,
    time_limit_s: float | None = None,
    incumbent: np.ndarray | None = None,
    lower: int = 0,
    goal: int | None = None,
    log: Callable[[str], None] | None = None,
) -> BnPOutcome:
    """Minimum number of bins by branch-and-price, within ``time_limit_s``.

    ``incumbent``: a packing (bin of every item) to start from; ``lower``: a proven
    bound from elsewhere. ``goal``: only ask whether ``goal`` bins suffice: the tree
    prunes every node that cannot pack into ``goal`` bins and stops at the first
    packing that does (a bound above ``goal`` then answers no). The result's plan is
    the best of the incumbent's, the dive's and the tree's packings; its bound the best
    of ``lower`` and the tree's."""
    clock = Deadline(time_limit_s)
    say = log or (lambda _m: None)
    s = np.asarray(sizes, dtype=np.int64)
    W = int(capacity)
    if len(s) == 0:
        return BnPOutcome(np.zeros(0, dtype=np.int64), 0, 0, "optimal", 0)
    if int(s.max()) > W:
        raise ValueError("an item is larger than the capacity")
    pk = _Packer(s, W)
    best_plan = incumbent if incumbent is not None else _whole(pk.plan(pk.close(pk.d)))
    best = len(np.unique(best_plan))  # bins in use (labels need not be 0..k-1)
    bound = max(int(lower), 1)
    # the tree prunes at ``aim`` (a node whose bound reaches it cannot help)
    aim = best if goal is None else min(best, goal + 1)
    nodes = 0

    def result(status: str, note: str = "") -> BnPOutcome:
        lb = min(bound, best)
        return BnPOutcome(best_plan, best, lb, "optimal" if lb >= best else status, nodes, note)

    def answered() -> bool:  # the question is settled
        return bound >= aim or (goal is not None and best <= goal)

    if answered():
        return result("goal")
    master = Master(pk.w, pk.d, W)
    root = master.solve(clock, cutoff=aim - 1)
    if root is None:
        return result("time_limit", "the root LP was not solved in time")
    nodes = 1
    bound = max(bound, ceil_bins(root.bound.lower))
    say(f"branch-and-price: root LP {root.bound.lower:.4f}, bound {bound}")
    if answered():
        return result("goal")
    tree = knapsack.table_cells(pk.d, pk.w, W) <= knapsack.MAX_TABLE

    diving = Deadline(clock.part(DIVE_SHARE if tree else 1.0))
    found: list[np.ndarray] | None = None
    for disc, backtracks in DIVES:
        found = _dive(master, pk, bound, diving, disc, backtracks)
        if found is not None or diving.expired():
            break
    master.set_demand(pk.d)
    if found is not None and len(found) < best:
        best_plan, best = _whole(pk.plan(found)), len(found)
        aim = min(aim, best)
        say(f"branch-and-price: the dive packs {best} bins")
    if answered():
        return result("goal")
    if not tree:
        return result("time_limit", "the tree needs the exact pricing table (capacity too large)")

    # Best-bound tree over arc bounds; the root is re-solved (the dive changed the master).
    heap: list[tuple[int, int, int, dict[int, tuple[float, float]]]] = [(bound, 0, 0, {})]
    count = 0
    unresolved = aim  # the least bound of a node closed without being solved
    while heap and heap[0][0] < aim and not clock.expired():
        nb, negdepth, _, arcs = heapq.heappop(heap)
        master.set_arc_bounds(arcs)
        sol = master.solve(clock, cutoff=aim - 1, integer=True)
        if sol is None:  # stopped before its first LP: still open
            heapq.heappush(heap, (nb, negdepth, -1, arcs))
            break
        nodes += 1
        lb = max(nb, ceil_bins(sol.bound.lower))
        if lb >= aim:
            continue
        if clock.expired():  # stopped at the limit: the node stays open with what it proved
            heapq.heappush(heap, (lb, negdepth, -1, arcs))
            break
        flows = master.arc_flows(sol.values)
        code, x = _most_fractional(flows)
        if code is None:  # integral arc flows: a packing of z bins
            bins = decompose(flows, pk.w, W) if sol.artificial <= 1e-6 else []
            plan = pk.plan(bins) if bins else None  # None: rounded flows left an item out
            if plan is None:
                bins = []
            elif len(bins) < best:
                best_plan, best = plan, len(bins)
                aim = min(aim, best)
                say(f"branch-and-price: node {nodes} packs {best} bins")
                if answered():
                    break
            if not bins or len(bins) > lb:  # not this node's optimum (its LP was not reached)
                unresolved = min(unresolved, lb)
            continue
        lo, hi = arcs.get(code, (-math.inf, math.inf))
        for child in ((lo, float(math.floor(x))), (float(math.ceil(x)), hi)):
            count += 1
            heapq.heappush(heap, (lb, negdepth - 1, count, {**arcs, code: child}))
    master.set_arc_bounds({})
    bound = max(bound, min(aim, unresolved, heap[0][0] if heap else aim))
    return result("goal" if answered() else "time_limit")


def _whole(plan: np.ndarray | None) -> np.ndarray:
    """A plan that must hold every item (FFD's, the dive's: they cover the demands)."""
    if plan is None:
        raise AssertionError("the bins do not hold every item")
    return plan


def _most_fractional(flows: dict[int, float]) -> tuple[int | None, float]:
    """The arc whose flow is farthest from an integer (ties: the lower code, i.e. the
    larger item, then the lower height); (None, 0) when all are integral."""
    best, code_at, x_at = INTEGRAL, None, 0.0
    for code in sorted(flows):
        x = flows[code]
        f = min(x - math.floor(x), math.ceil(x) - x)
        if f > best + 1e-12:
            best, code_at, x_at = f, code, x
    return code_at, x_at


@dataclass
class _Level:
    """A dive level: the items left before it, its moves (lists of bins; the first is
    the LP's choice, the others the discrepancies) and the next move to try."""

    rest: np.ndarray
    fixed: int  # bins fixed above it
    disc: int  # discrepancies left to it
    moves: list[list[np.ndarray]]
    tried: int = 0


def _moves(master: Master, values: np.ndarray, rest: np.ndarray, disc: int) -> list:
    """The dive's moves at an LP: fix ⌊λ_p⌋ copies of every column with λ_p ≥ 1 (one
    copy of the largest when none), then, as discrepancies, one copy of each of the
    next ``disc`` columns by value. A column's copies keep only the items left."""

    def bins_of(cols: list[tuple[int, int]]) -> list[np.ndarray]:
        left, out = rest.copy(), []
        for p, c in cols:
            for _ in range(c):
                take = np.minimum(master.patterns[p], left)
                if not take.any():
                    break
                left -= take
                out.append(take)
        return out

    order = [int(p) for p in np.argsort(-values, kind="stable") if values[p] > 1e-9]
    whole = [(p, int(math.floor(values[p] + 1e-9))) for p in order if values[p] >= 1 - 1e-9]
    moves = [bins_of(whole or [(order[0], 1)])] if order else []
    moves += [bins_of([(p, 1)]) for p in order[1 : 1 + disc]]
    return [m for m in moves if m]


def _dive(
    master: Master, pk: _Packer, target: int, clock: Deadline, disc: int, max_backtracks: int
) -> list[np.ndarray] | None:
    """Patterns of a packing into at most ``target`` bins, or None: a dive on the
    master with at most ``disc`` discrepancies on a path and ``max_backtracks`` in all
    (formulations/binpacking.md, "Primal heuristic")."""
    levels: list[_Level] = []
    backtracks = 0
    rest, fixed = pk.d.copy(), 0
    while True:
        dead = False
        closing = pk.close(rest)
        if fixed + len(closing) <= target:
            return [b for lv in levels for b in lv.moves[lv.tried - 1]] + closing
        if clock.expired():
            return None
        master.set_demand(rest)
        sol = master.solve(clock, cutoff=target - fixed, integer=True)
        if sol is None or fixed + ceil_bins(sol.bound.lower) > target:
            dead = True
        else:
            levels.append(_Level(rest, fixed, disc, _moves(master, sol.values, rest, disc)))
        if dead or not levels[-1].moves:  # back to the deepest level with a move left
            while levels and levels[-1].tried >= len(levels[-1].moves):
                levels.pop()
            backtracks += 1
            if not levels or backtracks > max_backtracks or clock.expired():
                return None
        lv = levels[-1]
        move = lv.moves[lv.tried]  # move k spends k discrepancies
        disc = lv.disc - lv.tried
        lv.tried += 1
        rest = lv.rest - np.sum(move, axis=0)
        fixed = lv.fixed + len(move)
