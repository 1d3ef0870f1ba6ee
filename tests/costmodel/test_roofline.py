"""Roofline model: hand-checked counts, closed forms, monotonicity, vectorisation."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optkit.costmodel import (
    Attention,
    Efficiency,
    KvTier,
    Precision,
    Setup,
    attended_pairs,
    builtin_catalog,
    decode_step_time,
    decode_total_time,
    forward,
    kv_bytes_per_token_layer,
    kv_tokens_read,
    memory_bytes,
    prefill_time,
    request_time,
)
from optkit.costmodel.catalog import Fpga, Hardware, Link, Model

CAT = builtin_catalog()
LINK = Link("l", "test link", bandwidth_gbs=10.0, latency_us=1.0)
# tiny shapes so every count can be written by hand
TINY = Model(
    "tiny",
    "tiny",
    layers=1,
    hidden=8,
    heads=2,
    kv_heads=1,
    head_dim=4,
    ffn=16,
    ffn_gated=True,
    vocab=10,
    context=100,
)
HW = Hardware(
    "hw",
    "test device",
    "gpu",
    {"fp16": 1.0},
    memory_gb=1.0,
    bandwidth_gbs=1.0,
    interconnect=LINK,
    host_link=LINK,
)  # 1e12 FLOP/s, 1e9 B/s


def test_hand_checked_flops_and_bytes_of_one_decode_step():
    bd = forward(TINY, HW, batch=1, tokens=1, cached=3)
    # qkv 2*1*8*(2+2)*4 = 256; attn 4*1*2*4*A, A = 4 keys -> 128; out 2*(2*4)*8 = 128;
    # mlp 2*3*8*16 = 768; head 2*8*10 = 160
    assert float(bd.flops) == 256 + 128 + 128 + 768 + 160
    # bytes (fp16 = 2 B): qkv weights 8*16*2=256 + act (8+16)*2=48 + new K,V 2*4*2=16 -> 320
    # attn: Q and O 2*8*2=32, K,V of R=4 tokens 4*2*4*2=64 -> 96
    # out: weights 8*8*2=128 + act (8+8)*2=32 -> 160
    # mlp: weights 3*8*16*2=768 + act (2*8 + 3*16)*2=128 -> 896
    # head: weights 80*2=160 + act (8+10)*2=36 -> 196; embed 8*(2+2)=32
    assert float(bd.bytes) == 320 + 96 + 160 + 896 + 196 + 32
    # everything is memory-bound at 1 GB/s: time = bytes / 1e9
    assert float(bd.time_s) == pytest.approx(float(bd.bytes) / 1e9)
    assert bd.bottleneck == "memory"


def test_compute_bound_prefill_matches_flop_count():
    fast_mem = dataclasses.replace(HW, bandwidth_gbs=1e9)
    bd = forward(TINY, fast_mem, batch=2, tokens=64)
    assert float(bd.time_s) == pytest.approx(float(bd.flops) / 1e12, rel=1e-6)
    assert bd.bottleneck == "compute"


@pytest.mark.parametrize(
    "key, prec, expected",
    [
        ("llama-2-7b", "fp16", 2 * 32 * 128 * 2),  # MHA
        ("llama-2-70b", "fp16", 2 * 8 * 128 * 2),  # GQA, 8 KV heads
        ("llama-3.1-8b", "int8", 2 * 8 * 128 * 1),
        ("llama-2-70b", "w4a16kv4", 2 * 8 * 128 * (4 + 16 / 64) / 8),  # KV4, group-64 scales
        ("gpt2", "fp16", 2 * 12 * 64 * 2),
    ],
)
def test_kv_bytes_per_token_layer(key, prec, expected):
    assert kv_bytes_per_token_layer(CAT.get_model(key), Precision.parse(prec)) == expected


def test_weight_storage_bits_include_group_scales():
    assert Precision.parse("w4a16").weight_storage_bits == 4 + 16 / 128
    assert Precision.parse("w2a8kv4").weight_storage_bits == 2 + 16 / 128
    assert Precision.parse("int8").weight_storage_bits == 8
    assert Precision.parse("w8a8").math_type == "int8"
    assert Precision.parse("fp8").math_type == "fp8"
    assert Precision.parse("w4a16").math_type == "fp16"
    with pytest.raises(ValueError, match="unknown precision 'q4'"):
        Precision.parse("q4")


@given(
    p=st.integers(0, 300),
    s=st.integers(1, 60),
    w=st.one_of(st.just(float("inf")), st.integers(1, 200)),
    causal=st.booleans(),
)
def test_attended_pairs_closed_form(p, s, w, causal):
    pairs = [min(x, w) for x in range(p + 1, p + s + 1)]
    brute = sum(pairs) if causal else s * min(p + s, w)
    assert attended_pairs(p, s, w, causal) == brute
    # decode reads exactly the tokens it attends
    assert kv_tokens_read(p, 1, w) == min(p + 1, w)


SETUPS = [
    Setup(),
    Setup(tp=4),
    Setup(attention=Attention("lambda", sinks=4, local=60)),
    Setup(attention=Attention("topk", k=37), kv_tiers=(KvTier(0.4, 30.0),)),
    Setup(kv_tiers=(KvTier(0.3, 450.0), KvTier(0.1, 7.45)), precision=Precision.parse("w4a16kv4")),
]


@given(
    b=st.integers(1, 64),
    c0=st.integers(0, 400),
    n=st.integers(0, 120),
    i=st.integers(0, len(SETUPS) - 1),
    key=st.sampled_from(["llama-2-7b", "mixtral-8x7b", "llama-2-70b"]),
)
def test_decode_total_equals_the_sum_of_steps(b, c0, n, i, key):
    m, h, s = CAT.get_model(key), CAT.get_hardware("h100-sxm"), SETUPS[i]
    loop = sum(float(decode_step_time(m, h, b, c, s)) for c in range(c0, c0 + n))
    assert float(decode_total_time(m, h, b, c0, n, s)) == pytest.approx(loop, rel=1e-9, abs=1e-15)


def test_request_time_is_prefill_plus_decode_steps():
    m, h = CAT.get_model("llama-2-13b"), CAT.get_hardware("a100-80gb")
    t = float(request_time(m, h, 4, 300, 20))
    steps = sum(float(decode_step_time(m, h, 4, c)) for c in range(300, 319))
    assert t == pytest.approx(float(prefill_time(m, h, 4, 300)) + steps)


hw_keys = st.sampled_from(["a100-80gb", "h100-sxm", "rtx-4090", "mi300x", "u280", "xeon-8480"])
model_keys = st.sampled_from(
    ["llama-2-7b", "llama-3.1-8b", "mixtral-8x7b", "deepseek-moe-16b", "gpt2"]
)


@given(
    mk=model_keys,
    hk=hw_keys,
    b=st.integers(1, 256),
    c=st.integers(0, 8000),
    i=st.integers(0, len(SETUPS) - 1),
)
def test_more_batch_never_lowers_decode_time(mk, hk, b, c, i):
    m, h, s = CAT.get_model(mk), CAT.get_hardware(hk), SETUPS[i]
    assert decode_step_time(m, h, b + 1, c, s) >= decode_step_time(m, h, b, c, s)
    assert decode_step_time(m, h, b, c + 1, s) >= decode_step_time(m, h, b, c, s)


@given(
    mk=model_keys, hk=hw_keys, b=st.integers(1, 256), c=st.integers(0, 8000), f=st.floats(1.01, 10)
)
def test_more_bandwidth_or_compute_never_raises_time(mk, hk, b, c, f):
    m, h = CAT.get_model(mk), CAT.get_hardware(hk)
    faster_mem = dataclasses.replace(h, bandwidth_gbs=h.bandwidth_gbs * f)
    faster_math = dataclasses.replace(h, tflops={k: v * f for k, v in h.tflops.items()})
    base = decode_step_time(m, h, b, c)
    assert decode_step_time(m, faster_mem, b, c) <= base
    assert decode_step_time(m, faster_math, b, c) <= base
    assert prefill_time(m, faster_mem, b, 256) <= prefill_time(m, h, b, 256)


def test_vectorised_over_configurations_equals_one_by_one():
    models = [CAT.get_model(k) for k in ("llama-2-7b", "mixtral-8x7b", "gpt2", "qwen2-57b-a14b")]
    hws = [CAT.get_hardware(k) for k in ("a100-80gb", "h200", "u280", "mi300x")]
    b = np.array([1, 8, 2, 32])
    c = np.array([100, 2000, 50, 700])
    many = forward(models, hws, b, 1, c).time_s
    one = [
        float(forward(m, h, int(bb), 1, int(cc)).time_s)
        for m, h, bb, cc in zip(models, hws, b, c, strict=True)
    ]
    np.testing.assert_allclose(many, one, rtol=1e-12)
    grid = decode_step_time(
        models[0], hws[0], np.arange(1, 65)[:, None], np.arange(0, 4096, 64)[None, :]
    )
    assert grid.shape == (64, 64)
    assert float(grid[7, 3]) == pytest.approx(float(decode_step_time(models[0], hws[0], 8, 192)))


def test_moe_decode_reads_top_k_experts_and_prefill_reads_all():
    m, h = CAT.get_model("mixtral-8x7b"), CAT.get_hardware("h100-sxm")
    expert_bytes = 3 * 4096 * 14336 * 2
    one = forward(m, h, 1, 1, 0).ops["experts"] / m.layers
    assert float(one) == pytest.approx(2 * expert_bytes / 3.35e12, rel=1e-3)
    many = forward(m, h, 1, 4096, 0)
    mem_all = 8 * expert_bytes / 3.35e12
    assert float(many.ops["experts"] / m.layers) >= mem_all


def test_tensor_parallel_shards_weights_and_adds_allreduce():
    m, h = CAT.get_model("llama-2-70b"), CAT.get_hardware("h100-sxm")
    t1 = forward(m, h, 1, 1, 100, Setup(tp=1))
    t8 = forward(m, h, 1, 1, 100, Setup(tp=8))
    assert float(t8.ops["allreduce"]) > 0 == float(t1.ops["allreduce"])
    msg = 8192 * 2
    ar = 5e-6 + 14 * 1e-6 + 14 / 8 * msg / 450e9
    ag = 5e-6 + 7 * 1e-6 + 7 / 8 * 32000 * 2 / 450e9
    assert float(t8.ops["allreduce"]) == pytest.approx(160 * ar)
    assert float(t8.ops["allgather"]) == pytest.approx(ag)
    w1 = memory_bytes(m, 1, 100, Setup(tp=1))["weights"]
    w8 = memory_bytes(m, 1, 100, Setup(tp=8))["weights"]
    assert w8 == pytest.approx(w1 / 8)


def test_sparse_attention_cuts_long_context_decode():
    m, h = CAT.get_model("llama-2-7b"), CAT.get_hardware("a100-80gb")
    full = decode_step_time(m, h, 16, 32000)
    lam = decode_step_time(m, h, 16, 32000, Setup(attention=Attention("lambda", 4, 1020)))
    assert lam < full / 3
    short_full = decode_step_time(m, h, 16, 500)
    short_lam = decode_step_time(m, h, 16, 500, Setup(attention=Attention("lambda", 4, 1020)))
    assert short_lam == short_full  # inside the window nothing changes
    kept = memory_bytes(m, 1, 32000, Setup(attention=Attention("lambda", 4, 1020)))["kv_cache"]
    assert kept == 1024 * 32 * 16384
    topk = memory_bytes(m, 1, 32000, Setup(attention=Attention("topk", k=1024)))["kv_cache"]
    assert topk == 32000 * 32 * 16384  # top-k must keep every token reachable


def test_kv_tiers_are_read_concurrently():
    m, h = CAT.get_model("llama-2-7b"), CAT.get_hardware("gh200")
    b, c = 64, 8000
    base = forward(m, h, b, 1, c)
    kv = b * (c + 1) * 16384
    other = 2 * b * 4096 * 2
    for frac, bw in [(0.0, 450.0), (0.05, 450.0), (0.5, 450.0)]:
        bd = forward(m, h, b, 1, c, Setup(kv_tiers=(KvTier(frac, bw),)))
        per_layer = max((other + (1 - frac) * kv) / 4.9e12, frac * kv / (bw * 1e9))
        compute = 4 * b * 32 * 128 * (c + 1) / 989.5e12
        assert float(bd.ops["attn"]) == pytest.approx(32 * max(per_layer, compute))
    # a small share over the link is free (hidden behind HBM), a large one is not
    small = forward(m, h, b, 1, c, Setup(kv_tiers=(KvTier(0.05, 450.0),)))
    big = forward(m, h, b, 1, c, Setup(kv_tiers=(KvTier(0.5, 450.0),)))
    assert small.time_s < base.time_s < big.time_s


def test_fpga_keeps_small_models_on_chip():
    small = Model(
        "s",
        "s",
        layers=2,
        hidden=256,
        heads=4,
        kv_heads=4,
        head_dim=64,
        ffn=1024,
        ffn_gated=False,
        vocab=1000,
        context=512,
    )
    fpga = Hardware(
        "f",
        "f",
        "fpga",
        {"int8": 1.0},
        8,
        460,
        LINK,
        LINK,
        fpga=Fpga(1000, 200, {"int8": 2}, onchip_mb=40),
    )
    on = forward(small, fpga, 1, 1, 10, Setup(precision=Precision.parse("int8")))
    assert on.bottleneck == "compute"  # weights from SRAM, activations stay on chip
    off = forward(
        CAT.get_model("llama-2-7b"), fpga, 1, 1, 10, Setup(precision=Precision.parse("int8"))
    )
    assert off.bottleneck == "memory"
    assert float(off.time_s) >= 6.5e9 / 460e9  # every weight but the embedding table


def test_efficiency_scales_time():
    m, h = CAT.get_model("llama-2-7b"), CAT.get_hardware("a100-80gb")
    t = decode_step_time(m, h, 1, 100)
    half = decode_step_time(m, h, 1, 100, Setup(efficiency=Efficiency(memory=0.5)))
    assert float(half) == pytest.approx(2 * float(t), rel=1e-9)
    with pytest.raises(ValueError, match=r"efficiency\.memory"):
        Efficiency(memory=0)
