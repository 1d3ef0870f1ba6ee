"""Serving benchmarks (results in benchmarks/serving/results/).

python benchmarks/serving/run.py gsm8k    # the GSM8K case: LLaMA-65B on one 8 x A100-80GB node
python benchmarks/serving/run.py study    # 100 cases: trace samples x client counts
python benchmarks/serving/run.py online   # Azure conversation trace, real arrivals
python benchmarks/serving/run.py perf     # decision cost at batch 256, simulator speed
python benchmarks/serving/run.py mip      # tiny instances: T^LB and schedulers vs the optimum
python benchmarks/serving/run.py calibrate  # the insertion test's multiplier, on 30 study cases
python benchmarks/serving/run.py cases    # issue 19's four Azure windows (calibrated times)
python benchmarks/serving/run.py tables   # README tables from results/study.csv (no solving)
python benchmarks/serving/run.py all

Instances use roofline iteration times (``efficiency="roofline"``): the recorded results
and the seed paper's comparison were made with them; ``serving_instance``'s default is
now the calibrated times (formulations/serving.md, "Which times").
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from optkit.costmodel import Setup, builtin_catalog
from optkit.costmodel.traces import read_trace
from optkit.io import FieldError, write_csv
from optkit.serving import (
    ClientState,
    Hybrid,
    check,
    lower_bound,
    metrics,
    packing_assignment,
    simulate,
)
from optkit.serving.generate import serving_instance

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE.parents[2] / "shared" / "data"
CAT = builtin_catalog()
TRACES = {
    "gsm8k": DATA / "gsm8k" / "token_counts.csv",
    "sharegpt": DATA / "sharegpt_lengths" / "sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
    "arxiv": DATA
    / "arxiv_summarization_lengths"
    / "arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
    "azure-conv": DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_conv_until_1855.csv",
    "azure-code": DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_code_until_1855.csv",
}


def _write(name: str, rows: list[dict]) -> None:
    write_csv(RESULTS / name, rows)


def _run_pair(inst, plan_time=10.0):
    """Baseline (fcfs, online dispatch) and hybrid (packing plan + hybrid scheduler)."""
    lb = lower_bound(inst).value
    base = simulate(inst, "fcfs", record=True)
    assign, _ = packing_assignment(inst, plan_time)
    hyb = simulate(inst, "hybrid", assign, record=True, order="output-desc")
    for r in (base, hyb):
        assert check(inst, r.schedule).valid
    return lb, base, hyb


def run_gsm8k() -> None:
    tr = read_trace(TRACES["gsm8k"])
    m, h = CAT.get_model("llama-65b"), CAT.get_hardware("a100-80gb")
    rows = []
    for clients, tp in ((2, 4), (4, 2), (1, 8)):
        inst = serving_instance(
            tr, m, h, clients, Setup(tp=tp), max_batch=256, arrivals=False, efficiency="roofline"
        )
        lb, base, hyb = _run_pair(inst)
        for label, r in (("baseline fcfs", base), ("hybrid (plan, mixed insertion)", hyb)):
            mt = metrics(inst, r)
            rows.append(
                {
                    "layout": f"{clients} x TP{tp}",
                    "kv_tokens_per_client": inst.kv_tokens,
                    "scheduler": label,
                    "total_time_s": round(r.makespan, 3),
                    "T_LB_s": round(lb, 3),
                    "gap": round((r.makespan - lb) / r.makespan, 4),
                    "utilization_busy": round(mt["utilization_busy"], 4),
                    "utilization_slots": round(mt["utilization_slots"], 4),
                    "ttft_p50_s": round(mt["ttft_p50_s"], 3),
                    "tpot_p50_s": round(mt["tpot_p50_s"], 5),
                }
            )
    _write("gsm8k.csv", rows)
    for r in rows:
        print(r)


def _study_case(rng, c: int, traces: dict):
    """Case c of the study: a request sample of one trace and a client layout."""
    m, h = CAT.get_model("llama-65b"), CAT.get_hardware("a100-80gb")
    name = list(traces)[c % len(traces)]
    tr = traces[name]
    n = int(rng.integers(200, 1001))
    idx = rng.choice(len(tr), size=n, replace=False)
    sub = tr.__class__(
        name,
        tr.layout,
        np.zeros(n),
        tr.prompt[idx],
        tr.output[idx],
        tuple(tr.ids[i] for i in idx),
    )
    clients, tp = [(1, 8), (2, 4), (4, 2)][int(rng.integers(0, 3))]
    try:
        inst = serving_instance(
            sub, m, h, clients, Setup(tp=tp), arrivals=False, efficiency="roofline"
        )
    except FieldError:  # a long request does not fit a TP2 client's KV: use 2 x TP4
        clients, tp = 2, 4
        inst = serving_instance(
            sub, m, h, clients, Setup(tp=tp), arrivals=False, efficiency="roofline"
        )
    return name, n, clients, tp, inst


def _study_traces() -> dict:
    return {k: read_trace(v) for k, v in TRACES.items() if not k.startswith("azure")}


AZURE_MODELS = {  # model: the layouts (clients, TP) it is run in on 8 x A100-80GB
    "llama-65b": ((1, 8), (2, 4), (4, 2)),
    "llama-2-70b": ((1, 8), (2, 4), (4, 2)),
    "llama-2-13b": ((2, 4), (4, 2), (4, 1)),
}


def _azure_case(rng, c: int, traces: dict):
    """Case c of the Azure study: a window of one service at t = 0, calibrated times."""
    service = ("azure-conv", "azure-code")[c % 2]
    tr = traces[service]
    model = list(AZURE_MODELS)[(c // 2) % len(AZURE_MODELS)]
    layouts = AZURE_MODELS[model]
    clients, tp = layouts[int(rng.integers(0, len(layouts)))]
    n = int(rng.integers(500, 1501))
    offset = int(rng.integers(0, len(tr) - n))
    sub = tr.slice(offset, n)
    m, h = CAT.get_model(model), CAT.get_hardware("a100-80gb")
    try:
        inst = serving_instance(sub, m, h, clients, Setup(tp=tp), arrivals=False)
    except (FieldError, ValueError):  # a request does not fit the client's KV
        clients, tp = 2, 4
        inst = serving_instance(sub, m, h, clients, Setup(tp=tp), arrivals=False)
    return f"{service}@{offset}", n, clients, tp, inst


def _case_row(args) -> dict:
    """Every scheduler, the plan and solve on one case (run in a worker process)."""
    from optkit.serving import solve
    from optkit.solvers import SolverOptions

    kind, c, seed = args
    rng = np.random.default_rng(seed)
    if kind == "azure":
        traces = {k: read_trace(v) for k, v in TRACES.items() if k.startswith("azure")}
        name, n, clients, tp, inst = _azure_case(rng, c, traces)
    else:
        name, n, clients, tp, inst = _study_case(rng, c, _study_traces())
    lb = lower_bound(inst).value
    row = {"study": kind, "case": c, "seed": seed, "trace": name, "requests": n}
    row |= {"model": inst.meta.get("model"), "clients": clients, "tp": tp, "T_LB_s": lb}
    runs = {
        "fcfs": simulate(inst, "fcfs", record=True),
        "sarathi": simulate(inst, "sarathi", record=True),
        "hybrid": simulate(inst, "hybrid", record=True),
        "hybrid_prompt": simulate(inst, "hybrid", record=True, order="prompt"),
        "hybrid_paced": simulate(inst, "hybrid", record=True, pace=True),
        "hybrid_stall": simulate(inst, "hybrid", record=True, mix=False),
    }
    for key, r in runs.items():
        assert check(inst, r.schedule).valid
        row[f"{key}_s"] = round(r.makespan, 4)
        row[f"{key}_slots"] = round(metrics(inst, r)["utilization_slots"], 4)
    t0 = time.perf_counter()
    res = solve(inst, "auto", SolverOptions(time_limit_s=10))
    row["solve_s"] = round(res.objective, 4)
    row["solve_method"] = res.method
    row["solve_wall_s"] = round(time.perf_counter() - t0, 2)
    for key in ("fcfs", "hybrid", "solve"):
        row[f"gap_{key}"] = round(1 - lb / row[f"{key}_s"], 4)
    row["hybrid_gain_over_fcfs"] = round(1 - row["hybrid_s"] / row["fcfs_s"], 4)
    for key in ("hybrid_prompt", "hybrid_paced"):
        row[f"{key}_gain_over_fcfs"] = round(1 - row[f"{key}_s"] / row["fcfs_s"], 4)
    assert lb <= min(row[f"{k}_s"] for k in (*runs, "solve")) * (1 + 1e-9)
    return row


def _summary(rows: list[dict], label: str, key: str = "hybrid") -> None:
    g = np.array([r[f"{key}_gain_over_fcfs"] for r in rows])
    gs = np.array([r["gap_solve"] for r in rows])
    print(
        f"{label}: {len(rows)} cases; {key} vs fcfs: mean gain {g.mean():.4f}, "
        f"min {g.min():.4f}, no worse in {(g >= -1e-9).sum()}/{len(g)}; "
        f"solve gap to T^LB: mean {gs.mean():.4f}, max {gs.max():.4f}, "
        f"within 10% in {(gs <= 0.10).sum()}/{len(gs)}"
    )


def run_study(cases: int = 100, azure_cases: int = 40) -> None:
    """The 100-case study (GSM8K, ShareGPT, arXiv samples, LLaMA-65B, roofline times)
    and Azure windows at t = 0 (conversation and code, three models, calibrated times).
    Seeds: case c of the study uses 2026 + c, of the Azure cases 4000 + c."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = [("study", c, 2026 + c) for c in range(cases)]
    jobs += [("azure", c, 4000 + c) for c in range(azure_cases)]
    with ProcessPoolExecutor(2) as pool:
        rows = list(pool.map(_case_row, jobs))
    _write("study.csv", rows)
    _summary([r for r in rows if r["study"] == "study"], "study (GSM8K/ShareGPT/arXiv)")
    _summary([r for r in rows if r["study"] == "azure"], "Azure windows")
    _summary(rows, "all")
    _summary(rows, "all", "hybrid_prompt")
    _summary(rows, "all", "hybrid_paced")


