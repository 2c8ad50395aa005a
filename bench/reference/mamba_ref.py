"""An independent PyTorch implementation of mambalab's Mamba language model.

Written from the Mamba paper and mamba_ssm's reference block (no mambalab code): the
selective scan is a plain sequential loop and every gradient comes from autograd, so it
checks the engine's hand-written backward. Parameter names and shapes match mambalab's
safetensors checkpoints (which follow mamba_ssm's MambaLMHeadModel).

Usage:
  python mamba_ref.py --checkpoint DIR --batch batch.json --out grads.safetensors [--dtype float64]
DIR holds config.json and model.safetensors (as written by mambalab's model.save); batch.json
is {"tokens": [[...], ...]} with rows of seqLen + 1 ids. Writes the loss (metadata "loss")
and d(loss)/d(parameter) for every parameter, under the parameter's name.
"""
import argparse
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def selective_scan(u, delta, A, B, C, D, z, delta_bias):
    """u, delta, z: (batch, len, dim); A: (dim, dstate); B, C: (batch, len, dstate)."""
    dt = F.softplus(delta + delta_bias)  # torch's softplus is linear above 20, as the engine's
    batch, length, dim = u.shape
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(length):
        dA = torch.exp(dt[:, t, :, None] * A)  # (batch, dim, dstate)
        dBu = dt[:, t, :, None] * B[:, t, None, :] * u[:, t, :, None]
        h = dA * h + dBu
        ys.append((h * C[:, t, None, :]).sum(-1) + D * u[:, t])
    y = torch.stack(ys, dim=1)
    return y * F.silu(z)


def mamba_mixer(x, p, prefix, cfg):
    d_inner = cfg["expand"] * cfg["dModel"]
    d_state = cfg["dState"]
    dt_rank = math.ceil(cfg["dModel"] / 16) if cfg["dtRank"] == "auto" else cfg["dtRank"]
    xz = x @ p[prefix + "in_proj.weight"].T
    xs, z = xz[..., :d_inner], xz[..., d_inner:]
    conv_w = p[prefix + "conv1d.weight"]  # (d_inner, 1, d_conv)
    length = xs.shape[1]
    xs = F.conv1d(xs.transpose(1, 2), conv_w, p[prefix + "conv1d.bias"], padding=conv_w.shape[-1] - 1, groups=d_inner)
    xs = F.silu(xs[..., :length].transpose(1, 2))
    dbc = xs @ p[prefix + "x_proj.weight"].T
    dt, B, C = torch.split(dbc, [dt_rank, d_state, d_state], dim=-1)
    delta = dt @ p[prefix + "dt_proj.weight"].T
    A = -torch.exp(p[prefix + "A_log"])
    y = selective_scan(xs, delta, A, B, C, p[prefix + "D"], z, p[prefix + "dt_proj.bias"])
    return y @ p[prefix + "out_proj.weight"].T


def lm_loss(p, cfg, tokens):
    layers = cfg["layers"]
    emb = p["backbone.embedding.weight"]
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    residual = emb[inputs]
    for i, kind in enumerate(layers):
        assert kind == "M", f"the reference builds Mamba layers only, got {kind!r}"
        prefix = f"backbone.layers.{i}."
        h = rms_norm(residual, p[prefix + "norm.weight"], cfg["normEps"])
        residual = residual + mamba_mixer(h, p, prefix + "mixer.", cfg)
    h = rms_norm(residual, p["backbone.norm_f.weight"], cfg["normEps"])
    logits = h @ emb.T  # tied LM head, over the padded vocabulary
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def expand_pattern(pattern):
    """'M*4' → 'MMMM' (the reference handles plain Mamba patterns only)."""
    out = ""
    for segment in pattern.split():
        units, _, count = segment.partition("*")
        out += units * (int(count) if count else 1)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--batch", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = parser.parse_args()

    dtype = getattr(torch, args.dtype)
    with open(os.path.join(args.checkpoint, "config.json")) as f:
        cfg = json.load(f)
    cfg["layers"] = expand_pattern(cfg["pattern"])
    params = {k: v.to(dtype).requires_grad_(True) for k, v in load_file(os.path.join(args.checkpoint, "model.safetensors")).items()}
    with open(args.batch) as f:
        tokens = torch.tensor(json.load(f)["tokens"], dtype=torch.long)

    loss = lm_loss(params, cfg, tokens)
    loss.backward()
    grads = {k: v.grad.detach().contiguous() for k, v in params.items()}
    save_file(grads, args.out, metadata={"loss": repr(loss.item()), "dtype": args.dtype})
    print(json.dumps({"loss": loss.item(), "parameters": len(grads)}))


if __name__ == "__main__":
    main()
