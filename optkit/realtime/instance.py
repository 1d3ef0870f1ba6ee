"""Real-time SoC instances (formulations/realtime.md): backends sharing one memory,
periodic perception tasks with cascades, LLM sessions, and their expansion into jobs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optkit.io import FORMAT_VERSION, FieldError, is_int, is_real

#: Most jobs one instance may expand to (the simulator and check replay every one).
MAX_JOBS = 2_000_000
#: Bytes per value of a network datatype.
DTYPE_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
PERCEPTION, LLM = 0, 1


@dataclass(frozen=True)
class Backend:
    """``flops[dtype]`` FLOP/s, ``bandwidth`` bytes/s, ``memory`` bytes, ``overhead`` s per
    inference; ``hardware`` the catalog key the numbers came from ('' when given)."""

    name: str
    flops: dict[str, float]
    bandwidth: float
    memory: float
    overhead: float = 0.0
    hardware: str = ""

    def rate(self, dtype: str) -> float:
        """FLOP/s for ``dtype``; the 16-bit rate when it lacks one (never a faster type's)."""
        return self.flops.get(dtype) or self.flops.get("fp16") or self.flops.get("bf16") or 0.0


@dataclass(frozen=True)
class Network:
    """A perception model: per layer FLOPs and bytes moved; weights for the memory check."""

    name: str
    flops: tuple[float, ...]
    bytes: tuple[float, ...]
    weight_bytes: float
    dtype: str = "fp16"


@dataclass(frozen=True)
class Task:
    name: str
    model: str
    fps: float
    deadline: float  # relative, seconds
    jitter: float = 0.0
    after: str = ""  # upstream task (cascade)
    probability: float = 1.0
    weight: int = 1

    @property
    def period(self) -> float:
        return 1.0 / self.fps


@dataclass(frozen=True)
class Session:
    """An LLM assistant: requests (arrival s, prompt and output tokens) and targets."""

    name: str
    model: str
    requests: tuple[tuple[float, int, int], ...]
    ttft: float
    tps: float
    weight_bits: float = 4.0
    weight: int = 1


@dataclass(frozen=True, eq=False)
class JobTable:
    """Every job, expanded once (formulations/realtime.md, "Jobs"). ``p[j, b]`` is inf
    where backend b cannot run job j; ``pred`` is -1 or the job that must complete first."""

    task: np.ndarray  # index into RealtimeInstance.streams (tasks, then sessions)
    kind: np.ndarray  # PERCEPTION or LLM
    release: np.ndarray
    deadline: np.ndarray
    weight: np.ndarray
    pred: np.ndarray
    p: np.ndarray  # (n, B) seconds
    bytes: np.ndarray
    request: np.ndarray  # global request id for LLM jobs, -1 otherwise
    step: np.ndarray  # 0 = prefill, i = i-th decode step; frame index for perception

    def __len__(self) -> int:
        return len(self.release)

    @property
    def fastest(self) -> np.ndarray:
        return np.min(self.p, axis=1)

    def successors(self) -> np.ndarray:
        """-1 or the one job whose ``pred`` is j (chains and cascades have one each)."""
        succ = np.full(len(self), -1, dtype=np.int64)
        has = self.pred >= 0
        succ[self.pred[has]] = np.nonzero(has)[0]
        return succ

    def earliest(self) -> np.ndarray:
        """ř_j (Lemma 2): the release, pushed by the predecessor's fastest time."""
        r = self.release.copy()
        fast = self.fastest
        for j in self.topological():
            q = self.pred[j]
            if q >= 0:
                r[j] = max(r[j], r[q] + fast[q])
        return r

    def topological(self) -> np.ndarray:
        """Jobs ordered so that a predecessor comes first (chain depth, then index)."""
        depth = np.zeros(len(self), dtype=np.int64)
        order = np.argsort(self.release, kind="stable")
        changed = True
        while changed:  # chains are short relative to n; each pass settles one level
            new = np.where(self.pred >= 0, depth[np.maximum(self.pred, 0)] + 1, 0)
            changed = bool(np.any(new != depth))
            depth = new
        return order[np.argsort(depth[order], kind="stable")]


@dataclass(frozen=True, eq=False)
class RealtimeInstance:
    backends: tuple[Backend, ...]
    networks: dict[str, Network]
    tasks: tuple[Task, ...]
    sessions: tuple[Session, ...]
    horizon: float
    shared_bandwidth: float
    interference: bool = True
    seed: int = 0
    #: measured times: times[model][backend] seconds (replace the cost model)
    times: dict[str, dict[str, float]] = field(default_factory=dict)
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    problem = "realtime"
    sense = "min"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_jobs", None)
        names = [b.name for b in self.backends]
        if not names or len(set(names)) != len(names):
            raise FieldError("backends", "at least one backend, names distinct", names)
        streams = [t.name for t in self.tasks] + [s.name for s in self.sessions]
        if len(set(streams)) != len(streams):
            raise FieldError("tasks", "task and session names distinct", streams)
        by = {t.name: t for t in self.tasks}
        for i, t in enumerate(self.tasks):
            if t.model not in self.networks and t.model not in self.times:
                raise FieldError(f"tasks[{i}].model", "a network of 'networks' or 'times'", t.model)
            if t.after:
                up = by.get(t.after)
                if up is None:
                    raise FieldError(f"tasks[{i}].after", "the name of another task", t.after)
                if not math.isclose(up.fps, t.fps, rel_tol=1e-12):
                    raise FieldError(
                        f"tasks[{i}].fps", f"the upstream task's rate {up.fps} (a cascade)", t.fps
                    )
        for i, t in enumerate(self.tasks):  # a cycle of dependencies never releases
            seen, cur = {t.name}, t
            while cur.after:
                cur = by[cur.after]
                if cur.name in seen:
                    raise FieldError(f"tasks[{i}].after", "no cycle of dependencies", t.after)
                seen.add(cur.name)
        for k, per in self.times.items():
            for b in per:
                if b not in names:
                    raise FieldError(f"times.{k}.{b}", "a backend name: " + ", ".join(names), b)
        if self.expected_jobs() > MAX_JOBS:
            raise FieldError(
                "horizon", f"at most {MAX_JOBS:,} jobs in all", f"{self.expected_jobs():,}"
            )

    # --- sizes ---------------------------------------------------------------------
    @property
    def streams(self) -> list[str]:
        return [t.name for t in self.tasks] + [s.name for s in self.sessions]

    @property
    def backend_names(self) -> list[str]:
        return [b.name for b in self.backends]

    def frames(self, t: Task) -> int:
        """Frames released in [0, horizon)."""
        return max(0, math.ceil(self.horizon * t.fps - 1e-9))

    def expected_jobs(self) -> int:
        return sum(self.frames(t) for t in self.tasks) + sum(
            o for s in self.sessions for _, _, o in s.requests
        )

    @property
    def jobs(self) -> JobTable:
        jt: JobTable | None = self._jobs  # type: ignore[attr-defined]
        if jt is None:
            from optkit.realtime.times import expand

            jt = expand(self)
            object.__setattr__(self, "_jobs", jt)
        return jt

    # --- JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "problem": self.problem,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "horizon": self.horizon,
            "seed": self.seed,
            "interference": self.interference,
            "shared_bandwidth": self.shared_bandwidth,
            "backends": [
                {
                    "name": b.name,
                    **({"hardware": b.hardware} if b.hardware else {}),
                    "flops": dict(b.flops),
                    "bandwidth": b.bandwidth,
                    "memory": b.memory,
                    "overhead": b.overhead,
                }
                for b in self.backends
            ],
            "networks": {
                k: {
                    "dtype": n.dtype,
                    "weight_bytes": n.weight_bytes,
                    "flops": list(n.flops),
                    "bytes": list(n.bytes),
                }
                for k, n in self.networks.items()
            },
            "tasks": [
                {
                    "name": t.name,
                    "model": t.model,
                    "fps": t.fps,
                    "deadline": t.deadline,
                    "jitter": t.jitter,
                    "after": t.after or None,
                    "probability": t.probability,
                    "weight": t.weight,
                }
                for t in self.tasks
            ],
            "llm": [
                {
                    "name": s.name,
                    "model": s.model,
                    "weight_bits": s.weight_bits,
                    "ttft": s.ttft,
                    "tps": s.tps,
                    "weight": s.weight,
                    "requests": [
                        {"arrival": a, "prompt": p, "output": o} for a, p, o in s.requests
                    ],
                }
                for s in self.sessions
            ],
        }
        if self.times:
            d["times"] = self.times
        if self.meta:
            d["generated_by"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RealtimeInstance:
        horizon = _positive(d, "horizon", "seconds")
        sbw = d.get("shared_bandwidth")
        backends = tuple(_backend(b, i) for i, b in enumerate(_list(d, "backends")))
        if sbw is None:
            sbw = max(b.bandwidth for b in backends) if backends else 1.0
        elif not is_real(sbw) or sbw <= 0:
            raise FieldError("shared_bandwidth", "a number > 0 (bytes/s)", sbw)
        seed = d.get("seed", 0)
        if not is_int(seed) or not 0 <= seed < 2**32:
            raise FieldError("seed", "an integer in [0, 2^32)", seed)
        inter = d.get("interference", True)
        if not isinstance(inter, bool):
            raise FieldError("interference", "true or false", inter)
        nets = d.get("networks", {})
        if not isinstance(nets, dict):
            raise FieldError("networks", "an object of networks by name", nets)
        times = d.get("times", {})
        if not isinstance(times, dict) or not all(
            isinstance(v, dict) and all(is_real(x) and x > 0 for x in v.values())
            for v in times.values()
        ):
            raise FieldError("times", "{model: {backend: seconds > 0}}", times)
        for key in ("tasks", "llm"):
            if not isinstance(d.get(key, []), list):
                raise FieldError(key, "a list", d.get(key))
        tasks = tuple(_task(t, i) for i, t in enumerate(d.get("tasks") or []))
        sessions = tuple(_session(s, i) for i, s in enumerate(d.get("llm") or []))
        if not tasks and not sessions:
            raise FieldError("tasks", "at least one task or LLM session", [])
        inst = cls(
            backends=backends,
            networks={str(k): _network(str(k), v) for k, v in nets.items()},
            tasks=tasks,
            sessions=sessions,
            horizon=horizon,
            shared_bandwidth=float(sbw),
            interference=inter,
            seed=seed,
            times={str(k): {str(b): float(x) for b, x in v.items()} for k, v in times.items()},
            name=str(d.get("name", "")),
            meta=dict(d.get("generated_by") or {}),
        )
        _ = inst.jobs  # expanded once here, so that a job no backend can run is bad input
        return inst


# --- parsing helpers -----------------------------------------------------------------


def _list(d: dict[str, Any], key: str) -> list[Any]:
    v = d.get(key)
    if not isinstance(v, list) or not v:
        raise FieldError(key, "a non-empty list", v)
    return v


def _positive(d: dict[str, Any], key: str, unit: str, where: str = "") -> float:
    v = d.get(key)
    if not is_real(v) or v <= 0:
        raise FieldError(where + key, f"a finite number > 0 ({unit})", v)
    return float(v)


def _backend(b: Any, i: int) -> Backend:
    at = f"backends[{i}]."
    if not isinstance(b, dict) or not isinstance(b.get("name"), str) or not b["name"]:
        raise FieldError(at + "name", "a backend name", b)
    hw = None
    if "hardware" in b:
        from optkit.costmodel import builtin_catalog

        try:
            hw = builtin_catalog().get_hardware(str(b["hardware"]))
        except KeyError as exc:
            raise FieldError(
                at + "hardware", "a hardware key of the catalog", b["hardware"]
            ) from exc
    flops = b.get("flops")
    if flops is None and hw is not None:
        flops = {t: v * 1e12 for t, v in hw.tflops.items()}
    if (
        not isinstance(flops, dict)
        or not flops
        or not all(is_real(v) and v > 0 for v in flops.values())
    ):
        raise FieldError(at + "flops", "{datatype: FLOP/s > 0}", flops)
    bw = b.get("bandwidth", None if hw is None else hw.bandwidth_gbs * 1e9)
    mem = b.get("memory", None if hw is None else hw.memory_gb * 1e9)
    for key, v, unit in (("bandwidth", bw, "bytes/s"), ("memory", mem, "bytes")):
        if not is_real(v) or v <= 0:
            raise FieldError(at + key, f"a finite number > 0 ({unit})", v)
    over = b.get("overhead", 0.0)
    if not is_real(over) or over < 0:
        raise FieldError(at + "overhead", "a number >= 0 (seconds per inference)", over)
    assert bw is not None and mem is not None
    return Backend(
        b["name"],
        {str(k): float(v) for k, v in flops.items()},
        float(bw),
        float(mem),
        float(over),
        str(b.get("hardware", "")),
    )


def _network(name: str, n: Any) -> Network:
    at = f"networks.{name}."
    if not isinstance(n, dict):
        raise FieldError(at[:-1], "an object with flops, bytes, weight_bytes", n)
    f, by = n.get("flops"), n.get("bytes")
    ok = isinstance(f, list) and isinstance(by, list) and len(f) == len(by) and f
    if not ok or not all(is_real(x) and x >= 0 for x in [*f, *by]):  # type: ignore[misc]
        raise FieldError(at + "flops", "per-layer FLOPs and bytes, two lists of equal length", f)
    wb = n.get("weight_bytes", 0.0)
    if not is_real(wb) or wb < 0:
        raise FieldError(at + "weight_bytes", "a number >= 0 (bytes)", wb)
    dt = n.get("dtype", "fp16")
    if dt not in DTYPE_BYTES:
        raise FieldError(at + "dtype", "one of " + ", ".join(DTYPE_BYTES), dt)
    assert isinstance(f, list) and isinstance(by, list)
    return Network(name, tuple(map(float, f)), tuple(map(float, by)), float(wb), dt)


def _task(t: Any, i: int) -> Task:
    at = f"tasks[{i}]."
    if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"]:
        raise FieldError(at + "name", "a task name", t)
    fps = _positive(t, "fps", "frames per second", at)
    dl = t.get("deadline")
    if dl is None:
        dl = 1.0 / fps
    elif not is_real(dl) or not dl > 0:
        raise FieldError(at + "deadline", "seconds > 0 (default: the period)", dl)
    jit = t.get("jitter", 0.0) or 0.0
    if not is_real(jit) or not 0 <= jit < dl:
        raise FieldError(at + "jitter", "seconds in [0, deadline)", jit)
    pr = t.get("probability", 1.0)
    if not is_real(pr) or not 0 <= pr <= 1:
        raise FieldError(at + "probability", "a number in [0, 1]", pr)
    w = t.get("weight", 1)
    if not is_int(w) or not 1 <= w <= 1000:
        raise FieldError(at + "weight", "an integer in [1, 1000]", w)
    if not isinstance(t.get("model"), str):
        raise FieldError(at + "model", "a network name", t.get("model"))
    after = t.get("after") or ""
    if not isinstance(after, str):
        raise FieldError(at + "after", "the name of the upstream task", after)
    return Task(t["name"], t["model"], fps, float(dl), float(jit), after, float(pr), w)


def _session(s: Any, i: int) -> Session:
    at = f"llm[{i}]."
    if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"]:
        raise FieldError(at + "name", "a session name", s)
    if not isinstance(s.get("model"), str):
        raise FieldError(at + "model", "an LLM of the catalog (e.g. llama-3.2-1b)", s.get("model"))
    reqs = s.get("requests")
    if not isinstance(reqs, list) or not reqs:
        raise FieldError(at + "requests", "a non-empty list of {arrival, prompt, output}", reqs)
    out = []
    for k, r in enumerate(reqs):
        w = f"{at}requests[{k}]"
        if not isinstance(r, dict):
            raise FieldError(w, "{arrival, prompt, output}", r)
        a = r.get("arrival")
        if not is_real(a) or a < 0:
            raise FieldError(w + ".arrival", "seconds >= 0", a)
        for key in ("prompt", "output"):
            if not is_int(r.get(key)) or not 1 <= r[key] <= 1_000_000:
                raise FieldError(f"{w}.{key}", "tokens: an integer in [1, 1,000,000]", r.get(key))
        out.append((float(a), int(r["prompt"]), int(r["output"])))
    wb = s.get("weight_bits", 4)
    if not is_real(wb) or not 1 <= wb <= 32:
        raise FieldError(at + "weight_bits", "bits per weight in [1, 32]", wb)
    w = s.get("weight", 1)
    if not is_int(w) or not 1 <= w <= 1000:
        raise FieldError(at + "weight", "an integer in [1, 1000]", w)
    return Session(
        s["name"],
        s["model"],
        tuple(sorted(out)),
        _positive(s, "ttft", "seconds", at),
        _positive(s, "tps", "tokens per second", at),
        float(wb),
        w,
    )
