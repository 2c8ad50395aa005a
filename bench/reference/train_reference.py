"""Training throughput of the independent PyTorch reference (mamba_ref.py's model) on the
configs `mambalab bench train` times, for the comparison in tests/gpu/run.sh.

One step is what ours does: forward, backward, global-norm clipping and AdamW (fused on the
GPU). Matrix products run in bf16 (autocast, GPU only) on fp32 weights, like our bf16; the
selective scan runs in fp32 a chunk of steps at a time (mamba_ref.selective_scan_chunked)
and is recomputed in the backward (activation checkpointing) so its (batch, len, d_inner,
d_state) states are never all stored; attention is PyTorch's scaled_dot_product_attention
(its flash kernel under bf16 autocast on the GPU). By default this is plain PyTorch, not the
fastest Python implementation; `--anchors DIR` (a copy of ../shared/anchors, which builds
mamba_ssm's selective-scan CUDA kernel there) runs the scan through mamba_ssm's kernel instead:
PyTorch + mamba_ssm, what users would pick instead of us.

    python3 bench/reference/train_reference.py --configs configs.jsonl [--device cuda]
        [--warmup 1 --steps 5 --time-cap 40] [--quick] [--anchors DIR]

configs.jsonl: lines {"name", "config" (a resolved mambalab model config), "batch_size",
"seq_len"}, as tests/gpu/preset-configs.mjs prints them. Prints one JSON line per config.
A batch that does not fit in memory is halved until it does, and the note says so; past the
time cap fewer steps are timed (at least one), and the JSON line says how many.
"""
import argparse
import datetime
import gc
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from mamba_ref import layer_specs, lm_loss, selective_scan, selective_scan_chunked

# --quick: every config at this batch and length, for a check that the path runs (the CPU).
QUICK_BATCH, QUICK_LEN, QUICK_STEPS = 2, 64, 2


def init_parameters(cfg, device):
    """Fresh weights with the engine's names and shapes (mamba_ssm's layout) and Mamba's
    initialisation where it shapes the numerics (dt bias, A, D); speed does not depend on the rest."""
    d, n, expand = cfg["dModel"], cfg["dState"], cfg["expand"]
    d_inner = expand * d
    dt_rank = math.ceil(d / 16) if cfg["dtRank"] == "auto" else cfg["dtRank"]
    vocab = math.ceil(cfg["vocabSize"] / cfg["padVocabMultiple"]) * cfg["padVocabMultiple"]

    def normal(*shape, std=0.02):
        return torch.randn(*shape, device=device) * std

    p = {"backbone.embedding.weight": normal(vocab, d), "backbone.norm_f.weight": torch.ones(d, device=device)}
    if cfg["maxPositions"] > 0:
        p["backbone.pos_embedding.weight"] = normal(cfg["maxPositions"], d)
    for i, kinds in enumerate(layer_specs(cfg["pattern"])):
        prefix = f"backbone.layers.{i}."
        p[prefix + "norm.weight"] = torch.ones(d, device=device)
        for kind in kinds:
            if kind == "M":
                m = prefix + "mixer."
                dt = torch.exp(torch.rand(d_inner, device=device) * (math.log(cfg["dtMax"]) - math.log(cfg["dtMin"])) + math.log(cfg["dtMin"]))
                dt = dt.clamp(min=cfg["dtInitFloor"])
                p[m + "in_proj.weight"] = normal(2 * d_inner, d)
                p[m + "conv1d.weight"] = normal(d_inner, 1, cfg["dConv"], std=0.2)
                p[m + "conv1d.bias"] = torch.zeros(d_inner, device=device)
                p[m + "x_proj.weight"] = normal(dt_rank + 2 * n, d_inner)
                p[m + "dt_proj.weight"] = normal(d_inner, dt_rank, std=dt_rank ** -0.5)
                p[m + "dt_proj.bias"] = dt + torch.log(-torch.expm1(-dt))  # softplus⁻¹(dt)
                p[m + "A_log"] = torch.log(torch.arange(1, n + 1, device=device, dtype=torch.float32)).repeat(d_inner, 1)
                p[m + "D"] = torch.ones(d_inner, device=device)
                p[m + "out_proj.weight"] = normal(d, d_inner)
            elif kind == "A":
                head_dim = d // cfg["nHeads"]
                p[prefix + "attn.in_proj.weight"] = normal((cfg["nHeads"] + 2 * cfg["nKvHeads"]) * head_dim, d)
                p[prefix + "attn.out_proj.weight"] = normal(d, cfg["nHeads"] * head_dim)
            elif kind == "F":
                rows = 2 * cfg["dFF"] if cfg["mlpKind"] == "swiglu" else cfg["dFF"]
                p[prefix + "mlp.fc1.weight"] = normal(rows, d)
                p[prefix + "mlp.fc2.weight"] = normal(d, cfg["dFF"])
            elif kind == "E":
                e, h = cfg["numExperts"], cfg["expertHidden"]
                rows = 2 * h if cfg["expertKind"] == "swiglu" else h
                p[prefix + "moe.router.weight"] = normal(e, d)
                if cfg["routerBias"]:
                    p[prefix + "moe.router.bias"] = torch.zeros(e, device=device)
                p[prefix + "moe.experts.fc1.weight"] = normal(e, rows, d)
                p[prefix + "moe.experts.fc2.weight"] = normal(e, d, h)
    return {k: v.requires_grad_(True) for k, v in p.items()}