# issue 19's cases: (service, offset, requests, model, clients, tp); the issue did not
# record its windows, these offsets are ours
ISSUE_CASES = (
    ("azure-conv", 5000, 1000, "llama-65b", 2, 4),
    ("azure-code", 3000, 1000, "llama-65b", 2, 4),
    ("azure-conv", 8000, 1500, "llama-2-13b", 4, 1),
    ("azure-conv", 11000, 800, "llama-2-70b", 1, 8),
)


def run_cases() -> None:
    """Issue 19's four cases as ``generate serving`` builds them (calibrated times,
    all requests at t = 0): T^LB, every scheduler and ``solve`` with a 10 s limit."""
    from optkit.serving import solve
    from optkit.solvers import SolverOptions

    rows = []
    for service, offset, n, model, clients, tp in ISSUE_CASES:
        tr = read_trace(TRACES[service]).slice(offset, n)
        m, h = CAT.get_model(model), CAT.get_hardware("a100-80gb")
        inst = serving_instance(tr, m, h, clients, Setup(tp=tp), arrivals=False)
        row = {"trace": f"{service}@{offset}", "requests": n, "model": model}
        row |= {"clients": clients, "tp": tp, "T_LB_s": round(lower_bound(inst).value, 3)}
        for key, kw in (
            ("fcfs", {}),
            ("sarathi", {}),
            ("hybrid", {}),
            ("hybrid_stall", {"mix": False}),
        ):
            r = simulate(inst, key.split("_")[0], record=True, **kw)
            assert check(inst, r.schedule).valid
            row[f"{key}_s"] = round(r.makespan, 3)
        t0 = time.perf_counter()
        res = solve(inst, "auto", SolverOptions(time_limit_s=10))
        row |= {"solve_s": round(res.objective, 3), "solve_method": res.method}
        row["solve_wall_s"] = round(time.perf_counter() - t0, 2)
        row["gap_solve"] = round(1 - row["T_LB_s"] / row["solve_s"], 4)
        print(row)
        rows.append(row)
    _write("issue_cases.csv", rows)


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%".replace("-", "\u2212")


