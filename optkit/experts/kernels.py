"""Compiled (numba) kernels of the expert cache: the cache state and its update, every
built-in policy's decision, and the replay loop (formulations/expert_cache.md,
"Policies"). One implementation of each: the replay runs a policy's decision inside the
compiled loop (``run_<policy>``), and an engine that embeds the policy calls the same
function once per layer step (``policies.KernelPolicy.decide``).

The cache state ``c`` is a tuple of arrays, U = layers × experts units:
``(held, last, uses, arrive, hl, where, cnt, clock, sc)`` — held (bool), last use (step,
-1: never), uses so far, arrival time on the GPU (inf: not held), the list of held units
``hl[:cnt[0]]`` with each unit's index ``where`` (-1: not held), and ``clock = [now,
link]``: when the step is decided and when the link is next free; ``sc`` is scratch for
the victims' scores (``sc[i]`` the score of ``hl[i]``).

A decision ``decide(p, n, need, c, C, out_l, out_e) -> (na, ne)`` writes its loads to
``out_l[:na]`` and its evictions to ``out_e[:ne]``; ``p`` is the policy's own state (a
tuple of arrays). A unit is a victim only if it is held, has arrived, is not needed at
this step and its score is finite; the lowest score goes first (ties: the lowest id).
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf
#: ``predict`` prefetches an expert when the transition table gives it at least this
#: probability of being among the next layer's choices (per selected slot)
CONFIDENT = 0.3


def new_cache(units: int) -> tuple:
    return (
        np.zeros(units, dtype=np.bool_),
        np.full(units, -1, dtype=np.int64),
        np.zeros(units, dtype=np.int64),
        np.full(units, np.inf),
        np.zeros(units, dtype=np.int64),
        np.full(units, -1, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        np.zeros(2),
        np.zeros(units),
    )


@njit(cache=True, error_model="numpy", inline="always")
def apply(c, n, need, out_l, na, out_e, ne, tau, compute):
    """Step n: evict, load (the link in issue order), use ``need``, compute."""
    held, last, uses, arrive, hl, where, cnt, clock = c[:8]
    for j in range(ne):
        u = out_e[j]
        if held[u]:
            i, m = where[u], cnt[0] - 1
            hl[i] = hl[m]
            where[hl[i]] = i
            where[u] = -1
            cnt[0] = m
        held[u] = False
        arrive[u] = INF
    now, link = clock[0], clock[1]
    for j in range(na):
        u = out_l[j]
        link = max(now, link) + tau
        arrive[u] = link
        if not held[u]:
            held[u] = True
            where[u] = cnt[0]
            hl[cnt[0]] = u
            cnt[0] += 1
    ready = now
    for u in need:
        last[u] = n
        uses[u] += 1
        ready = max(ready, arrive[u])
    clock[0] = ready + compute
    clock[1] = link


@njit(cache=True, error_model="numpy", inline="always")
def _begin(flat, off, c):
    """The replay's buffers: (out_l, out_e, loads, load offsets, evictions, eviction
    offsets, [loads so far, evictions so far])."""
    U = len(c[0])
    S = len(off) - 1
    size = max(16, len(flat))
    return (
        np.empty(U, dtype=np.int64),
        np.empty(U, dtype=np.int64),
        np.empty(size, dtype=np.int64),
        np.zeros(S + 1, dtype=np.int64),
        np.empty(size, dtype=np.int64),
        np.zeros(S + 1, dtype=np.int64),
        np.zeros(2, dtype=np.int64),
    )


@njit(cache=True, error_model="numpy", inline="always")
def _record(b, n, need, na, ne, c, tau, compute):
    """Step n's decision into the plan, then ``apply``."""
    out_l, out_e, lf, lo, ef, eo, k = b
    nl, nev = k[0], k[1]
    if nl + na > len(lf):
        lf = _grow(lf, nl + na)
    if nev + ne > len(ef):
        ef = _grow(ef, nev + ne)
    for j in range(na):  # loops, not slices: no array views per step
        lf[nl + j] = out_l[j]
    for j in range(ne):
        ef[nev + j] = out_e[j]
    k[0], k[1] = nl + na, nev + ne
    lo[n + 1], eo[n + 1] = k[0], k[1]
    apply(c, n, need, out_l, na, out_e, ne, tau, compute)
    return (out_l, out_e, lf, lo, ef, eo, k)