def check_scan(device, scan):
    """The timed scan must compute mamba_ref's sequential scan: compare on random inputs with
    a length that leaves a partial last chunk, in fp32, against float64."""
    g = torch.Generator(device="cpu").manual_seed(1)
    b, length, d, n = 2, 53, 32, 16
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).to(device)  # noqa: E731
    dt = torch.exp(torch.rand(d, generator=g, dtype=torch.float64) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).to(device)
    x = dict(u=rand(b, length, d), delta=0.5 * rand(b, length, d), A=-torch.arange(1, n + 1, dtype=torch.float64, device=device).repeat(d, 1),
             B=rand(b, length, n), C=rand(b, length, n), D=torch.ones(d, dtype=torch.float64, device=device), z=rand(b, length, d),
             delta_bias=dt + torch.log(-torch.expm1(-dt)))
    exact = selective_scan(**x)
    fast = scan(*(v.float() for v in x.values())).double()
    error = (torch.linalg.vector_norm(fast - exact) / torch.linalg.vector_norm(exact)).item()
    if not error < 1e-5:
        raise SystemExit(f"train_reference: the timed scan differs from the sequential one (relative error {error:.2e})")


def checkpointed_scan(*inputs):
    return checkpoint(selective_scan_chunked, *inputs, use_reentrant=False)


def mamba_ssm_scan(anchor):
    """mamba_ref's scan signature over mamba_ssm's kernel: it takes (batch, dim, len) activations
    of one dtype, B and C in that dtype too, A, D and the dt bias in fp32, and stores what its
    backward needs itself (no recomputation around it)."""

    def scan(u, delta, A, B, C, D, z, delta_bias):
        dtype = u.dtype
        channels_first = [t.to(dtype).transpose(1, 2).contiguous() for t in (u, delta, B, C, z)]
        u, delta, B, C, z = channels_first
        y = anchor.selective_scan(u, delta, A.float(), B, C, D.float(), z, delta_bias.float(), True)
        return y.transpose(1, 2)

    return scan


