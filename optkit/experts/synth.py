"""Routing traces generated from statistics fitted to a real one (formulations/
expert_cache.md, "Fitted trace generator"): per-layer popularity, layer-to-layer
transitions, and token-to-token reuse per layer, which is what an expert cache feels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoutingModel:
    """``pop[l, e]``: share of layer l's selections that pick e; ``trans[l, e, e']``:
    P(e' at layer l | e at layer l−1) (row 0 unused); ``reuse[l]``: the probability
    that a slot of token i at layer l copies one of token i−1's experts there (fitted
    so the generated reuse matches the trace's); ``k`` experts per token and layer."""

    pop: np.ndarray  # (L, E)
    trans: np.ndarray  # (L, E, E)
    reuse: np.ndarray  # (L,)
    k: int
    observed_reuse: np.ndarray  # (L,) the trace's |R_i ∩ R_{i-1}| / k per layer


def fit(routing: np.ndarray, experts: int, smoothing: float = 0.5) -> RoutingModel:
    """Statistics of a (tokens, layers, k) trace; ``smoothing`` is an additive count on
    every popularity and transition cell, so unseen experts keep a small chance."""
    r = np.asarray(routing, dtype=np.int64)
    N, L, k = r.shape
    E = experts
    onehot = np.zeros((N, L, E))
    np.put_along_axis(onehot, r, 1.0, axis=2)
    pop = onehot.sum(axis=0) + smoothing
    pop /= pop.sum(axis=1, keepdims=True)
    trans = np.full((L, E, E), smoothing)
    for layer in range(1, L):
        trans[layer] += onehot[:, layer - 1, :].T @ onehot[:, layer, :]
    trans /= trans.sum(axis=2, keepdims=True)
    if N > 1:
        overlap = (onehot[1:] * onehot[:-1]).sum(axis=2) / k  # (N-1, L)
        observed = overlap.mean(axis=0)
    else:
        observed = np.zeros(L)
    # the chance that sampling from the mixture lands on the previous token's experts
    chance = np.zeros(L)
    for layer in range(L):
        w = _weights(pop, trans, layer, onehot[1:, layer - 1, :] if layer else None)
        chance[layer] = float(np.mean(np.sum(w * onehot[:-1, layer, :], axis=1))) if N > 1 else 0
    reuse = np.clip((observed - chance) / np.maximum(1 - chance, 1e-9), 0.0, 1.0)
    return RoutingModel(pop, trans, reuse, k, observed)


def _weights(
    pop: np.ndarray, trans: np.ndarray, layer: int, prev_layer: np.ndarray | None
) -> np.ndarray:
    """Sampling weights at ``layer`` given the (rows, E) one-hot experts of the layer
    before (None at layer 0): the mean of their transition rows, else popularity."""
    if prev_layer is None:
        return np.broadcast_to(pop[layer], (1, pop.shape[1]))
    w = prev_layer @ trans[layer]
    return w / w.sum(axis=1, keepdims=True)


def generate(model: RoutingModel, tokens: int, seed: int = 0) -> np.ndarray:
    """A (tokens, layers, k) trace of distinct expert ids per token and layer."""
    rng = np.random.default_rng(seed)
    L, E = model.pop.shape
    k = model.k
    out = np.empty((tokens, L, k), dtype=np.int64)
    for i in range(tokens):
        for layer in range(L):
            if layer == 0:
                w = model.pop[0].copy()
            else:
                w = model.trans[layer][out[i, layer - 1]].mean(axis=0)
            chosen: list[int] = []
            prev = out[i - 1, layer].tolist() if i else []
            for _ in range(k):
                left = [e for e in prev if e not in chosen]
                if left and rng.random() < model.reuse[layer]:
                    chosen.append(int(left[rng.integers(len(left))]))
                    continue
                p = w.copy()
                p[chosen] = 0.0
                chosen.append(int(rng.choice(E, p=p / p.sum())))
            out[i, layer] = chosen
    return out


def statistics(routing: np.ndarray, experts: int) -> dict[str, float]:
    """What a generated trace must reproduce: the mean token-to-token reuse per layer,
    the popularity concentration (share of selections taken by the top quarter of the
    experts) and the layer-to-layer predictability (share of next-layer experts that
    the transition counts' top-k names)."""
    m = fit(routing, experts, smoothing=0.0 + 1e-9)
    r = np.asarray(routing)
    N, L, k = r.shape
    top = max(1, experts // 4)
    conc = float(np.mean(np.sort(m.pop, axis=1)[:, -top:].sum(axis=1)))
    hits = total = 0
    for layer in range(1, L):
        w = m.trans[layer][r[:, layer - 1]].mean(axis=1)  # (N, E)
        pred = np.argsort(-w, axis=1)[:, :k]
        hits += int(np.sum([len(set(a) & set(b)) for a, b in zip(pred, r[:, layer], strict=True)]))
        total += N * k
    return {
        "reuse": float(m.observed_reuse.mean()),
        "top_quarter_share": conc,
        "transition_precision": hits / total if total else 0.0,
    }
