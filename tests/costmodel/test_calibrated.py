"""The calibrated kernel model against Vidur's measured A100 kernels: the roofline stays
below every measurement, the calibrated time above the roofline, a fit on some models
predicts the others, and ``optkit calibrate`` writes a file that loads."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from optkit.costmodel import builtin_catalog
from optkit.costmodel.calibrated import ROOFLINE, Calibration, waves
from optkit.costmodel.fit import default_calibration, device_of, errors, fit, predict, read_profiles
from tests.clirun import run
from tests.conftest import SHARED, needs_shared

PROFILES = SHARED / "gpu_kernel_profiles"


@pytest.fixture(scope="module")
def kernels():
    if not PROFILES.is_dir():
        pytest.skip("../shared/data is not present")
    return read_profiles(PROFILES)


@pytest.fixture(scope="module")
def a100():
    return device_of(builtin_catalog().get_hardware("a100-80gb"))


def test_roofline_is_below_every_measured_kernel(kernels, a100):
    for kind, k in kernels.items():
        roof = predict(k, a100, ROOFLINE)
        assert np.all(roof <= k.seconds), (kind, float(np.max(roof / k.seconds)))


def test_calibrated_is_above_the_roofline(kernels, a100):
    cal = default_calibration()
    for kind, k in kernels.items():
        assert np.all(predict(k, a100, cal) >= predict(k, a100, ROOFLINE)), kind


def test_a_fit_on_four_models_predicts_the_other_four(kernels, a100):
    train_models = [
        "meta-llama_Llama-2-7b-hf",
        "meta-llama_Meta-Llama-3-8B",
        "meta-llama_Llama-2-70b-hf",
        "Qwen_Qwen-72B",
    ]
    rng = np.random.default_rng(1)
    train, test = {}, {}
    for kind, k in kernels.items():
        m = np.isin(k.model, train_models) if kind in ("gemm", "elem") else rng.random(len(k)) < 0.5
        train[kind], test[kind] = k.take(m), k.take(~m)
    cal = fit(train, a100, "test split")
    for kind, k in test.items():
        med = float(np.median(np.abs(errors(k, a100, cal))))
        rough = float(np.median(np.abs(errors(k, a100, ROOFLINE))))
        assert med <= 0.12 and med < rough / 3, (kind, med, rough)


def test_split_k_fills_the_sms():
    # 10 output tiles of 128x128 on 108 SMs: split-K into 10 slices keeps 100 busy
    assert waves(128, 1280, 108, 8192) == pytest.approx(100 / 108)
    # without room to split K the tiles alone count
    assert waves(128, 1280, 108, 256) == pytest.approx(10 / 108)
    # 1.1 waves pay for 2
    assert waves(128 * 119, 128, 108, 256) == pytest.approx(119 / 216)


def test_calibration_round_trip_and_bad_values():
    cal = default_calibration()
    assert Calibration.from_dict(cal.to_dict()) == cal
    with pytest.raises(ValueError, match="eta_gemm"):
        Calibration(eta_gemm=1.5)
    with pytest.raises(ValueError, match="unknown calibration fields: speed"):
        Calibration.from_dict({"speed": 1})


@needs_shared
def test_cli_calibrate_writes_a_loadable_file(tmp_path):
    sub = tmp_path / "profiles"
    sub.mkdir()
    for name in ("a100__microsoft_phi-2__linear_layers.csv", "a100_dgx__all_reduce.csv"):
        (sub / name).write_bytes((PROFILES / name).read_bytes())
    out = tmp_path / "cal.yaml"
    r = run("calibrate", "--profiles", sub, "--hardware", "a100-80gb", "--out", out)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(out.read_text())
    cal = Calibration.from_dict(doc["fitted"])
    assert 0 < cal.eta_gemm < 1 and set(cal.allreduce) == {2, 4, 8}
    assert doc["fit_errors"]["gemm"]["median_abs_rel_error"] < 0.15
    r = run("calibrate", "--profiles", tmp_path / "nothing", "--hardware", "a100-80gb")
    assert r.returncode == 2 and "no profile CSV files" in r.stderr
    r = run("calibrate", "--profiles", sub, "--hardware", "u280")
    assert r.returncode == 2 and "compute-unit count" in r.stderr


@pytest.mark.parametrize(
    ("key", "billions"),
    [
        ("phi-2", 2.7),
        ("codellama-34b", 33.7),
        ("qwen-72b", 72.3),
        ("internlm-20b", 20.0),
        ("mistral-7b", 7.24),
        ("gpt-j-6b", 6.05),
        ("falcon-180b", 179.5),
    ],
)
def test_new_catalog_models_have_their_published_size(key, billions):
    total = builtin_catalog().get_model(key).parameters()["total"]
    assert total == pytest.approx(billions * 1e9, rel=0.03)


# --- the calibrated forward and the cost contract ----------------------------------------


def test_cost_json_gives_the_prediction_and_the_roofline_beside_it():
    import json

    r = run(
        "cost",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--batch",
        "8",
        "--input",
        "1000",
        "--output",
        "200",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["calibrated"] and row["efficiency"] == "calibrated"
    for k in ("prefill", "decode_step", "request"):
        assert row[f"{k}_lb_s"] < row[f"{k}_s"] < 3 * row[f"{k}_lb_s"], k
    r = run(
        "cost",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--batch",
        "8",
        "--input",
        "1000",
        "--output",
        "200",
        "--json",
        "--efficiency",
        "roofline",
    )
    roof = json.loads(r.stdout)
    assert not roof["calibrated"]
    for k in ("prefill", "decode_step", "request"):
        assert roof[f"{k}_s"] == pytest.approx(row[f"{k}_lb_s"], rel=1e-12)
    # a device without calibration data falls back to the roofline and says so
    r = run("cost", "--model", "llama-2-7b", "--hardware", "u280", "--json")
    row = json.loads(r.stdout)
    assert not row["calibrated"] and row["prefill_s"] == row["prefill_lb_s"]
    r = run("cost", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--memory-eff", "0.7")
    assert r.returncode == 2 and "apply to --efficiency roofline" in r.stderr


@pytest.mark.parametrize("hardware", ["a100-80gb", "h100-sxm", "h200", "l40s"])
@pytest.mark.parametrize("model", ["llama-2-7b", "llama-3.1-70b", "mixtral-8x7b"])
def test_calibrated_passes_never_beat_the_roofline(model, hardware):
    from optkit.costmodel import Setup, forward
    from optkit.costmodel.predict import decode_total_time, forward_time
    from optkit.costmodel.roofline import decode_total_time as roof_total

    cat = builtin_catalog()
    m, hw = cat.get_model(model), cat.get_hardware(hardware)
    st = Setup(tp=4 if "70b" in model or "mixtral" in model else 1)
    b = np.array([1, 8, 64])
    for tokens, ctx in ((512, 0), (1, 2048), (128, 1024)):
        cal, parts = forward_time(m, hw, b, tokens, ctx, st)
        roof = forward(m, hw, b, tokens, ctx, st).time_s
        assert np.all(cal >= roof) and np.all(cal <= 10 * roof)
        assert all(np.all(np.asarray(v) >= 0) for v in parts.values())
    total = decode_total_time(m, hw, b, 100, 50, st)
    steps = sum(forward_time(m, hw, b, 1, c, st)[0] for c in range(100, 150))
    assert total == pytest.approx(steps, rel=1e-9)
    assert np.all(total >= roof_total(m, hw, b, 100, 50, st))


def test_h200_end_to_end_within_its_recorded_error():
    """The shipped calibration (fitted on A100 kernels) on whole passes measured on an
    H200: median error within 15% (the issue's target), the roofline about 40% low."""
    import json

    from optkit.costmodel import forward
    from optkit.costmodel.predict import forward_time
    from tests.conftest import ROOT

    doc = json.loads((ROOT / "benchmarks/costmodel/results/gpu_measured_h200.json").read_text())
    cat = builtin_catalog()
    hw = cat.get_hardware("h200")
    cal_e, roof_e = [], []
    for r in doc["rows"]:
        m = cat.get_model(r["model"])
        cal_e.append(
            abs(
                float(forward_time(m, hw, r["batch"], r["tokens"], r["context"])[0]) / r["seconds"]
                - 1
            )
        )
        roof_e.append(
            abs(
                float(forward(m, hw, r["batch"], r["tokens"], r["context"]).time_s) / r["seconds"]
                - 1
            )
        )
    assert np.median(cal_e) <= 0.15 and np.median(roof_e) > 0.3
