"""Plots written as PNG/SVG: Gantt charts of makespan plans and bin fill charts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from optkit.io import atomic_path


def _figure(width: float, height: float, rows: int = 1, cols: int = 1, **kwargs: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(width, height), **kwargs)


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    """Save atomically (:func:`optkit.io.atomic_path`)."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, Path(path).suffix or ".png") as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def gantt(
    inst: Any,
    plan: Sequence[int],
    path: str | os.PathLike[str],
    title: str = "",
    bound: float | None = None,
) -> None:
    """One row per machine, jobs as consecutive bars; the bound as a dashed line."""
    a = np.asarray(plan)
    t = inst.time_matrix()
    m = inst.m
    fig, ax = _figure(9, max(2.0, 0.25 * m + 1))
    cmap = __import__("matplotlib").colormaps["tab20"]
    start = np.zeros(m)
    for j in np.argsort(-t[a, np.arange(inst.n)], kind="stable"):
        i = int(a[j])
        d = float(t[i, j])
        ax.barh(i, d, left=start[i], color=cmap(j % 20), edgecolor="white", linewidth=0.3)
        start[i] += d
    if bound is not None:
        ax.axvline(
            bound, color="black", linestyle="--", linewidth=1, label=f"lower bound {bound:g}"
        )
        ax.legend(loc="lower right")
    ax.set_xlabel("time")
    ax.set_ylabel("machine")
    ax.set_yticks(range(m) if m <= 40 else np.linspace(0, m - 1, 10).astype(int))
    ax.invert_yaxis()
    ax.set_title(f"{inst.name} — makespan {start.max():g} {title}".strip())
    _save(fig, path)


def bin_fill(inst: Any, plan: Sequence[int], path: str | os.PathLike[str], title: str = "") -> None:
    """Fill level of every bin against the capacity."""
    a = np.asarray(plan)
    fill = np.bincount(a, weights=inst.sizes)
    fig, ax = _figure(9, 3)
    ax.bar(np.arange(len(fill)), fill, color="tab:blue", width=1.0)
    ax.axhline(inst.capacity, color="black", linestyle="--", linewidth=1, label="capacity")
    ax.set_xlabel("bin")
    ax.set_ylabel("fill")
    ax.legend(loc="lower right")
    ax.set_title(f"{inst.name} — {len(set(a.tolist()))} bins {title}".strip())
    _save(fig, path)


SERVING_COLOURS = {"prefill": "#d62728", "decode": "#1f77b4", "mixed": "#9467bd"}


def serving_gantt(
    schedule: Any,
    path: str | os.PathLike[str],
    title: str = "",
    bound: float | None = None,
    occupancy: Any = None,
    limits: tuple[int, int] | None = None,
) -> None:
    """Per-client timeline of a serving schedule: prefill (stalling the batch) / decode /
    mixed iterations; with ``occupancy`` (``serving.report.occupancy``) and ``limits``
    (B, M), a second panel of the KV reserved and the slots held, as shares of the
    limits, per client over time."""
    n = len(schedule.clients)
    rows = 2 if occupancy is not None and limits is not None else 1
    fig, axes = _figure(10, 1 + 0.45 * n + 2.4 * (rows - 1), rows, sharex=True, squeeze=False)
    ax = axes[0][0]
    for i, its in enumerate(schedule.clients):
        spans: dict[str, list[tuple[float, float]]] = {k: [] for k in SERVING_COLOURS}
        for it in its:
            kind = "decode" if not it.prefill else ("mixed" if it.decode else "prefill")
            spans[kind].append((it.start, it.duration))
        for kind, bars in spans.items():
            if bars:
                ax.broken_barh(bars, (i - 0.4, 0.8), color=SERVING_COLOURS[kind], label=kind)
    for a in (row[0] for row in axes):
        if bound is not None:
            a.axvline(bound, color="black", ls="--", lw=1, label="lower bound T^LB")
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True))
    ax.legend(seen.values(), seen.keys(), loc="upper right", fontsize=8)
    ax.set_yticks(range(n), [f"client {i}" for i in range(n)])
    ax.set_title(title)
    if rows == 2:
        B, M = limits  # type: ignore[misc]
        occ_ax = axes[1][0]
        cmap = __import__("matplotlib").colormaps["tab10"]
        for i, oc in enumerate(occupancy):
            if len(oc.start):
                c = cmap(i % 10)
                occ_ax.step(oc.start, oc.kv / M, where="post", color=c, lw=1, label=f"KV {i}")
                occ_ax.step(oc.start, oc.slots / B, where="post", color=c, lw=0.8, ls=":")
        occ_ax.set_ylim(0, 1.05)
        occ_ax.set_ylabel("share held\n(KV solid, slots dotted)")
        occ_ax.legend(loc="lower left", fontsize=7, ncol=min(n, 8))
    axes[-1][0].set_xlabel("time (s)")
    fig.tight_layout()
    _save(fig, path)


