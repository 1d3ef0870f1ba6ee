"""Measure prefill and decode latency of a LLaMA-shaped decoder on a real GPU.

Evidence for the roofline cost model: a plain PyTorch implementation (fp16, random
weights; no download needed) of the model's layers — RMSNorm, QKV, causal
flash attention (SDPA, GQA), output projection, gated MLP — plus the LM head on
the last position. Decode steps run as a captured CUDA graph (no launch
overhead from Python), reading a KV cache of the given context.

python benchmarks/costmodel/gpu_measure.py --out measured.json   # on the GPU machine
python benchmarks/costmodel/run.py gpu --measured measured.json   # compare here

Needs only torch (not an optkit dependency: the GPU machine has it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {  # the catalog's numbers (optkit/costmodel/data/models.yaml)
    "llama-2-7b": dict(d=4096, H=32, Hkv=32, dh=128, ffn=11008, L=32, V=32000),
    "llama-3.1-8b": dict(d=4096, H=32, Hkv=8, dh=128, ffn=14336, L=32, V=128256),
}


class Decoder:
    def __init__(self, shape: dict[str, int], layers: int, dev: str, dtype: torch.dtype) -> None:
        s = shape
        self.s, self.L, self.dev, self.dtype = s, layers, dev, dtype

        def w(*size: int) -> torch.Tensor:
            return torch.randn(*size, device=dev, dtype=dtype) * 0.02

        qkv = (s["H"] + 2 * s["Hkv"]) * s["dh"]
        self.layers = [
            dict(
                qkv=w(qkv, s["d"]),
                o=w(s["d"], s["H"] * s["dh"]),
                up=w(2 * s["ffn"], s["d"]),  # gate and up fused
                down=w(s["d"], s["ffn"]),
                n1=torch.ones(s["d"], device=dev, dtype=dtype),
                n2=torch.ones(s["d"], device=dev, dtype=dtype),
            )
            for _ in range(layers)
        ]
        self.head = w(s["V"], s["d"])
        self.norm = torch.ones(s["d"], device=dev, dtype=dtype)

    def _attn_proj(self, x: torch.Tensor, p: dict) -> tuple[torch.Tensor, ...]:
        s = self.s
        B, T, _ = x.shape
        h = F.rms_norm(x, (s["d"],), p["n1"])
        qkv = h @ p["qkv"].T
        q, k, v = qkv.split([s["H"] * s["dh"], s["Hkv"] * s["dh"], s["Hkv"] * s["dh"]], dim=-1)
        q = q.view(B, T, s["H"], s["dh"]).transpose(1, 2)
        k = k.view(B, T, s["Hkv"], s["dh"]).transpose(1, 2)
        v = v.view(B, T, s["Hkv"], s["dh"]).transpose(1, 2)
        return q, k, v

    def _mlp(self, x: torch.Tensor, a: torch.Tensor, p: dict) -> torch.Tensor:
        B, T, _ = x.shape
        x = x + a.transpose(1, 2).reshape(B, T, -1) @ p["o"].T
        h = F.rms_norm(x, (self.s["d"],), p["n2"])
        g, u = (h @ p["up"].T).chunk(2, dim=-1)
        return x + (F.silu(g) * u) @ p["down"].T

    def prefill(self, x: torch.Tensor) -> torch.Tensor:
        for p in self.layers:
            q, k, v = self._attn_proj(x, p)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = self._mlp(x, a, p)
        return F.rms_norm(x[:, -1:], (self.s["d"],), self.norm) @ self.head.T

    def decode(
        self, x: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]], pos: int
    ) -> torch.Tensor:
        for p, (kc, vc) in zip(self.layers, cache, strict=True):
            q, k, v = self._attn_proj(x, p)
            kc[:, :, pos : pos + 1] = k
            vc[:, :, pos : pos + 1] = v
            a = F.scaled_dot_product_attention(
                q, kc[:, :, : pos + 1], vc[:, :, : pos + 1], enable_gqa=True
            )
            x = self._mlp(x, a, p)
        return F.rms_norm(x, (self.s["d"],), self.norm) @ self.head.T


def timed(fn, dev: str, reps: int) -> float:
    """Median seconds of ``reps`` calls after warm-up."""
    for _ in range(3):
        fn()
    out = []
    for _ in range(reps):
        if dev == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            out.append(a.elapsed_time(b) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="llama-2-7b,llama-3.1-8b")
    ap.add_argument("--layers", type=int, default=0, help="0: the model's own")
    ap.add_argument("--tiny", action="store_true", help="CPU dry run with small shapes")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if dev == "cuda" else torch.float32
    rows = []
    meta = {
        "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
        "torch": torch.__version__,
    }
    print(meta, flush=True)
    for name in a.models.split(","):
        shape = dict(SHAPES[name])
        if a.tiny:
            shape.update(d=256, H=4, Hkv=shape["Hkv"] // 8, dh=64, ffn=512, V=1000)
        layers = a.layers or shape["L"]
        torch.manual_seed(0)
        model = Decoder(shape, layers, dev, dtype)
        with torch.inference_mode():
            for s in (128, 512, 2048) if not a.tiny else (16, 64):
                x = torch.randn(1, s, shape["d"], device=dev, dtype=dtype)
                t = timed(lambda x=x, model=model: model.prefill(x), dev, 5)
                rows.append(
                    dict(
                        model=name,
                        phase="prefill",
                        batch=1,
                        tokens=s,
                        context=0,
                        seconds=t,
                        layers=layers,
                    )
                )
                print(rows[-1], flush=True)
            ctx = 2048 if not a.tiny else 64
            batches = (1, 8, 32) if name == "llama-2-7b" else (1, 8, 32, 64)
            for B in batches if not a.tiny else (1, 2):
                cache = [
                    (
                        torch.randn(B, shape["Hkv"], ctx, shape["dh"], device=dev, dtype=dtype),
                        torch.randn(B, shape["Hkv"], ctx, shape["dh"], device=dev, dtype=dtype),
                    )
                    for _ in range(layers)
                ]
                x = torch.randn(B, 1, shape["d"], device=dev, dtype=dtype)
                pos = ctx - 1
                if dev == "cuda":
                    s_ = torch.cuda.Stream()
                    s_.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s_):
                        for _ in range(2):
                            model.decode(x, cache, pos)
                    torch.cuda.current_stream().wait_stream(s_)
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        model.decode(x, cache, pos)
                    step = graph.replay
                else:

                    def step(x=x, cache=cache, pos=pos, model=model):
                        return model.decode(x, cache, pos)

                t = timed(step, dev, 20)
                rows.append(
                    dict(
                        model=name,
                        phase="decode",
                        batch=B,
                        tokens=1,
                        context=ctx,
                        seconds=t,
                        layers=layers,
                    )
                )
                print(rows[-1], flush=True)
                del cache
                if dev == "cuda":
                    torch.cuda.empty_cache()
        del model
        if dev == "cuda":
            torch.cuda.empty_cache()
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