@njit(cache=True, error_model="numpy", inline="always")
def _finish(b):
    """The plan as CSR arrays (loads, load offsets, evictions, eviction offsets)."""
    return b[2][: b[6][0]].copy(), b[3], b[4][: b[6][1]].copy(), b[5]


@njit(cache=True, error_model="numpy")
def _grow(a, need):
    b = np.empty(max(need, 2 * len(a)), dtype=a.dtype)
    b[: len(a)] = a
    return b


# --- shared pieces of the decisions ----------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def misses(need, held, out_l):
    na = 0
    for u in need:
        if not held[u]:
            out_l[na] = u
            na += 1
    return na


@njit(cache=True, error_model="numpy", inline="always")
def choose(c, need, count, out_e, ne):
    """Append ``count`` victims to ``out_e[ne:]`` by the scores in ``c[8]`` (fewer when
    fewer are allowed)."""
    arrive, hl, cnt, now, sc = c[3], c[4], c[6], c[7][0], c[8]
    for _ in range(count):
        best, best_s = -1, INF
        for i in range(cnt[0]):
            u = hl[i]
            s = sc[i]
            if not (s < best_s or (s == best_s and s < INF and u < best)):
                continue
            if arrive[u] > now or _member(u, need) or _first(u, out_e, ne):
                continue
            best, best_s = u, s
        if best < 0:
            break
        out_e[ne] = best
        ne += 1
    return ne


@njit(cache=True, error_model="numpy", inline="always")
def _first(u, arr, m):
    """u is among arr[:m] (without the slice's view)."""
    for j in range(m):  # noqa: SIM110
        if arr[j] == u:
            return True
    return False


@njit(cache=True, error_model="numpy", inline="always")
def _member(u, arr):  # a loop: numba compiles it, not any() over a generator
    for x in arr:  # noqa: SIM110
        if x == u:
            return True
    return False


@njit(cache=True, error_model="numpy", inline="always")
def shortfall(need, c, C, out_l):
    """Demand loads into ``out_l``: (their number, how many victims they need)."""
    na = misses(need, c[0], out_l)
    return na, na - (C - c[6][0])


# --- LRU, LFU, pinning -----------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def lru_score(p, n, u, c):
    return float(c[1][u])


@njit(cache=True, error_model="numpy", inline="always")
def lru(p, n, need, c, C, out_l, out_e):
    na, count = shortfall(need, c, C, out_l)
    for i in range(c[6][0] if count > 0 else 0):
        c[8][i] = lru_score(p, n, c[4][i], c)
    return na, choose(c, need, count, out_e, 0)


@njit(cache=True, error_model="numpy", inline="always")
def lfu_score(p, n, u, c):
    return c[2][u] + c[1][u] / (n + 2.0)


@njit(cache=True, error_model="numpy", inline="always")
def lfu(p, n, need, c, C, out_l, out_e):
    na, count = shortfall(need, c, C, out_l)
    for i in range(c[6][0] if count > 0 else 0):
        c[8][i] = lfu_score(p, n, c[4][i], c)
    return na, choose(c, need, count, out_e, 0)


@njit(cache=True, error_model="numpy", inline="always")
def pin_score(p, n, u, c):
    return c[1][u] + (1e12 if p[1][u] else 0.0)


@njit(cache=True, error_model="numpy", inline="always")
def pin(p, n, need, c, C, out_l, out_e):
    """p = (prior, pinned, prev, meta=[len(prev)]): the pinned set is the top C − k by
    prior + uses (ties: the lowest id), kept as uses grow (only the previous step's units
    changed, and a unit that gains can only enter)."""
    prior, pinned, prev, meta = p
    uses = c[2]
    for j in range(meta[0]):
        x = prev[j]
        if pinned[x]:
            continue
        fx = prior[x] + uses[x]
        worst, wf = -1, INF
        for u in range(len(pinned)):
            if pinned[u]:
                fu = prior[u] + uses[u]
                if fu < wf or (fu == wf and u > worst):
                    worst, wf = u, fu
        if worst >= 0 and (fx > wf or (fx == wf and x < worst)):
            pinned[worst] = False
            pinned[x] = True
    meta[0] = len(need)
    prev[: len(need)] = need
    na, count = shortfall(need, c, C, out_l)
    for i in range(c[6][0] if count > 0 else 0):
        c[8][i] = pin_score(p, n, c[4][i], c)
    return na, choose(c, need, count, out_e, 0)