def realtime_gantt(
    inst: Any, backend: Any, start: Any, finish: Any, path: str | os.PathLike[str], title: str = ""
) -> None:
    """One row per backend, a bar per job coloured by its stream (task or LLM session);
    a red edge marks a job that missed its deadline, ticks under a row the dropped ones."""
    jt = inst.jobs
    B, streams = len(inst.backends), inst.streams
    fig, ax = _figure(11, 1.2 + 0.6 * B)
    cmap = __import__("matplotlib").colormaps["tab10"]
    b, S, C = np.asarray(backend), np.asarray(start), np.asarray(finish)
    for k in range(B):
        for s in range(len(streams)):
            on = np.nonzero((b == k) & (jt.task == s))[0]
            if len(on):
                bars = list(zip(S[on].tolist(), (C[on] - S[on]).tolist(), strict=True))
                late = C[on] > jt.deadline[on]
                ax.broken_barh(
                    bars,
                    (k - 0.4, 0.8),
                    facecolors=cmap(s % 10),
                    edgecolors=["red" if x else "none" for x in late],
                    linewidth=0.8,
                    label=streams[s],
                )
    gone = np.nonzero(b < 0)[0]
    if len(gone):
        ax.plot(jt.release[gone], np.full(len(gone), B - 0.5), "x", color="red", label="dropped")
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True))
    ax.legend(seen.values(), seen.keys(), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    ax.set_yticks(range(B), inst.backend_names)
    ax.set_ylim(B, -1)
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def kv_heatmap(
    snapshots: np.ndarray,
    tokens_per_bin: int,
    steps: np.ndarray,
    path: str | os.PathLike[str],
    title: str = "",
) -> None:
    """Placement over time: share of each token range's KV (all layers) in HBM."""
    fig, ax = _figure(9, 4.5)
    extent = (float(steps[0]), float(steps[-1]) + 1, 0, snapshots.shape[1] * tokens_per_bin)
    im = ax.imshow(
        snapshots.T, aspect="auto", origin="lower", extent=extent, cmap="viridis", vmin=0, vmax=1
    )
    fig.colorbar(im, ax=ax, label="share in HBM")
    ax.set_xlabel("decode token")
    ax.set_ylabel("token index")
    ax.set_title(title)
    _save(fig, path)


def bound_bars(
    rows: Sequence[tuple[str, float]],
    bounds: Sequence[tuple[str, float]],
    path: str | os.PathLike[str],
    title: str = "",
    unit: str = "s",
) -> None:
    """Policies as bars against horizontal lines for the bounds / references."""
    fig, ax = _figure(max(5, 0.9 * len(rows) + 2), 4)
    names = [r[0] for r in rows]
    ax.bar(names, [r[1] for r in rows], color="tab:blue")
    for (label, v), style in zip(bounds, ("--", ":", "-.", "-"), strict=False):
        ax.axhline(v, color="black", linestyle=style, linewidth=1, label=f"{label} {v:.4g} {unit}")
    ax.set_ylabel(f"total time ({unit})")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=30)
    _save(fig, path)


def curves(
    series: dict[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike[str],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
) -> None:
    """One line per named series of (x, y) points."""
    fig, ax = _figure(7, 4.5)
    for label, pts in series.items():
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", label=label, lw=2.5 if label == "belady" else 1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def share_solved(
    panels: dict[str, dict[str, Sequence[float | None]]],
    limit_s: float,
    path: str | os.PathLike[str],
    title: str = "",
) -> None:
    """Time-to-optimality curves: one panel per instance set, one step line per method,
    the share of the set proven optimal within t seconds (None: not within the limit)."""
    import math

    cols = min(4, max(1, len(panels)))
    rows = math.ceil(len(panels) / cols)
    fig, axes = _figure(3.2 * cols, 2.6 * rows, rows, cols, squeeze=False, layout="constrained")
    flat = [ax for row in axes for ax in row]
    for ax, (name, series) in zip(flat, panels.items(), strict=False):
        for label, times in series.items():
            n = len(times)
            done = sorted(max(t, 1e-3) for t in times if t is not None)
            if n == 0:
                continue
            xs = [1e-3, *done, limit_s]
            ys = [0.0, *[(i + 1) / n for i in range(len(done))], len(done) / n]
            ax.step(xs, ys, where="post", label=f"{label} ({len(done)}/{n})")
        ax.set_xscale("log")
        ax.set_xlim(1e-2, limit_s)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    fig.supxlabel("seconds")
    fig.supylabel("share proven optimal")
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)