def study_tables(path: Path | None = None) -> str:
    """The README's summary and per-group tables of the study, from its CSV."""
    import csv

    with open(path or RESULTS / "study.csv", newline="") as f:
        rows = [
            {
                k: (
                    float(v)
                    if k.endswith(("_s", "_slots", "_gain_over_fcfs")) or k.startswith("gap_")
                    else v
                )
                for k, v in r.items()
            }
            for r in csv.DictReader(f)
        ]

    def change(r: dict, key: str) -> float:  # makespan change against FCFS
        return r[f"{key}_s"] / r["fcfs_s"] - 1

    def no_worse(key: str) -> str:
        ch = np.array([change(r, key) for r in rows])
        return f"{(ch <= 1e-9).sum()} / {len(ch)}, mean {_pct(ch.mean())}"

    ch = np.array([change(r, "hybrid") for r in rows])
    chp = np.array([change(r, "hybrid_prompt") for r in rows])
    slots = np.array([r["hybrid_slots"] - r["fcfs_slots"] for r in rows])
    gap = np.array([r["gap_solve"] for r in rows])
    wall = np.array([r["solve_wall_s"] for r in rows])
    out = [
        "| measure | value |",
        "| --- | --- |",
        f"| hybrid (default) no worse than FCFS | **{no_worse('hybrid')}**, "
        f"least {_pct(ch.max())} |",
        f"| hybrid, shortest prompt first | {no_worse('hybrid_prompt')}, worst {_pct(chp.max())} |",
        f"| hybrid, paced (offline) | {no_worse('hybrid_paced')} |",
        f"| the published stalling test (`mix=False`) | {no_worse('hybrid_stall')} |",
        f"| batch-slot utilisation, hybrid \u2212 FCFS | {100 * slots.mean():+.1f} points (mean) |",
        f"| `solve` gap to T^LB (1 \u2212 T^LB / makespan) | mean {100 * gap.mean():.1f}%, worst "
        f"{100 * gap.max():.1f}%, \u2264 10% in {(gap <= 0.10).sum()} / {len(gap)} |",
        f"| `solve` wall time (10 s limit) | median {np.median(wall):.1f} s, "
        f"max {wall.max():.1f} s |",
        "",
        "| trace | model | layout | cases | hybrid vs FCFS, mean [least] "
        "| stalling test vs FCFS, mean | solve gap, mean [worst] |",
        "| --- | --- | --- | ---: | --- | --- | --- |",
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["trace"].split("@")[0], r["model"], f"{r['clients']} \u00d7 TP{r['tp']}")
        groups.setdefault(key, []).append(r)
    for key in sorted(groups):
        g = groups[key]
        h = np.array([change(r, "hybrid") for r in g])
        st = np.array([change(r, "hybrid_stall") for r in g])
        gs = np.array([r["gap_solve"] for r in g])
        least = f" [{_pct(h.max())}]" if len(g) > 1 else ""
        worst = f" [{100 * gs.max():.1f}%]" if len(g) > 1 else ""
        out.append(
            f"| {' | '.join(key)} | {len(g)} | {_pct(h.mean())}{least} | {_pct(st.mean())} "
            f"| {100 * gs.mean():.1f}%{worst} |"
        )
    return "\n".join(out)


