"""An independent PyTorch implementation of mambalab's language models (Mamba, MoE-Mamba,
BlackMamba, Transformer, Transformer-MoE, Jamba-style hybrids).

Written from the Mamba paper and mamba_ssm's reference block (no mambalab code): the
selective scan is a plain sequential loop, attention is PyTorch's scaled_dot_product_attention,
and every gradient comes from autograd, so it checks the engine's hand-written backward.
Parameter names and shapes match mambalab's safetensors checkpoints (which follow mamba_ssm's
MambaLMHeadModel).

Usage:
  python mamba_ref.py --checkpoint DIR --batch batch.json --out grads.safetensors [--dtype float64]
DIR holds config.json and model.safetensors (as written by mambalab's model.save); batch.json
is {"tokens": [[...], ...]} with rows of seqLen + 1 ids. Writes the cross-entropy (metadata
"loss"), the load-balancing loss ("aux_loss"), the tokens each expert took per MoE layer
("experts", JSON) and d(loss + aux_loss)/d(parameter) for every parameter, under its name.
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


def selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, chunk=16):
    """selective_scan's function in fp32 (or A's wider dtype), a chunk of steps at a time, for speed on a GPU
    (bench/reference/train_reference.py): within a chunk the recurrence h_t = a_t h_{t-1} + b_t
    is solved in closed form, h_t = e^{S_t} (h_0 + sum_{s<=t} e^{-S_s} b_s) with S_t the cumulative
    sum of log a = dt·A; a loop over chunks carries h. e^{-S} grows with the chunk: at 16 steps
    it stays finite in fp32 while dt·|A| averages below 5.5 per step (dt ≤ 0.34 with A down to -16)."""
    dtype = z.dtype
    compute = torch.promote_types(A.dtype, torch.float32)  # bf16 activations under autocast
    u, delta, z, B, C = (t.to(compute) for t in (u, delta, z, B, C))
    dt = F.softplus(delta + delta_bias)
    batch, length, dim = u.shape
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for start in range(0, length, chunk):
        steps = slice(start, start + chunk)
        S = torch.cumsum(dt[:, steps, :, None] * A, dim=1)  # (batch, chunk, dim, dstate), ≤ 0
        drive = dt[:, steps, :, None] * B[:, steps, None, :] * u[:, steps, :, None]
        states = torch.exp(S) * (h[:, None] + torch.cumsum(torch.exp(-S) * drive, dim=1))
        ys.append(torch.einsum("btdn,btn->btd", states, C[:, steps]))
        h = states[:, -1]
    y = torch.cat(ys, dim=1) + D * u
    return (y * F.silu(z)).to(dtype)


def mamba_mixer(x, p, prefix, cfg, scan=selective_scan):
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
    y = scan(xs, delta, A, B, C, p[prefix + "D"], z, p[prefix + "dt_proj.bias"])
    return y @ p[prefix + "out_proj.weight"].T


def feed_forward(x, fc1, fc2, kind):
    """gelu: fc2(gelu(fc1 x)); swiglu: fc1 gives [up; gate], fc2(up * silu(gate)) (mamba_ssm's GatedMLP);
    geglu: the same with the exact GELU on the gate (BlackMamba's released experts)."""
    h = x @ fc1.T
    if kind == "gelu":
        return F.gelu(h) @ fc2.T
    up, gate = h.chunk(2, dim=-1)
    activation = {"swiglu": F.silu, "geglu": F.gelu}[kind]
    return (up * activation(gate)) @ fc2.T


def rope(x, theta):
    """Rotary positions on x (batch, len, heads, head_dim), the half-split ("rotate_half")
    convention of HF Llama and GPT-NeoX: the pair (x[i], x[i + head_dim/2]) at position t
    turns by t · theta^(-2i/head_dim)."""
    length, head_dim = x.shape[1], x.shape[-1]
    half = head_dim // 2
    # Angles in float64 whatever x is, so positions far along keep their precision.
    inverse_frequency = theta ** (-torch.arange(half, dtype=torch.float64, device=x.device) * 2 / head_dim)
    angles = torch.arange(length, dtype=torch.float64, device=x.device)[:, None] * inverse_frequency  # (len, half)
    cos, sin = (f(angles).to(x.dtype)[None, :, None, :] for f in (torch.cos, torch.sin))
    a, b = x[..., :half], x[..., half:]
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


def attention(x, p, prefix, cfg):
    """Causal grouped-query attention: in_proj gives [q; k; v] for nHeads query and nKvHeads
    key/value heads (query head h reads key/value head h // (nHeads / nKvHeads)), rope on q and
    k if asked, softmax(q kᵀ / sqrt(head_dim)) v under a causal mask, out_proj. No biases."""
    batch, length, d = x.shape
    heads, kv_heads = cfg["nHeads"], cfg["nKvHeads"]
    head_dim = d // heads
    qkv = x @ p[prefix + "in_proj.weight"].T
    q, k, v = torch.split(qkv, [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
    q = q.reshape(batch, length, heads, head_dim)
    k = k.reshape(batch, length, kv_heads, head_dim)
    v = v.reshape(batch, length, kv_heads, head_dim)
    if cfg["rope"]:
        q, k = rope(q, cfg["ropeTheta"]), rope(k, cfg["ropeTheta"])
    # SDPA wants (batch, heads, len, head_dim); enable_gqa shares each key/value head among its
    # consecutive group of query heads, as the engine does.
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, enable_gqa=kv_heads != heads)
    return o.transpose(1, 2).reshape(batch, length, heads * head_dim) @ p[prefix + "out_proj.weight"].T


def sinkhorn_scores(logits, cfg):
    """Sinkhorn-balanced routing scores: K = exp(2·logits), column scales first set to
    1/(E·column sum), rows and columns normalised until the normalised column scales move
    less than the tolerance (L1). No gradient: they only choose experts."""
    with torch.no_grad():
        K = torch.exp(2 * (logits - logits.max(dim=1, keepdim=True).values))
        tokens, experts = K.shape
        col = 1 / (experts * K.sum(0))
        for _ in range(cfg["sinkhornMaxIter"]):
            row = 1 / (tokens * (K @ col))
            new = 1 / (experts * (K.T @ row))
            change = (new / new.sum() - col / col.sum()).abs().sum()
            col = new
            if change < cfg["sinkhornTol"]:
                break
        return K * col


def moe(x, p, prefix, cfg, training=True):
    """Returns the layer output, its auxiliary loss and the tokens each expert took."""
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    tokens, experts, k = x.shape[0], cfg["numExperts"], cfg["topK"]
    logits = x @ p[prefix + "router.weight"].T
    if cfg["routerBias"]:
        logits = logits + p[prefix + "router.bias"]
    aux = x.new_zeros(())
    if cfg["router"] == "switch":
        probs = torch.softmax(logits, dim=-1)
        choice = torch.topk(probs.detach(), k, dim=-1).indices  # (tokens, k)
        gates = probs.gather(1, choice)
        if cfg["auxLossWeight"] > 0:
            first = F.one_hot(choice[:, 0], experts).to(x.dtype).mean(0)  # f_e
            aux = cfg["auxLossWeight"] * experts * (first * probs.mean(0)).sum()
    else:
        scores = sinkhorn_scores(logits, cfg) if training else logits.detach()
        choice = torch.topk(scores, k, dim=-1).indices
        gates = torch.sigmoid(logits.gather(1, choice))
    # Capacity: first choices claim places first, then second choices; token order within.
    cf = cfg["capacityFactor"]
    capacity = k * tokens if cf == "dropless" else math.ceil(cf * k * tokens / experts)
    flat = choice.T.reshape(-1)  # choice-major
    position = torch.cumsum(F.one_hot(flat, experts), dim=0).gather(1, flat[:, None])[:, 0]
    kept = (position <= capacity).reshape(k, tokens).T  # (tokens, k)
    out = torch.zeros_like(x)
    counts = []
    for e in range(experts):
        rows, slot = torch.nonzero((choice == e) & kept, as_tuple=True)
        counts.append(int(rows.numel()))
        if rows.numel() == 0:
            continue
        y = feed_forward(x[rows], p[prefix + "experts.fc1.weight"][e], p[prefix + "experts.fc2.weight"][e], cfg["expertKind"])
        # Under bf16 autocast (train_reference.py) y is bf16 while out follows x.
        out = out.index_add(0, rows, (gates[rows, slot][:, None] * y).to(out.dtype))
    return out.reshape(shape), aux, counts


def layer_specs(pattern):
    """'ME*2 (M|E)' → [['M'], ['E'], ['M'], ['E'], ['M', 'E']]."""
    specs = []
    for segment in pattern.split():
        units, _, count = segment.partition("*")
        parsed, i = [], 0
        while i < len(units):
            if units[i] == "(":
                end = units.index(")", i)
                parsed.append(units[i + 1:end].split("|"))
                i = end + 1
            else:
                parsed.append([units[i]])
                i += 1
        specs += parsed * (int(count) if count else 1)
    return specs


def lm_loss(p, cfg, tokens, training=True, scan=selective_scan):
    """Mean next-token cross-entropy, the summed auxiliary loss and the expert counts; `scan`
    computes selective_scan's function (train_reference.py passes a faster one)."""
    emb = p["backbone.embedding.weight"]
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    residual = emb[inputs]
    if cfg["maxPositions"] > 0:  # learned absolute positions
        residual = residual + p["backbone.pos_embedding.weight"][: inputs.shape[1]]
    aux_total = residual.new_zeros(())
    counts = []
    for i, kinds in enumerate(layer_specs(cfg["pattern"])):
        prefix = f"backbone.layers.{i}."
        h = rms_norm(residual, p[prefix + "norm.weight"], cfg["normEps"])
        update = torch.zeros_like(h)
        for kind in kinds:
            if kind == "M":
                update = update + mamba_mixer(h, p, prefix + "mixer.", cfg, scan)
            elif kind == "A":
                update = update + attention(h, p, prefix + "attn.", cfg)
            elif kind == "F":
                update = update + feed_forward(h, p[prefix + "mlp.fc1.weight"], p[prefix + "mlp.fc2.weight"], cfg["mlpKind"])
            elif kind == "E":
                y, aux, layer_counts = moe(h, p, prefix + "moe.", cfg, training)
                update, aux_total = update + y, aux_total + aux
                counts.append(layer_counts)
            else:
                raise ValueError(f"the reference has no layer kind {kind!r}")
        residual = residual + update
    if cfg.get("finalNorm", "rmsnorm") == "layernorm":  # BlackMamba's final LayerNorm, with its bias
        h = F.layer_norm(residual, residual.shape[-1:], p["backbone.norm_f.weight"], p["backbone.norm_f.bias"], cfg["normEps"])
    else:
        h = rms_norm(residual, p["backbone.norm_f.weight"], cfg["normEps"])
    logits = h @ emb.T  # tied LM head, over the padded vocabulary
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return ce, aux_total, counts


def load_checkpoint(directory, dtype, device="cpu"):
    """config.json and model.safetensors as model.save writes them: (config, leaf parameters)."""
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    weights = load_file(os.path.join(directory, "model.safetensors"))
    return cfg, {k: v.to(device=device, dtype=dtype).requires_grad_(True) for k, v in weights.items()}


def load_tokens(path, device="cpu"):
    with open(path) as f:
        return torch.tensor(json.load(f)["tokens"], dtype=torch.long, device=device)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--batch", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = parser.parse_args()

    cfg, params = load_checkpoint(args.checkpoint, getattr(torch, args.dtype))
    tokens = load_tokens(args.batch)

    loss, aux, counts = lm_loss(params, cfg, tokens)
    (loss + aux).backward()
    grads = {k: v.grad.detach().contiguous() for k, v in params.items()}
    metadata = {"loss": repr(loss.item()), "aux_loss": repr(aux.item()), "experts": json.dumps(counts), "dtype": args.dtype}
    save_file(grads, args.out, metadata=metadata)
    print(json.dumps({"loss": loss.item(), "aux_loss": aux.item(), "parameters": len(grads)}))


if __name__ == "__main__":
    main()
