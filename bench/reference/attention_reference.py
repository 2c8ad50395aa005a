"""PyTorch's scaled_dot_product_attention, causal, timed at the shapes `mambalab bench
attention` times ours: the reference for speed beside mambalab_bench_attention.

Each of SDPA's GPU backends that accepts the shape (flash, cuDNN, memory-efficient) is timed,
forward and forward + backward, with CUDA events (median of --iters after --warmup); the line
reports the fastest forward + backward, and every backend's times (or why it refused) under
"backends". On an H200 with torch 2.11 that is cuDNN (~1.6× flash at b8 h8 d64 L4096, fwd+bwd);
the memory-efficient kernel refuses grouped-query shapes. Inputs are
(batch, heads, len, head_dim), contiguous, in the dtype asked; grouped-query shapes use
enable_gqa (key/value head h // (heads / kv_heads) for query head h, as ours).

FLOPs count the two matrix products, 4 · batch · heads · len² · head_dim, halved for the causal
mask (only the lower triangle is work), and the backward as 2.5 × the forward (five products
to two): FlashAttention's benchmark convention, so TFLOP/s compare with published kernels.

    python3 bench/reference/attention_reference.py [--batch 8 --heads 8 --kv-heads 8
        --head-dim 64 --len 1024,2048,4096,8192 --dtype bf16] [--warmup 5 --iters 20] [--ours ours.jsonl]

Prints one JSON line per shape, with the keys of ours and impl "pytorch_sdpa". With --ours
(our JSON lines, `mambalab bench attention --json`), times each of their shapes instead and
prints each of our lines with the PyTorch figures added, then PyTorch's own line.
"""
import argparse
import datetime
import json
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from scan_reference import time_ms  # CUDA events around each call, the median

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION}
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def forward_flops(shape):
    """Causal attention's forward: QKᵀ and PV over the lower triangle."""
    return 4 * shape["batch"] * shape["heads"] * shape["len"] ** 2 * shape["head_dim"] / 2


def time_backend(backend, shape, dtype, warmup, iters):
    """(forward ms, forward + backward ms) with one backend, or why it could not run (it refuses
    the shape, or it ran out of memory: both are RuntimeErrors)."""
    g = torch.Generator(device="cuda").manual_seed(shape["len"])
    b, h, kv, n, d = shape["batch"], shape["heads"], shape["kv_heads"], shape["len"], shape["head_dim"]
    q = torch.randn(b, h, n, d, generator=g, device="cuda", dtype=dtype, requires_grad=True)
    k, v = (torch.randn(b, kv, n, d, generator=g, device="cuda", dtype=dtype, requires_grad=True) for _ in range(2))
    dout = torch.randn(b, h, n, d, generator=g, device="cuda", dtype=dtype)

    def attend():
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=kv != h)

    def forward():
        with torch.no_grad():
            attend()

    def forward_backward():
        torch.autograd.grad(attend(), (q, k, v), dout)

    # A backend that refuses raises "No available kernel" and says why in UserWarnings: the
    # reasons go into the result instead of onto stderr.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            with sdpa_kernel([backend]):
                forward_backward()  # refuses here, at once, if the backend cannot take the shape
                return time_ms(forward, warmup, iters), time_ms(forward_backward, warmup, iters)
        except RuntimeError as error:
            reasons = [str(w.message).split(" (Triggered internally")[0] for w in caught]
            return "; ".join([str(error).strip().split("\n")[0], *[r for r in reasons if not r.endswith("because:")]])
        finally:
            torch.cuda.empty_cache()


def measure(shape, dtype_name, warmup, iters):
    times = {name: time_backend(backend, shape, DTYPES[dtype_name], warmup, iters) for name, backend in BACKENDS.items()}
    usable = {name: t for name, t in times.items() if not isinstance(t, str)}
    if not usable:
        raise SystemExit(f"attention_reference: no SDPA backend ran {shape} in {dtype_name}: {times}")
    best = min(usable, key=lambda name: usable[name][1])
    fwd_ms, fwd_bwd_ms = usable[best]
    flops = forward_flops(shape)
    return {
        "name": "attention", "impl": "pytorch_sdpa", "gpu": torch.cuda.get_device_name(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), "dtype": dtype_name,
        "shape": shape, "causal": True,
        "fwd_ms": round(fwd_ms, 4), "fwd_bwd_ms": round(fwd_bwd_ms, 4),
        "fwd_tflops": round(flops / fwd_ms / 1e9, 2), "fwd_bwd_tflops": round(3.5 * flops / fwd_bwd_ms / 1e9, 2),
        "backend": best, "backends": {name: t if isinstance(t, str) else {"fwd_ms": round(t[0], 4), "fwd_bwd_ms": round(t[1], 4)} for name, t in times.items()},
        "warmup": warmup, "iters": iters, "torch": torch.__version__, "timing": "cuda events, median",
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, help="default: --heads (multi-head)")
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--len", default="1024,2048,4096,8192", help="comma-separated sequence lengths")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--ours", help="JSON lines from `mambalab bench attention --json` to time beside")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("attention_reference: no CUDA device (this times PyTorch's GPU kernels)")

    if args.ours:
        with open(args.ours) as f:
            ours = [json.loads(line) for line in f if line.strip()]
        for line in ours:
            ref = measure(line["shape"], line["dtype"], args.warmup, args.iters)
            line.update(pytorch_impl=ref["impl"], pytorch_backend=ref["backend"], pytorch_fwd_ms=ref["fwd_ms"],
                        pytorch_fwd_bwd_ms=ref["fwd_bwd_ms"], pytorch_version=ref["torch"])
            print(json.dumps(line), flush=True)
            print(json.dumps(ref), flush=True)
        return
    for length in (int(x) for x in args.len.split(",")):
        shape = {"batch": args.batch, "heads": args.heads, "kv_heads": args.kv_heads or args.heads, "head_dim": args.head_dim, "len": length}
        print(json.dumps(measure(shape, args.dtype, args.warmup, args.iters)), flush=True)


if __name__ == "__main__":
    main()