# --- predict: layer-to-layer transitions (ProMoE's idea one layer ahead) --------------
@njit(cache=True, error_model="numpy", inline="always")
def observe(g, n, need):
    """Learn step n's transition from the previous layer (causal). g = (trans, prev,
    meta=[L, E, len(prev), predicted], prob)."""
    trans, prev, meta = g[0], g[1], g[2]
    L, E = meta[0], meta[1]
    layer = n % L
    if layer > 0:
        for ai in range(meta[2]):
            a = prev[ai]
            for u in need:
                trans[layer - 1, a, u - layer * E] += 1.0
    for j in range(len(need)):
        prev[j] = need[j] - layer * E
    meta[2] = len(need)
    return layer


@njit(cache=True, error_model="numpy", inline="always")
def next_layer(g, layer):
    """g[3][:] = the mean over the previous step's experts of P(e' at layer + 1 | e)."""
    trans, prev, meta, prob = g
    prob[:] = 0.0
    m = meta[2]
    for ai in range(m):  # loops, not array expressions: no temporaries per step
        row = trans[layer, prev[ai]]
        s = 0.0
        for e in range(len(row)):
            s += row[e]
        for e in range(len(row)):
            prob[e] += row[e] / s
    for e in range(len(prob)):
        prob[e] /= m


@njit(cache=True, error_model="numpy")
def _top(prob, k, out):
    """The k largest of prob (ties: lowest id) into out; returns k."""
    taken = np.zeros(len(prob), dtype=np.bool_)
    for j in range(k):
        b = -1
        for e in range(len(prob)):
            if not taken[e] and (b < 0 or prob[e] > prob[b]):
                b = e
        taken[b] = True
        out[j] = b
    return k


@njit(cache=True, error_model="numpy", inline="always")
def _recent_score(p, n, u, c):
    """LRU among units not used during the last token and not a guess (inf: kept)."""
    L, k = p[0][0], p[0][2]
    if c[1][u] >= n - L:
        return INF
    for j in range(k):
        if p[1][j] == u:
            return INF
    return float(c[1][u])


@njit(cache=True, error_model="numpy", inline="always")
def predict(p, n, need, c, C, out_l, out_e):
    """p = (g, guess): loads as LRU, then layer l+1's top k (at least CONFIDENT)
    into free slots or over cold units (not used during the last token)."""
    g, guess = p[0], p[1]
    meta = g[2]
    L, E, k = meta[0], meta[1], len(guess)
    layer = observe(g, n, need)
    na, ne = lru(p, n, need, c, C, out_l, out_e)
    if layer + 1 >= L:
        return na, ne
    next_layer(g, layer)
    prob = g[3]
    top = np.empty(k, dtype=np.int64)
    _top(prob, k, top)
    held = c[0]
    m = 0
    for e in top:
        u = (layer + 1) * E + e
        if prob[e] >= CONFIDENT and not held[u]:
            guess[m] = u
            m += 1
    if m == 0:
        return na, ne
    room = C - c[6][0] + ne - na
    extra = m - room
    q = (np.array([L, E, m, 0]), guess)
    for i in range(c[6][0] if extra > 0 else 0):
        c[8][i] = _recent_score(q, n, c[4][i], c)
    ne2 = choose(c, need, extra, out_e, ne)
    take = min(m, room + (ne2 - ne))
    for j in range(max(0, take)):
        out_l[na + j] = guess[j]
    meta[3] += max(0, take)
    return na + max(0, take), ne + max(0, min(ne2 - ne, take - room))


