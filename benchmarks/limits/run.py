"""Time limits as wall-clock promises: wall time of the whole `optkit solve` process
(start to answer) for every method of every problem, on large instances, at several
limits. Target: wall <= limit x 1.05 + 0.5 s.

python benchmarks/limits/run.py [--limits 1 3 10]

Instances (generated with recorded seeds, written to benchmarks/limits/instances/):
P||Cmax 400 jobs x 40 machines, R||Cmax 10 x 200, bin packing 600 items with
W = 100,000, the bundled GH200 KV instance (6,400 steps) and the bundled GSM8K serving
fleet. A method refused for the instance (exit 2, e.g. a MILP above its size limit)
is recorded as refused. Results: benchmarks/limits/results/limits.csv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from optkit import problems  # noqa: E402
from optkit.io import write_csv, write_json  # noqa: E402


def instances() -> dict[str, Path]:
    rng = np.random.default_rng(2026)
    out = HERE / "instances"
    docs = {
        "pcmax-400x40": {
            "problem": "makespan",
            "format_version": 1,
            "machines": 40,
            "durations": rng.integers(100, 1000, 400).tolist(),
        },
        "rcmax-10x200": {
            "problem": "makespan",
            "format_version": 1,
            "times": rng.integers(10, 100, (10, 200)).tolist(),
        },
        "bpp-600-w1e5": {
            "problem": "binpacking",
            "format_version": 1,
            "capacity": 100_000,
            "sizes": rng.integers(20_000, 100_000, 600).tolist(),
        },
    }
    paths = {}
    for name, d in docs.items():
        p = out / f"{name}.json"
        if not p.exists():
            write_json(p, {**d, "name": name})
        paths[name] = p
    paths["kv-gh200"] = ROOT / "instances/kvcache/gh200-llama3.1-8b-p3100-d200-kv4x.json"
    paths["serving-gsm8k"] = ROOT / "instances/serving/gsm8k20-llama2-7b-a100x2.json"
    return paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limits", type=float, nargs="+", default=[1.0, 3.0])
    args = ap.parse_args()
    rows = []
    for name, path in instances().items():
        face = problems.get(json.loads(path.read_text())["problem"])
        for method in face.methods:
            for limit in args.limits:
                cmd = [sys.executable, "-m", "optkit.cli", "solve", str(path), "--json"]
                cmd += ["--method", method, "--time-limit", str(limit)]
                t0 = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True)
                wall = time.perf_counter() - t0
                status = json.loads(r.stdout)["status"] if r.returncode == 0 else "refused"
                if r.returncode not in (0, 2):
                    status = f"exit {r.returncode}"
                allowed = limit * 1.05 + 0.5
                rows.append(
                    {
                        "instance": name,
                        "method": method,
                        "limit_s": limit,
                        "wall_s": round(wall, 3),
                        "allowed_s": round(allowed, 3),
                        "within": wall <= allowed,
                        "status": status,
                    }
                )
                mark = "" if wall <= allowed else "  OVER"
                print(f"{name:14s} {method:13s} {limit:5.1f}s  wall {wall:6.2f}s {status}{mark}")
    p = write_csv(HERE / "results" / "limits.csv", rows)
    over = [r for r in rows if not r["within"] and r["status"] != "refused"]
    print(f"{len(rows)} runs, {len(over)} over the allowance -> {p}")


if __name__ == "__main__":
    main()