def run_tables() -> None:
    print(study_tables())


def run_online(n: int = 2000) -> None:
    tr = read_trace(TRACES["azure-conv"]).slice(0, n)
    m, h = CAT.get_model("llama-2-13b"), CAT.get_hardware("a100-80gb")
    inst = serving_instance(tr, m, h, 2, Setup(tp=1), max_batch=128, efficiency="roofline")
    lb = lower_bound(inst).value
    rows = []
    for sched, kw in (("fcfs", {}), ("sarathi", {}), ("hybrid", {})):
        r = simulate(inst, sched, record=True, **kw)
        assert check(inst, r.schedule).valid
        mt = metrics(inst, r)
        rows.append(
            {
                "scheduler": sched,
                "makespan_s": round(r.makespan, 3),
                "T_LB_s": round(lb, 3),
                **{
                    k: round(mt[k], 5)
                    for k in (
                        "ttft_p50_s",
                        "ttft_p90_s",
                        "ttft_p99_s",
                        "tpot_p50_s",
                        "tpot_p90_s",
                        "tpot_p99_s",
                        "utilization_busy",
                        "utilization_slots",
                    )
                },
            }
        )
    _write("online_azure.csv", rows)
    for r in rows:
        print(r)


WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 1e9)


def run_calibrate(cases: int = 30) -> None:
    """The insertion test's multiplier: makespan of the hybrid plan per weight.

    weight 0 never stalls a running batch for a prefill (decode first); 1e9 always
    does (prefill priority, in the sorted order); 1 is the Lagrangian test as derived.
    The cases are the first ``cases`` of the study (same seed).
    """
    traces = _study_traces()
    rows = []
    for c in range(cases):
        name, n, clients, _, inst = _study_case(np.random.default_rng(2026 + c), c, traces)
        assign, _ = packing_assignment(inst, 2.0)
        lb = lower_bound(inst).value
        row = {"case": c, "trace": name, "requests": n, "clients": clients, "T_LB_s": lb}
        for w in WEIGHTS:
            r = simulate(inst, "hybrid", assign, order="output-desc", weight=w, mix=False)
            row[f"w{w:g}_s"] = round(r.makespan, 4)
        rows.append(row)
    _write("calibration.csv", rows)
    for w in WEIGHTS:
        rel = [r[f"w{w:g}_s"] / r["w1_s"] for r in rows]
        gap = [1 - r["T_LB_s"] / r[f"w{w:g}_s"] for r in rows]
        best = sum(r[f"w{w:g}_s"] <= min(r[f"w{x:g}_s"] for x in WEIGHTS) + 1e-9 for r in rows)
        print(
            f"weight {w:g}: makespan / (weight 1) mean {np.mean(rel):.4f} "
            f"[{np.min(rel):.3f}, {np.max(rel):.3f}], gap to T^LB mean {np.mean(gap):.4f}, "
            f"best in {best}/{len(rows)}"
        )


