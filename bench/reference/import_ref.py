"""Published checkpoint layouts, for mambalab's importer tests: writes small random checkpoints
in the exact layouts (names, shapes, dtypes, files) of transformers' MambaForCausalLM,
mamba_ssm's MambaLMHeadModel and Zyphra's BlackMamba, and computes their logits and losses
with a PyTorch implementation of each source's own conventions (written from their modeling
code, reading the source names; no mambalab code and no mambalab names).

Usage:
  python import_ref.py write --format hf-mamba|hf-mamba-sharded|mamba-ssm|blackmamba --out DIR [--dtype float32|float16|bfloat16] [--seed N] [--batch batch.json]
  python import_ref.py loss --checkpoint DIR --batch batch.json
The second (and the first, given --batch) prints {"loss": mean next-token cross-entropy, "row_losses": [...], "logits_shape": [...]}
computed in float64 from the checkpoint's own values.
"""
import argparse
import json
import math
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

D_MODEL, D_STATE, D_CONV, EXPAND = 24, 4, 4, 2


def mixer_weights(g, prefix, d, conv_bias=True):
    """mamba_ssm's Mamba (Mamba1) block's parameters: in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj."""
    di, rank = EXPAND * d, math.ceil(d / 16)
    w = OrderedDict()
    w[prefix + "A_log"] = torch.log(torch.rand(di, D_STATE, generator=g) * 15 + 1)
    w[prefix + "D"] = torch.randn(di, generator=g)
    w[prefix + "in_proj.weight"] = torch.randn(2 * di, d, generator=g) / math.sqrt(d)
    w[prefix + "conv1d.weight"] = torch.randn(di, 1, D_CONV, generator=g) * 0.5
    if conv_bias:
        w[prefix + "conv1d.bias"] = torch.randn(di, generator=g) * 0.1
    w[prefix + "x_proj.weight"] = torch.randn(rank + 2 * D_STATE, di, generator=g) / math.sqrt(di)
    w[prefix + "dt_proj.weight"] = torch.randn(di, rank, generator=g) / math.sqrt(rank)
    w[prefix + "dt_proj.bias"] = torch.randn(di, generator=g) * 0.5 - 3
    w[prefix + "out_proj.weight"] = torch.randn(d, di, generator=g) / math.sqrt(di)
    return w


def norm_weight(g, d):
    return 1 + 0.2 * torch.randn(d, generator=g)


