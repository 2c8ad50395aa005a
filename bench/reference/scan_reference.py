"""An independent plain-PyTorch selective scan: the reference for speed (and a readable
statement of the math) beside mambalab_bench_scan.

The scan is written the way the reference repository's `selective_scan_ref` writes it:
discretise for every step at once, then a Python loop over time updating the (batch, dim,
dstate) state, with autograd for the backward. fp32 compute on bf16 inputs. mamba_ssm
(the fused CUDA kernel) is not installed on the GPU host, so it is not timed here.

    python3 bench/reference/scan_reference.py [--batch 8 --dim 1536 --len 2048 --dstate 16]
        [--iters 5] [--ours ours.jsonl]

Prints one JSON line with its own timings; with --ours, prints each line of that file with
the PyTorch figures added instead.
"""
import argparse
import math
import datetime
import json
import statistics

import torch
import torch.nn.functional as F


def selective_scan(u, delta, A, B, C, D, z, delta_bias):
    """u, delta, z: (batch, len, dim); B, C: (batch, len, dstate); A: (dim, dstate); D, delta_bias: (dim)."""
    dtype = u.dtype
    u, delta, z, B, C = (x.float() for x in (u, delta, z, B, C))
    dt = F.softplus(delta + delta_bias)                                # softplus(x) = x above 20, as ours
    decay = torch.exp(dt.unsqueeze(-1) * A)                            # (batch, len, dim, dstate)
    drive = dt.unsqueeze(-1) * B.unsqueeze(2) * u.unsqueeze(-1)        # dt · B_t · u_t
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
        h = decay[:, t] * h + drive[:, t]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, t]))
    y = torch.stack(ys, dim=1) + u * D
    return (y * F.silu(z)).to(dtype)


def inputs(args, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    b, l, d, n = args.batch, args.len, args.dim, args.dstate

    def uniform(shape, lo, hi):
        return (lo + (hi - lo) * torch.rand(shape, generator=g, device="cuda")).to(torch.bfloat16)

    A = -torch.arange(1, n + 1, device="cuda", dtype=torch.float32).repeat(d, 1)
    dt = torch.exp(math.log(1e-3) + torch.rand(d, generator=g, device="cuda") * (math.log(1e-1) - math.log(1e-3)))
    bias = dt + torch.log(-torch.expm1(-dt))
    x = dict(u=uniform((b, l, d), -1, 1), delta=uniform((b, l, d), -0.5, 0.5), B=uniform((b, l, n), -1, 1),
             C=uniform((b, l, n), -1, 1), z=uniform((b, l, d), -2, 2), A=A, D=torch.ones(d, device="cuda"),
             delta_bias=bias)
    dout = uniform((b, l, d), -1, 1)
    return x, dout


def time_ms(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dim", type=int, default=1536)
    p.add_argument("--len", type=int, default=2048)
    p.add_argument("--dstate", type=int, default=16)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--iters-backward", type=int, default=3, help="the autograd loop takes seconds per run")
    p.add_argument("--ours", help="JSON lines from mambalab_bench_scan to annotate")
    args = p.parse_args()

    x, dout = inputs(args, 1)
    leaves = {k: v.clone().requires_grad_(True) for k, v in x.items()}

    def forward():
        with torch.no_grad():
            selective_scan(**x)

    def forward_backward():
        for v in leaves.values():
            v.grad = None
        selective_scan(**leaves).backward(dout)

    ref = {
        "name": "scan", "impl": "pytorch_eager_reference", "gpu": torch.cuda.get_device_name(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), "dtype": "bf16",
        "shape": {"batch": args.batch, "dim": args.dim, "len": args.len, "dstate": args.dstate},
        "fwd_ms": round(time_ms(forward, args.warmup, args.iters), 3),
        "fwd_bwd_ms": round(time_ms(forward_backward, args.warmup, args.iters_backward), 3),
        "iters": args.iters, "iters_backward": args.iters_backward, "torch": torch.__version__, "timing": "cuda events, median",
        "note": "plain PyTorch (Python loop over time, autograd); mamba_ssm is not installed on the host",
    }
    if not args.ours:
        print(json.dumps(ref))
        return
    with open(args.ours) as f:
        for line in f:
            if not line.strip():
                continue
            ours = json.loads(line)
            ours.update(pytorch_impl=ref["impl"], pytorch_fwd_ms=ref["fwd_ms"], pytorch_fwd_bwd_ms=ref["fwd_bwd_ms"],
                        pytorch_version=ref["torch"], pytorch_note=ref["note"])
            print(json.dumps(ours))
    print(json.dumps(ref))


if __name__ == "__main__":
    main()