def measure(cfg, batch, seq_len, device, warmup, steps, time_cap, scan):
    """Throughput over the timed steps' total time, as `mambalab bench train` reports it."""
    torch.manual_seed(0)
    params = init_parameters(cfg, device)
    optimizer = torch.optim.AdamW(params.values(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=device == "cuda")
    tokens = torch.randint(0, cfg["vocabSize"], (batch, seq_len + 1), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        # bf16 on the GPU as ours; CPUs without bf16 matrix units would only emulate it.
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss, aux, _ = lm_loss(params, cfg, tokens, scan=scan)
        (loss + aux).backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0, foreach=True)
        optimizer.step()
        return loss

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    timed, started = 0, time.perf_counter()
    while timed < steps and (timed == 0 or time.perf_counter() - started < time_cap):
        loss = step()
        sync()
        timed += 1
    seconds = time.perf_counter() - started
    return {
        "tokens_per_s": timed * batch * seq_len / seconds,
        "step_ms": 1000 * seconds / timed,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "steps": timed,
        "final_loss": loss.item(),
    }


def run_config(entry, args):
    cfg = entry["config"]
    batch, seq_len = (QUICK_BATCH, QUICK_LEN) if args.quick else (entry["batch_size"], entry["seq_len"])
    notes = [f"--quick: batch {batch} x {seq_len} instead of {entry['batch_size']} x {entry['seq_len']}"] if args.quick else []
    while True:
        try:
            result = measure(cfg, batch, seq_len, args.device, args.warmup, args.steps, args.time_cap, args.scan)
            break
        except torch.cuda.OutOfMemoryError:
            total_gib = torch.cuda.mem_get_info()[1] / 2**30
            notes.append(f"batch {batch} x {seq_len} did not fit in the GPU's {total_gib:.0f} GiB")
            gc.collect()
            torch.cuda.empty_cache()
            if batch == 1:
                return {**header(entry, args), "batch_size": batch, "seq_len": seq_len, "error": "out of memory at batch 1", "note": "; ".join(notes)}
            batch //= 2
    if result["steps"] < args.steps:
        notes.append(f"{result['steps']} of {args.steps} timed steps within the {args.time_cap:g} s cap")
    precision, adamw = ("bf16 autocast", "fused AdamW") if args.device == "cuda" else ("fp32 (CPU)", "AdamW")
    if "M" not in cfg["pattern"]:
        scan = "no scan (no Mamba layer)"
    elif args.anchors:
        scan = "mamba_ssm's selective-scan kernel"
    else:
        scan = "fp32 chunked scan recomputed in backward; no mamba_ssm kernels"
    notes.append(f"PyTorch: {precision}, {scan}, SDPA for any attention, {adamw}")
    return {**header(entry, args), "batch_size": batch, "seq_len": seq_len, **result, "note": "; ".join(notes)}


def header(entry, args):
    return {
        "name": entry["name"],
        # Attention-only models run no scan: theirs is plain PyTorch whatever --anchors says.
        "impl": "pytorch_mamba_ssm" if args.anchors and "M" in entry["config"]["pattern"] else "pytorch_reference",
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else "none (CPU)",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "torch": torch.__version__,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", required=True, help="JSON lines from tests/gpu/preset-configs.mjs")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--time-cap", type=float, default=40, help="seconds of timed steps per config")
    parser.add_argument("--quick", action="store_true", help=f"batch {QUICK_BATCH} x {QUICK_LEN}, {QUICK_STEPS} timed steps")
    parser.add_argument("--anchors", help="a copy of ../shared/anchors: the scan runs through mamba_ssm's kernel (CUDA only)")
    args = parser.parse_args()
    if args.quick:
        args.steps = min(args.steps, QUICK_STEPS)
    if args.anchors:
        if args.device != "cuda":
            raise SystemExit("train_reference: --anchors needs --device cuda (mamba_ssm's kernel is CUDA only)")
        sys.path.insert(0, args.anchors)
        import scan_anchor  # builds the kernel the first time (~2 min)

        args.scan = mamba_ssm_scan(scan_anchor)
    else:
        args.scan = checkpointed_scan
    check_scan(args.device, args.scan)
    with open(args.configs) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    for entry in entries:
        print(json.dumps(run_config(entry, args)), flush=True)


if __name__ == "__main__":
    main()