def write(fmt, out, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    d = D_MODEL
    os.makedirs(out, exist_ok=True)
    cast = lambda sd: OrderedDict((k, v.to(dtype)) for k, v in sd.items())
    if fmt.startswith("hf-mamba"):
        vocab, layers = 1000, 2
        sd = OrderedDict([("backbone.embeddings.weight", torch.randn(vocab, d, generator=g) * 0.5)])
        for i in range(layers):
            sd.update(mixer_weights(g, f"backbone.layers.{i}.mixer.", d))
            sd[f"backbone.layers.{i}.norm.weight"] = norm_weight(g, d)
        sd["backbone.norm_f.weight"] = norm_weight(g, d)
        config = {"architectures": ["MambaForCausalLM"], "model_type": "mamba", "vocab_size": vocab, "hidden_size": d,
                  "state_size": D_STATE, "num_hidden_layers": layers, "layer_norm_epsilon": 1e-5, "expand": EXPAND,
                  "conv_kernel": D_CONV, "use_bias": False, "use_conv_bias": True, "hidden_act": "silu",
                  "time_step_rank": math.ceil(d / 16), "intermediate_size": EXPAND * d, "residual_in_fp32": True,
                  "tie_word_embeddings": True, "torch_dtype": str(dtype).removeprefix("torch.")}
        sd = cast(sd)
        if fmt == "hf-mamba-sharded":  # save_pretrained's shards and index
            names = list(sd)
            shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2], "model-00002-of-00002.safetensors": names[len(names) // 2 :]}
            for file, keys in shards.items():
                save_file({k: sd[k].contiguous() for k in keys}, os.path.join(out, file), metadata={"format": "pt"})
            index = {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}
            with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
                json.dump(index, f)
        else:  # save_pretrained drops the tied lm_head.weight
            save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    elif fmt == "mamba-ssm":
        vocab, multiple, layers = 1001, 8, 2
        rows = math.ceil(vocab / multiple) * multiple
        sd = OrderedDict([("backbone.embedding.weight", torch.randn(rows, d, generator=g) * 0.5)])
        for i in range(layers):
            sd.update(mixer_weights(g, f"backbone.layers.{i}.mixer.", d))
            sd[f"backbone.layers.{i}.norm.weight"] = norm_weight(g, d)
        sd["backbone.norm_f.weight"] = norm_weight(g, d)
        sd = cast(sd)
        sd["lm_head.weight"] = sd["backbone.embedding.weight"]  # tied: one storage, as state_dict() gives it
        sd._metadata = OrderedDict([("", {"version": 1}), ("backbone", {"version": 1})])  # nn.Module.state_dict's attribute
        config = {"d_model": d, "d_intermediate": 0, "n_layer": layers, "vocab_size": vocab,
                  "ssm_cfg": {"d_state": D_STATE, "d_conv": D_CONV, "expand": EXPAND}, "attn_layer_idx": [], "attn_cfg": {},
                  "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": multiple,
                  "tie_embeddings": True}
        torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    elif fmt == "blackmamba":
        vocab, hidden, layout = 1024, 20, ["r", "4", "r", "1"]
        sd = OrderedDict([("embedding.word_embeddings.weight", torch.randn(vocab, d, generator=g) * 0.5)])
        for i, kind in enumerate(layout):
            prefix = f"decoder.layers.{i}."
            sd[prefix + "norm.weight"] = norm_weight(g, d)
            if kind == "r":
                sd.update(mixer_weights(g, prefix + "mixer.", d))
                continue
            mlps = [prefix + "mixer."] if kind == "1" else [f"{prefix}mixer.local_experts.{e}." for e in range(int(kind))]
            if kind != "1":
                sd[prefix + "mixer.router.weight"] = torch.randn(int(kind), d, generator=g)
                sd[prefix + "mixer.router.bias"] = torch.randn(int(kind), generator=g)
            for mlp in mlps:
                sd[mlp + "linear_fc1.weight"] = torch.randn(2 * hidden, d, generator=g) / math.sqrt(d)
                sd[mlp + "linear_fc2.weight"] = torch.randn(d, hidden, generator=g) / math.sqrt(hidden)
        sd["decoder.final_layernorm.weight"] = norm_weight(g, d)
        sd["decoder.final_layernorm.bias"] = 0.3 * torch.randn(d, generator=g)
        config = {"num_layers": len(layout), "hidden_size": d, "state_size": D_STATE, "conv_dimension": D_CONV,
                  "vocab_size": vocab, "expansion_factor": EXPAND, "mamba_moe_layers": layout, "ffn_hidden_size": hidden,
                  "bias": False, "add_bias_linear": False, "swiglu": True, "max_sequence_length": 2048}
        torch.save({"model": cast(sd)}, os.path.join(out, "pytorch_model.bin"))
    else:
        raise SystemExit(f"unknown format {fmt}")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def load_state(directory):
    if os.path.exists(os.path.join(directory, "model.safetensors")):
        return load_file(os.path.join(directory, "model.safetensors"))
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = set(json.load(f)["weight_map"].values())
        return {k: v for file in files for k, v in load_file(os.path.join(directory, file)).items()}
    loaded = torch.load(os.path.join(directory, "pytorch_model.bin"), map_location="cpu", weights_only=True)
    return loaded.get("model", loaded)


def rms_norm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def mixer(h, sd, prefix):
    """The Mamba block's slow path (mamba_simple.Mamba / transformers' MambaMixer.slow_forward)."""
    di = sd[prefix + "D"].shape[0]
    n = sd[prefix + "A_log"].shape[1]
    rank = sd[prefix + "dt_proj.weight"].shape[1]
    length = h.shape[1]
    x, z = (h @ sd[prefix + "in_proj.weight"].T).chunk(2, dim=-1)
    conv = sd[prefix + "conv1d.weight"]
    x = F.conv1d(x.transpose(1, 2), conv, sd.get(prefix + "conv1d.bias"), padding=conv.shape[-1] - 1, groups=di)
    x = F.silu(x[..., :length]).transpose(1, 2)
    dt, B, C = torch.split(x @ sd[prefix + "x_proj.weight"].T, [rank, n, n], dim=-1)
    dt = F.softplus(dt @ sd[prefix + "dt_proj.weight"].T + sd[prefix + "dt_proj.bias"])
    A = -torch.exp(sd[prefix + "A_log"])
    state = x.new_zeros(x.shape[0], di, n)
    ys = []
    for t in range(length):
        state = torch.exp(dt[:, t, :, None] * A) * state + dt[:, t, :, None] * B[:, t, None, :] * x[:, t, :, None]
        ys.append((state * C[:, t, None, :]).sum(-1) + sd[prefix + "D"] * x[:, t])
    y = torch.stack(ys, dim=1) * F.silu(z)
    return y @ sd[prefix + "out_proj.weight"].T


def blackmamba_mlp(h, sd, prefix, gated):
    """BlackMamba's MLP: activation_func is MambaConfig's default F.gelu; glu(x) = gelu(x[0]) * x[1]."""
    x = h @ sd[prefix + "linear_fc1.weight"].T
    if gated:
        a, b = torch.chunk(x, 2, dim=-1)
        x = F.gelu(a) * b
    else:
        x = F.gelu(x)
    return x @ sd[prefix + "linear_fc2.weight"].T


def switch_mlp(h, sd, prefix, gated):
    """BlackMamba's SwitchMLP at inference: sigmoid of the router's logits, top-1 by max, output scaled by it."""
    shape = h.shape
    h = h.reshape(-1, shape[-1])
    route = torch.sigmoid(h @ sd[prefix + "router.weight"].T + sd[prefix + "router.bias"])
    prob, index = route.max(dim=1)
    out = torch.zeros_like(h)
    for e in range(route.shape[1]):
        rows = (index == e).nonzero()[:, 0]
        if rows.numel():
            out[rows] = blackmamba_mlp(h[rows], sd, f"{prefix}local_experts.{e}.", gated)
    return (out * prob[:, None]).reshape(shape)


def logits_of(directory, tokens):
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    sd = {k: v.to(torch.float64) for k, v in load_state(directory).items()}
    if "mamba_moe_layers" in cfg:
        emb = sd["embedding.word_embeddings.weight"]
        hidden, residual = emb[tokens], None
        for i, kind in enumerate(cfg["mamba_moe_layers"][: cfg["num_layers"]]):
            prefix = f"decoder.layers.{i}."
            residual = hidden if residual is None else hidden + residual
            h = rms_norm(residual, sd[prefix + "norm.weight"])
            if kind == "r":
                hidden = mixer(h, sd, prefix + "mixer.")
            elif kind[0] == "1":
                hidden = blackmamba_mlp(h, sd, prefix + "mixer.", cfg["swiglu"])
            else:
                hidden = switch_mlp(h, sd, prefix + "mixer.", cfg["swiglu"])
        residual = hidden + residual
        h = F.layer_norm(residual, residual.shape[-1:], sd["decoder.final_layernorm.weight"], sd["decoder.final_layernorm.bias"], 1e-5)
        return h @ emb.T
    hf = "backbone.embeddings.weight" in sd
    emb = sd["backbone.embeddings.weight" if hf else "backbone.embedding.weight"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    layers = cfg["num_hidden_layers"] if hf else cfg["n_layer"]
    residual = emb[tokens]
    for i in range(layers):
        prefix = f"backbone.layers.{i}."
        residual = residual + mixer(rms_norm(residual, sd[prefix + "norm.weight"], eps), sd, prefix + "mixer.")
    h = rms_norm(residual, sd["backbone.norm_f.weight"], eps)
    return h @ sd.get("lm_head.weight", emb).T


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("--format", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--batch")
    l = sub.add_parser("loss")
    l.add_argument("--checkpoint", required=True)
    l.add_argument("--batch", required=True)
    args = parser.parse_args()
    if args.command == "write":
        write(args.format, args.out, getattr(torch, args.dtype), args.seed)
        if not args.batch:
            return
    with open(args.batch) as f:
        tokens = torch.tensor(json.load(f)["tokens"], dtype=torch.long)
    with torch.no_grad():
        logits = logits_of(args.out if args.command == "write" else args.checkpoint, tokens[:, :-1])
        losses = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
    print(json.dumps({"loss": losses.mean().item(), "row_losses": losses.mean(1).tolist(), "logits_shape": list(logits.shape)}))


if __name__ == "__main__":
    main()
