"""Analytical (roofline) cost model of LLM inference, with sourced catalogs."""

from optkit.costmodel.catalog import Catalog, Hardware, Link, Model, Tier
from optkit.costmodel.loader import builtin_catalog, load_catalog
from optkit.costmodel.precision import Precision
from optkit.costmodel.roofline import (
    Attention,
    Breakdown,
    Efficiency,
    KvTier,
    Setup,
    attended_pairs,
    decode_step_time,
    decode_total_time,
    forward,
    kv_bytes_per_token_layer,
    kv_tokens_read,
    memory_bytes,
    prefill_time,
    request_time,
    weight_bytes,
)

__all__ = [
    "Attention",
    "Breakdown",
    "Catalog",
    "Efficiency",
    "Hardware",
    "KvTier",
    "Link",
    "Model",
    "Precision",
    "Setup",
    "Tier",
    "attended_pairs",
    "builtin_catalog",
    "decode_step_time",
    "decode_total_time",
    "forward",
    "kv_bytes_per_token_layer",
    "kv_tokens_read",
    "load_catalog",
    "memory_bytes",
    "prefill_time",
    "request_time",
    "weight_bytes",
]