# --- forecast: the expected next use on the cyclic layer order ------------------------
@njit(cache=True, error_model="numpy", inline="always")
def forecast_score(f, n, u, c):
    """-(expected steps to u's next use): d + L·(1 − p)/p0 (the farthest goes first).
    f = (trials, used, last_tok, meta=[L, E], layer_of, ex): ``ex[st, l]`` the cached
    L·(1 − p_st)/p0 of layer l."""
    L = f[3][0]
    return _forecast_at(f[2], L, f[4], f[5], n // L, n % L, u)


@njit(cache=True, error_model="numpy", inline="always")
def _forecast_at(last_tok, L, lay_of, ex, i, l0, u):
    """forecast_score of unit ``u`` at token ``i``, layer ``l0`` (taken once per step by
    the callers that score many units)."""
    lay = lay_of[u]
    d = lay - l0
    nxt = i
    if d <= 0:
        d += L
        nxt += 1
    st = 1 if last_tok[u] == nxt - 1 else 0
    return -(d + ex[st, lay])


@njit(cache=True, error_model="numpy", inline="always")
def forecast_scores(f, n, c):
    """``c[8][i] = forecast_score(f, n, hl[i], c)`` for every held unit, with the step's
    token and layer taken once."""
    last_tok, L, lay_of, ex = f[2], f[3][0], f[4], f[5]
    hl, sc = c[4], c[8]
    i, l0 = n // L, n % L
    for j in range(c[6][0]):
        sc[j] = _forecast_at(last_tok, L, lay_of, ex, i, l0, hl[j])


@njit(cache=True, error_model="numpy", inline="always")
def forecast_victim(f, n, c, need):
    """The first victim ``choose`` would take by ``forecast_score`` (-1: none) and its
    score, in one pass without the scratch scores."""
    last_tok, L, lay_of, ex = f[2], f[3][0], f[4], f[5]
    held_l, arrive, now = c[4], c[3], c[7][0]
    i, l0 = n // L, n % L
    best, best_s = -1, INF
    for j in range(c[6][0]):
        u = held_l[j]
        s = _forecast_at(last_tok, L, lay_of, ex, i, l0, u)
        if not (s < best_s or (s == best_s and s < INF and u < best)):
            continue
        if arrive[u] > now or _member(u, need):
            continue
        best, best_s = u, s
    return best, best_s


@njit(cache=True, error_model="numpy", inline="always")
def forecast_expect(f, layer):
    trials, used, L, ex = f[0], f[1], f[3][0], f[5]
    p0 = used[0, layer] / trials[0, layer]
    for st in range(2):
        ex[st, layer] = L * (1.0 - used[st, layer] / trials[st, layer]) / p0


@njit(cache=True, error_model="numpy", inline="always")
def forecast_learn(f, n, need):
    trials, used, last_tok, meta = f[0], f[1], f[2], f[3]
    L, E = meta[0], meta[1]
    i, l0 = n // L, n % L
    if i > 0:
        hot = 0
        for u in range(l0 * E, (l0 + 1) * E):
            hot += last_tok[u] == i - 1
        used_hot = 0
        for u in need:
            used_hot += last_tok[u] == i - 1
        trials[1, l0] += hot
        trials[0, l0] += E - hot
        used[1, l0] += used_hot
        used[0, l0] += len(need) - used_hot
        forecast_expect(f, l0)
    for u in need:
        last_tok[u] = i


@njit(cache=True, error_model="numpy")
def forecast_setup(f):
    for layer in range(f[3][0]):
        forecast_expect(f, layer)


@njit(cache=True, error_model="numpy", inline="always")
def forecast(f, n, need, c, C, out_l, out_e):
    forecast_learn(f, n, need)
    na, count = shortfall(need, c, C, out_l)
    if count == 1:  # the common case: one pass
        u, _ = forecast_victim(f, n, c, need)
        if u < 0:
            return na, 0
        out_e[0] = u
        return na, 1
    if count > 0:
        forecast_scores(f, n, c)
    return na, choose(c, need, count, out_e, 0)


@njit(cache=True, error_model="numpy", inline="always")
def prefetch(p, n, need, c, C, out_l, out_e):
    """p = (f, g, pf=[tau, steps, missed], comp): forecast, and one prefetch of layer
    l+1's likeliest expert at a step with no demand load and an idle link, when its
    expected gain beats its expected stall and its forecast next use is sooner than its
    victim's."""
    f, g, pf, comp = p
    L, E = f[3][0], f[3][1]
    layer = observe(g, n, need)
    na, ne = forecast(f, n, need, c, C, out_l, out_e)
    pf[1] += 1.0
    pf[2] += 1.0 if na > 0 else 0.0
    held, cnt = c[0], c[6]
    busy = c[7][1] > c[7][0]  # the FIFO link is busy iff its last copy is in flight
    if na > 0 or busy or layer + 1 >= L:
        return na, ne
    next_layer(g, layer)
    prob, k = g[3], len(need)
    x, qx = -1, -1.0
    for e in range(E):  # the most expected uses (prob · k) of layer + 1
        if not held[(layer + 1) * E + e] and prob[e] * k > qx:
            x, qx = e, prob[e] * k
    if x < 0:
        return na, ne
    qx = min(1.0, qx)
    tau, cl, m = pf[0], comp[layer], pf[2] / pf[1]
    if qx * min(cl, tau) <= (1.0 - qx) * m * max(0.0, tau - cl):
        return na, ne
    out_l[0] = (layer + 1) * E + x
    if C - cnt[0] > 0:
        return 1, 0
    u, su = forecast_victim(f, n, c, need)
    if u < 0:
        return na, ne
    p0 = f[1][0, layer + 1] / f[0][0, layer + 1]
    if 1.0 + L * (1.0 - qx) / p0 < -su:
        out_e[0] = u
        return 1, 1
    return na, ne


# --- Belady's MIN and the clairvoyant horizon -----------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def horizon_score(b, n, u, c):
    """Next uses within H steps are known: those units go last, the farthest first;
    the others by LRU. H ≥ S is Belady's MIN. b = (after, nu, off, meta=[S, H]):
    ``after[j]`` the next step that uses the unit of trace position j (S: never),
    ``nu[u]`` unit u's next use."""
    S, H = b[3][0], b[3][1]
    far = b[1][u]
    if far - n <= H:
        return 2.0 * S - far
    return float(c[1][u])


@njit(cache=True, error_model="numpy", inline="always")
def horizon(b, n, need, c, C, out_l, out_e):
    after, nu, off = b[0], b[1], b[2]
    for j in range(len(need)):
        nu[need[j]] = after[off[n] + j]
    na, count = shortfall(need, c, C, out_l)
    for i in range(c[6][0] if count > 0 else 0):
        c[8][i] = horizon_score(b, n, c[4][i], c)
    return na, choose(c, need, count, out_e, 0)


# --- the replay loops --------------------------------------------------------------------
# One loop per policy, each calling its decision by name: numba cannot cache a compiled
# function that takes another as an argument (the cached copy loses its reference in a
# new process), and uncached compilation would cost every command several seconds.
# ``run(decide, ...)`` replays ``decide`` over the steps ``flat[off[n]:off[n+1]]``.


@njit(cache=True, error_model="numpy")
def run_lru(p, flat, off, comp, tau, C, c):
    b = _begin(flat, off, c)
    for n in range(len(off) - 1):
        need = flat[off[n] : off[n + 1]]
        na, ne = lru(p, n, need, c, C, b[0], b[1])
        b = _record(b, n, need, na, ne, c, tau, comp[n])
    return _finish(b)


@njit(cache=True, error_model="numpy")
def run_lfu(p, flat, off, comp, tau, C, c):
    b = _begin(flat, off, c)
    for n in range(len(off) - 1):
        need = flat[off[n] : off[n + 1]]
        na, ne = lfu(p, n, need, c, C, b[0], b[1])
        b = _record(b, n, need, na, ne, c, tau, comp[n])
    return _finish(b)


@njit(cache=True, error_model="numpy")
def run_pin(p, flat, off, comp, tau, C, c):
    b = _begin(flat, off, c)
    for n in range(len(off) - 1):
        need = flat[off[n] : off[n + 1]]
        na, ne = pin(p, n, need, c, C, b[0], b[1])
        b = _record(b, n, need, na, ne, c, tau, comp[n])
    return _finish(b)


@njit(cache=True, error_model="numpy")
def run_predict(p, flat, off, comp, tau, C, c):
    b = _begin(flat, off, c)
    for n in range(len(off) - 1):
        need = flat[off[n] : off[n + 1]]
        na, ne = predict(p, n, need, c, C, b[0], b[1])
        b = _record(b, n, need, na, ne, c, tau, comp[n])
    return _finish(b)


@njit(cache=True, error_model="numpy")
def run_forecast(p, flat, off, comp, tau, C, c):
    b = _begin(flat, off, c)
    for n in range(len(off) - 1):
        need = flat[off[n] : off[n + 1]]
        na, ne = forecast(p, n, need, c, C, b[0], b[1])
        b = _record(b, n, need, na, ne, c, tau, comp[n])
    return _finish(b)


@njit(cache=True, error_model="numpy")
def run_prefetch(p, flat, off, comp, tau, C, c):
    b = _begin(flat, off, c)
    for n in range(len(off) - 1):
        need = flat[off[n] : off[n + 1]]
        na, ne = prefetch(p, n, need, c, C, b[0], b[1])
        b = _record(b, n, need, na, ne, c, tau, comp[n])
    return _finish(b)


@njit(cache=True, error_model="numpy")
def run_horizon(p, flat, off, comp, tau, C, c):
    b = _begin(flat, off, c)
    for n in range(len(off) - 1):
        need = flat[off[n] : off[n + 1]]
        na, ne = horizon(p, n, need, c, C, b[0], b[1])
        b = _record(b, n, need, na, ne, c, tau, comp[n])
    return _finish(b)


# --- the checker's timeline (independent of every policy) ------------------------------
@njit(cache=True, error_model="numpy")
def timeline(flat, off, lf, lo, ef, eo, comp, tau, C, U):
    """Replay a plan from an empty cache with its own bookkeeping. Returns (end, hits,
    loads, useful, codes, steps, values, count): up to 21 violations as codes
    1 outside, 2 evicts not held or twice, 3 evicts a used unit, 4 evicts in flight,
    5 loads held or twice, 6 over capacity, 7 uses a unit neither held nor loaded."""
    S = len(off) - 1
    arrive = np.full(U, INF)
    held = np.zeros(U, dtype=np.bool_)
    pre = np.zeros(U, dtype=np.bool_)
    mark = np.full(U, -1, dtype=np.int64)
    codes = np.zeros(21, dtype=np.int64)
    at = np.zeros(21, dtype=np.int64)
    vals = np.zeros(21, dtype=np.int64)
    nv = 0
    link = end = 0.0
    hits = loads = useful = nheld = 0
    for n in range(S):
        if nv > 20:
            break
        r = flat[off[n] : off[n + 1]]
        adds, evs = lf[lo[n] : lo[n + 1]], ef[eo[n] : eo[n + 1]]
        bad = -1
        for u in adds:
            if (u < 0 or u >= U) and bad < 0:
                bad = u
        for u in evs:
            if (u < 0 or u >= U) and bad < 0:
                bad = u
        if bad >= 0:
            codes[nv], at[nv], vals[nv] = 1, n, bad
            nv += 1
            continue
        twice = False
        used = False
        flight = False
        for u in evs:
            twice |= mark[u] == 2 * n or not held[u]
            mark[u] = 2 * n
            used |= _member(u, r)
            flight |= held[u] and arrive[u] > end
        if twice and nv <= 20:
            codes[nv], at[nv] = 2, n
            nv += 1
        if used and nv <= 20:
            codes[nv], at[nv] = 3, n
            nv += 1
        if flight and nv <= 20:
            codes[nv], at[nv] = 4, n
            nv += 1
        for u in evs:
            if held[u]:
                held[u] = False
                nheld -= 1
            arrive[u] = INF
            pre[u] = False
        for u in r:
            hits += held[u] and arrive[u] <= end
        again = False
        for u in adds:
            again |= held[u] or mark[u] == 2 * n + 1
            mark[u] = 2 * n + 1
        if again and nv <= 20:
            codes[nv], at[nv] = 5, n
            nv += 1
        fresh = np.empty(len(adds), dtype=np.bool_)
        for j in range(len(adds)):
            fresh[j] = not held[adds[j]]
        for j in range(len(adds)):
            if fresh[j]:
                u = adds[j]
                link = max(end, link) + tau
                arrive[u] = link
                if not held[u]:
                    held[u] = True
                    nheld += 1
                pre[u] = not _member(u, r)
                loads += 1
        if nheld > C and nv <= 20:
            codes[nv], at[nv], vals[nv] = 6, n, nheld
            nv += 1
        missing = -1
        for u in r:
            if not held[u] and missing < 0:
                missing = u
        if missing >= 0:
            if nv <= 20:
                codes[nv], at[nv], vals[nv] = 7, n, missing
                nv += 1
            continue
        begin = end
        for u in r:
            useful += pre[u]
            pre[u] = False
            begin = max(begin, arrive[u])
        end = begin + comp[n]
    return end, hits, loads, useful, codes, at, vals, nv