def run_perf() -> None:
    # decision cost of Hybrid.next_iteration with 256 running sequences and a waiting queue
    inst_prompt = np.full(10_000, 200)
    est = np.full(10_000, 300)
    from optkit.serving import IterationModel

    it = IterationModel(0.03, 2e-4, 4e-9, 6e-7, 1e-3)
    times = []
    for rep in range(2000):
        st = ClientState(inst_prompt, est, it, max_batch=512, kv_tokens=10**9)
        st.running, st.context, st.remaining = 256, 256 * 700.0, 256 * 150.0
        sched = Hybrid()
        for j in range(rep % 7, 64 + rep % 7):
            sched.on_arrival(j, st)
        t0 = time.perf_counter()
        sched.next_iteration(st)
        times.append(time.perf_counter() - t0)
    decision_us = statistics.median(times) * 1e6
    # simulator: decode iterations per second on a decode-heavy instance
    tr = read_trace(TRACES["sharegpt"]).slice(0, 4000)
    m, h = CAT.get_model("llama-2-7b"), CAT.get_hardware("a100-80gb")
    inst = serving_instance(
        tr, m, h, 4, Setup(), max_batch=256, arrivals=False, efficiency="roofline"
    )
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = simulate(inst, "hybrid")
        dt = time.perf_counter() - t0
        rates.append(sum(c.decode_iterations for c in r.clients) / dt)
    row = {
        "hybrid_decision_us_median_batch256": round(decision_us, 2),
        "simulator_decode_iterations_per_s": round(statistics.median(rates)),
    }
    _write("perf.csv", [row])
    print(row)


