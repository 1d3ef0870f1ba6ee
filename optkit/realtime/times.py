"""Execution times from the cost model (or a measured table) and the expansion of an
instance into its jobs (formulations/realtime.md, "Jobs" and "Execution times")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from optkit.io import FieldError
from optkit.realtime.instance import LLM, PERCEPTION, JobTable

if TYPE_CHECKING:
    from optkit.realtime.instance import Backend, RealtimeInstance, Session, Task


def network_time(inst: RealtimeInstance, model: str, b: Backend) -> tuple[float, float]:
    """(seconds on b alone, bytes moved); inf when b cannot run it."""
    measured = inst.times.get(model, {})
    net = inst.networks.get(model)
    q = float(sum(net.bytes)) if net is not None else 0.0
    if b.name in measured:
        return measured[b.name], q
    if net is None or (measured and b.name not in measured):
        return float("inf"), q  # a measured table names the backends that can run it
    rate = b.rate(net.dtype)
    if rate <= 0 or net.weight_bytes > b.memory:
        return float("inf"), q
    f, m = np.asarray(net.flops), np.asarray(net.bytes)
    return float(np.sum(np.maximum(f / rate, m / b.bandwidth))) + b.overhead, q


def _hardware(b: Backend) -> Any:
    """A catalog Hardware for the roofline of ``b`` (its own numbers, no links used)."""
    from optkit.costmodel import Hardware, Link

    none = Link("none", "no link (one device)", 1.0, 0.0)
    return Hardware(
        key=b.name,
        name=b.name,
        kind="gpu",
        tflops={k: v / 1e12 for k, v in b.flops.items()},
        memory_gb=b.memory / 1e9,
        bandwidth_gbs=b.bandwidth / 1e9,
        interconnect=none,
        host_link=none,
    )


def session_times(s: Session, b: Backend, index: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per request: seconds of [prefill, decode 1, ...] on b and bytes moved by each."""
    from optkit.costmodel import Precision, Setup, builtin_catalog, forward, weight_bytes

    try:
        model = builtin_catalog().get_model(s.model)
    except KeyError as exc:
        raise FieldError(f"llm[{index}].model", "an LLM of the catalog", s.model) from exc
    setup = Setup(precision=Precision(weight_bits=s.weight_bits))
    hw = _hardware(b)
    fits = float(weight_bytes(model, setup)) <= b.memory and b.rate("fp16") > 0
    times, moved = [], []
    for _, prompt, out in s.requests:
        if not fits:
            times.append(np.full(out, np.inf))
            moved.append(np.zeros(out))
            continue
        pf = forward(model, hw, 1, prompt, 0, setup)
        ctx = prompt + np.arange(out - 1, dtype=float)
        dc = forward(model, hw, 1, 1, ctx, setup)
        times.append(np.concatenate([[float(pf.time_s)], np.broadcast_to(dc.time_s, ctx.shape)]))
        moved.append(np.concatenate([[float(pf.bytes)], np.broadcast_to(dc.bytes, ctx.shape)]))
    return times, moved


def expand(inst: RealtimeInstance) -> JobTable:
    """Every job of the instance, deterministically (activation and jitter use ``seed``)."""
    rng = np.random.default_rng(inst.seed)
    B = len(inst.backends)
    cols: dict[str, list[Any]] = {col: [] for col in JobTable.__dataclass_fields__}
    first: dict[str, int] = {}
    n = 0
    tasks = _upstream_first(inst.tasks)
    active: dict[str, np.ndarray] = {}
    for t in tasks:
        idx = inst.streams.index(t.name)
        K = inst.frames(t)
        k = np.arange(K)
        jit = rng.uniform(0.0, t.jitter, K) if t.jitter > 0 else np.zeros(K)
        on = rng.random(K) < t.probability if t.probability < 1 else np.ones(K, bool)
        if t.after:
            on &= active[t.after]
        active[t.name] = on
        tq = [network_time(inst, t.model, b) for b in inst.backends]
        p = np.array([x for x, _ in tq])
        if not np.any(np.isfinite(p)):
            i = inst.tasks.index(t)
            raise FieldError(
                f"tasks[{i}].model",
                "a network some backend can run (its weights fit that backend's memory)",
                t.model,
            )
        pred = np.full(K, -1, dtype=np.int64)
        if t.after:  # frame k of the upstream task, by its global job index
            up_first, up_on = first[t.after], active[t.after]
            pos = np.cumsum(up_on) - 1
            pred = up_first + pos
        kept = np.nonzero(on)[0]
        first[t.name] = n
        m = len(kept)
        cols["task"].append(np.full(m, idx))
        cols["kind"].append(np.full(m, PERCEPTION))
        cols["release"].append(k[kept] * t.period + jit[kept])
        cols["deadline"].append(k[kept] * t.period + t.deadline)
        cols["weight"].append(np.full(m, t.weight))
        cols["pred"].append(pred[kept])
        cols["p"].append(np.broadcast_to(p, (m, B)))
        cols["bytes"].append(np.full(m, tq[0][1]))
        cols["request"].append(np.full(m, -1))
        cols["step"].append(k[kept])
        n += m
    rid = 0
    for si, s in enumerate(inst.sessions):
        idx = len(inst.tasks) + si
        per_b = [session_times(s, b, si) for b in inst.backends]
        for r, (a, _, out) in enumerate(s.requests):
            p = np.stack([per_b[b][0][r] for b in range(B)], axis=1)
            if not np.all(np.any(np.isfinite(p), axis=1)):
                raise FieldError(
                    f"llm[{si}].model", "an LLM whose weights fit some backend's memory", s.model
                )
            steps = np.arange(out)
            cols["task"].append(np.full(out, idx))
            cols["kind"].append(np.full(out, LLM))
            cols["release"].append(np.full(out, a))
            cols["deadline"].append(a + s.ttft + steps / s.tps)
            cols["weight"].append(np.full(out, s.weight))
            cols["pred"].append(np.where(steps == 0, -1, n + steps - 1))
            cols["p"].append(p)
            cols["bytes"].append(per_b[int(np.argmin(p[0]))][1][r])
            cols["request"].append(np.full(out, rid))
            cols["step"].append(steps)
            n += out
            rid += 1
    arr = {
        k: (np.concatenate(v) if v else np.zeros((0, B) if k == "p" else 0))
        for k, v in cols.items()
    }
    ints = ("task", "kind", "weight", "pred", "request", "step")
    for col in ints:
        arr[col] = arr[col].astype(np.int64)
    for col in ("release", "deadline", "p", "bytes"):
        arr[col] = np.ascontiguousarray(arr[col], dtype=float)
    # order by release (ties: deadline, then index); predecessors renumbered
    order = np.lexsort((np.arange(n), arr["deadline"], arr["release"]))
    new = np.empty(n, dtype=np.int64)
    new[order] = np.arange(n)
    for col in arr:
        arr[col] = arr[col][order]
    arr["pred"] = np.where(arr["pred"] >= 0, new[np.maximum(arr["pred"], 0)], -1)
    for v in arr.values():
        v.setflags(write=False)
    return JobTable(**arr)


def _upstream_first(tasks: tuple[Task, ...]) -> list[Task]:
    """Tasks ordered so that a cascade's upstream task comes before it (no cycles:
    the instance checked)."""
    done: list[Task] = []
    names: set[str] = set()
    left = list(tasks)
    while left:
        for t in list(left):
            if not t.after or t.after in names:
                done.append(t)
                names.add(t.name)
                left.remove(t)
    return done
