"""Catalog: shipped entries, sources on every number, validation errors."""

import dataclasses

import pytest

from optkit.costmodel import builtin_catalog, load_catalog
from optkit.costmodel.loader import parse_catalog
from optkit.io import FieldError, InputError

DESIGN_MODELS = [
    "llama-65b",
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "mixtral-8x7b",
    "deepseek-moe-16b",
    "qwen1.5-moe-a2.7b",
    "qwen2-57b-a14b",
    "gpt2",
    "bert-base",
]
DESIGN_HARDWARE = [
    "a100-40gb",
    "a100-80gb",
    "h100-sxm",
    "h200",
    "gh200",
    "b200",
    "mi300x",
    "l40s",
    "rtx-4090",
    "ascend-910b",
    "xeon-8480",
    "ryzen-ai-cpu",
    "ryzen-ai-igpu",
    "ryzen-ai-npu",
    "u280",
    "vhk158",
]


def test_builtin_has_every_named_entry():
    cat = builtin_catalog()
    assert set(DESIGN_MODELS) <= set(cat.models)
    assert set(DESIGN_HARDWARE) <= set(cat.hardware)
    for tier in ("lpddr5x-gh200", "ddr5-4800-8ch", "cxl-memory", "nvme-pcie4"):
        assert tier in cat.tiers
    for link in ("pcie4-x16", "pcie5-x16", "nvlink4", "nvlink-c2c"):
        assert link in cat.links


def _numbers(obj, prefix=""):
    """Paths of every numeric field of a catalog entry."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.name in ("sources", "interconnect", "host_link", "host_memory"):
            continue
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            yield prefix + f.name
        elif isinstance(v, dict):
            for k in v:
                yield f"{prefix}{f.name}.{k}"
        elif dataclasses.is_dataclass(v):
            yield from _numbers(v, f"{prefix}{f.name}.")


@pytest.mark.parametrize("section", ["hardware", "models", "tiers", "links"])
def test_every_number_has_a_source(section):
    cat = builtin_catalog()
    for key, entry in getattr(cat, section).items():
        for path in _numbers(entry):
            if (
                path
                in (
                    "head_dim",
                    "kv_heads",
                    "experts",
                    "top_k",
                    "expert_ffn",
                    "shared_ffn",
                    "dense_layers",
                )
                and path not in entry.sources
            ):
                # defaults (head_dim = hidden/heads, dense: no experts) are derived, not data
                continue
            src = entry.sources.get(path)
            assert src and len(src) > 8, f"{section}.{key}.{path} has no source"


@pytest.mark.parametrize(
    "key, hf_params",
    [
        ("llama-2-7b", 6_738_415_616),
        ("llama-2-13b", 13_015_864_320),
        ("llama-2-70b", 68_976_648_192),
        ("llama-3.1-8b", 8_030_261_248),
        ("mixtral-8x7b", 46_702_792_704),
    ],
)
def test_parameter_counts_match_published(key, hf_params):
    m = builtin_catalog().get_model(key)
    norms = (2 * m.layers + 1) * m.hidden  # RMSNorm weights, not counted by the model
    assert m.parameters()["total"] + norms == hf_params


def test_moe_active_parameters():
    cat = builtin_catalog()
    assert cat.get_model("mixtral-8x7b").parameters()["active"] == pytest.approx(12.9e9, rel=0.01)
    assert cat.get_model("qwen1.5-moe-a2.7b").parameters()["active"] == pytest.approx(
        2.7e9, rel=0.01
    )
    assert cat.get_model("qwen2-57b-a14b").parameters()["active"] == pytest.approx(14e9, rel=0.02)


def test_fpga_peak_is_derived_from_dsps():
    u = builtin_catalog().get_hardware("u280")
    assert u.tflops["int8"] == pytest.approx(9024 * 2 * 2 * 225e6 / 1e12)
    assert u.sources["tflops.int8"].startswith("derived")


def test_user_catalog_adds_entries(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(
        "hardware:\n"
        "  my-gpu:\n"
        "    kind: gpu\n"
        "    source: my lab measurement, 2026-11\n"
        "    tflops: {fp16: 100}\n"
        "    memory_gb: 16\n"
        "    bandwidth_gbs: 500\n"
        "    interconnect: pcie4-x16\n"
        "    host_link: pcie4-x16\n"
    )
    cat = load_catalog([f])
    h = cat.get_hardware("my-gpu")
    assert h.peak_flops("fp16") == 100e12
    assert h.peak_flops("int8") == 100e12  # falls back to fp16
    assert "a100-80gb" in cat.hardware


@pytest.mark.parametrize(
    "doc, field, expected",
    [
        (
            {"hardware": {"x": {"kind": "gpu", "tflops": {"fp16": 1}}}},
            "hardware.x.tflops.fp16",
            "a bare number needs",
        ),
        (
            {
                "models": {
                    "m": {
                        "source": "s",
                        "layers": 2,
                        "hidden": 8,
                        "heads": 3,
                        "kv_heads": 2,
                        "ffn": 4,
                        "vocab": 5,
                        "context": 6,
                    }
                }
            },
            "models.m.kv_heads",
            "a divisor of heads",
        ),
        (
            {
                "models": {
                    "m": {
                        "source": "s",
                        "layers": 2,
                        "hidden": 8,
                        "heads": 2,
                        "ffn": 4,
                        "vocab": 5,
                        "context": 6,
                        "hiden": 1,
                    }
                }
            },
            "models.m.hiden",
            "unknown field",
        ),
        (
            {
                "models": {
                    "m": {
                        "source": "s",
                        "layers": -2,
                        "hidden": 8,
                        "heads": 2,
                        "ffn": 4,
                        "vocab": 5,
                        "context": 6,
                    }
                }
            },
            "models.m.layers",
            "a positive number",
        ),
        (
            {
                "links": {
                    "l": {"bandwidth_gbs": {"value": 1}, "latency_us": {"value": 1, "source": "x"}}
                }
            },
            "links.l.bandwidth_gbs.source",
            "a non-empty text naming where",
        ),
        (
            {
                "hardware": {
                    "x": {
                        "source": "s",
                        "kind": "gpu",
                        "tflops": {"fp16": 1},
                        "memory_gb": 1,
                        "bandwidth_gbs": 1,
                        "interconnect": "warp-drive",
                        "host_link": "pcie4-x16",
                    }
                }
            },
            "hardware.x.interconnect",
            "the key of a link",
        ),
        ({"hardware": {"x": {"source": "s", "kind": "tpu"}}}, "hardware.x.kind", "one of gpu"),
        (
            {"hardware": {"x": {"source": "s", "kind": "npu", "tflops": {"int8": 50}}}},
            "hardware.x.tflops",
            "an fp16 or bf16 peak",
        ),
        ({"widgets": {}}, "widgets", "a section"),
    ],
)
def test_validation_errors_name_the_field(doc, field, expected):
    with pytest.raises(FieldError) as e:
        parse_catalog(doc, builtin_catalog())
    assert e.value.field == field
    assert expected in str(e.value)


def test_file_errors_name_the_file(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("models: [unclosed\n")
    with pytest.raises(InputError, match=r"broken\.yaml: not valid YAML"):
        load_catalog([f])
    g = tmp_path / "bad.yaml"
    g.write_text("models:\n  m:\n    layers: 2\n")
    with pytest.raises(
        InputError, match=r"bad.yaml: field 'models.m.heads': expected a number \(missing\)"
    ):
        load_catalog([g])


def test_unknown_key_suggests_close_matches():
    with pytest.raises(KeyError, match="did you mean llama-2-7b"):
        builtin_catalog().get_model("llama-2-7")