def run_mip(cases: int = 60) -> None:
    """Exact optima of tiny random instances (the MIP), against T^LB and every scheduler.

    Iteration model: the weight floor tau_w = 10 ms is reached at 2.5 new tokens
    (kappa = 4 ms), so both the memory-bound and the compute-bound piece matter at
    these sizes; prompts of 0-4 tokens, outputs of 1-4, arrivals within 2 iterations.
    """
    from optkit.serving import SCHEDULERS, IterationModel, ServingInstance, solve
    from optkit.solvers import SolverOptions

    it = IterationModel(tau_w=0.01, kappa=0.004, gamma=1e-3, delta=1e-3, tau_c=1e-3)
    rng = np.random.default_rng(7)
    rows = []
    for case in range(cases):
        n = int(rng.integers(2, 6))
        prompt = rng.integers(0, 5, n)
        output = rng.integers(1, 5, n)
        arrival = np.round(rng.choice([0.0, 0.0, 0.005, 0.01, 0.02], n), 3)
        B = int(rng.integers(1, 4))
        M = int((prompt + output).max() + rng.integers(0, 6))
        inst = ServingInstance(
            int(rng.integers(1, 3)), B, M, it, arrival, prompt, output, name=f"tiny-{case}"
        )
        t0 = time.perf_counter()
        res = solve(inst, "mip", SolverOptions(time_limit_s=60))
        row = {
            "case": case,
            "n": n,
            "clients": inst.clients,
            "B": B,
            "M": M,
            "status": res.status.value,
            "optimum_s": res.objective,
            "mip_bound_s": res.bound,
            "t_lb_s": lower_bound(inst).value,
            "mip_time_s": round(time.perf_counter() - t0, 3),
        }
        for name in SCHEDULERS:
            row[f"{name}_s"] = simulate(inst, name).makespan
        row["sarathi2_s"] = simulate(inst, "sarathi", token_budget=2).makespan
        rows.append(row)
    _write("mip_tiny.csv", rows)
    opt = [r for r in rows if r["status"] == "OPTIMAL"]
    lb_ratio = [r["t_lb_s"] / r["optimum_s"] for r in opt]
    print(
        f"{len(opt)}/{len(rows)} solved to optimality; median MIP time "
        f"{statistics.median(r['mip_time_s'] for r in rows):.2f} s, "
        f"max {max(r['mip_time_s'] for r in rows):.2f} s"
    )
    print(f"T^LB / optimum: median {statistics.median(lb_ratio):.3f}, min {min(lb_ratio):.3f}")
    for name in (*SCHEDULERS, "sarathi2"):
        ratios = [r[f"{name}_s"] / r["optimum_s"] for r in opt]
        hit = sum(x <= 1 + 1e-9 for x in ratios)
        print(
            f"{name:9s} / optimum: median {statistics.median(ratios):.3f}, "
            f"max {max(ratios):.3f}, optimal in {hit}/{len(opt)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "what",
        choices=["gsm8k", "study", "online", "perf", "mip", "calibrate", "cases", "tables", "all"],
    )
    a = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name, fn in (
        ("gsm8k", run_gsm8k),
        ("study", run_study),
        ("online", run_online),
        ("perf", run_perf),
        ("mip", run_mip),
        ("calibrate", run_calibrate),
        ("cases", run_cases),
        ("tables", run_tables),
    ):
        if a.what in (name, "all"):
            fn()


if __name__ == "__main__":
    main()
