#!/usr/bin/env python3
"""Checks our Llama model (what tests/helpers/llama-golden wrote to OUTDIR) against PyTorch.

    check_llama_golden.py OUTDIR [--corrupt-grad NAME]

The reference is LlamaForCausalLM as HF transformers' modeling_llama.py defines it, written out
here in plain PyTorch (float32, autograd): RMSNorm with the variance in float32, rotate_half
RoPE (Llama 3 rope_scaling as _compute_llama3_parameters), q/k/v/o without bias, repeat_kv for
grouped-query attention, softmax in float32, SwiGLU MLP, final norm, lm_head or the tied
embedding. The one addition is packing: query t attends to key s iff doc_start[t] <= s <= t, and
RoPE uses the given positions. Targets of -1 carry no loss (HF's ignore_index is -100).

From the same initial parameters it compares, as relative L2 errors ||ours - torch|| / ||torch||
within 1e-4: the logits, the mean loss, every parameter's gradient, and the mean loss at each of
10 steps of torch.optim.AdamW on the same batch. It also checks that the parameter files are
exactly HF's names and shapes for the config.

With LoRA (OUTDIR has lora.json, written by llama-golden --lora R) the base is frozen and the
reference is HF peft's Linear LoRA layer, in plain PyTorch: each targeted nn.Linear becomes
    y = base(x) + lora_B(lora_A(dropout(x))) * scaling,   scaling = alpha / r (rsLoRA: alpha / sqrt(r)),
with requires_grad on A and B only. The dropout mask is ours, recomputed here with the same
counter-based splitmix hash (libshared/nn/rng.hpp hash_uniform; one stream per layer and
target, libshared/nn/llama.cpp LlamaModel::lora_forward), so dropout > 0 is checked too. From the
same base and initial adapters (lora/NAME.npy) it compares the logits, the loss, the gradient of
every A and B (lora_grads/) and the 10 AdamW losses (adapters only; weight decay on all of them,
as they are 2-D) within 1e-4 relative, checks the adapter files' names and shapes, init_lora's A
bound and zero B, the scale, and that the base after the 10 steps (params_after/) is
bit-identical to the initial one. Adapter tensors are named as lora_param_specs names them,
lora/model.layers.L.self_attn.q_proj/A.

--corrupt-grad NAME scales our gradient of NAME (a base parameter, or with LoRA an adapter
tensor such as lora/model.layers.1.self_attn.k_proj/A) by 1.001 before the comparison, to show
that the check catches an error of that size.

Prints one line per failure and a summary of the worst errors; exits 0 when all pass, 1 if not.
"""

import argparse
import json
import math
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-4


def rel_err(ours, ref):
    """||ours - ref|| / ||ref|| in float64."""
    ours = torch.as_tensor(ours, dtype=torch.float64)
    ref = torch.as_tensor(ref, dtype=torch.float64)
    return (torch.linalg.norm(ours - ref) / max(torch.linalg.norm(ref).item(), 1e-30)).item()


def hf_param_shapes(cfg):
    """HF LlamaForCausalLM's state_dict names and shapes for the config, in order."""
    C, F_, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = C // H
    shapes = {"model.embed_tokens.weight": (V, C)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes.update({
            p + "input_layernorm.weight": (C,),
            p + "self_attn.q_proj.weight": (H * D, C),
            p + "self_attn.k_proj.weight": (KV * D, C),
            p + "self_attn.v_proj.weight": (KV * D, C),
            p + "self_attn.o_proj.weight": (C, H * D),
            p + "post_attention_layernorm.weight": (C,),
            p + "mlp.gate_proj.weight": (F_, C),
            p + "mlp.up_proj.weight": (F_, C),
            p + "mlp.down_proj.weight": (C, F_),
        })
    shapes["model.norm.weight"] = (C,)
    if not cfg.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (V, C)
    return shapes


# LoRA targets in LoraTarget order (their index picks the dropout stream) and HF module names.
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
LORA_MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}
M64 = (1 << 64) - 1


def lora_shapes(cfg, lora):
    """Adapter names (as lora_param_specs, without "lora/") and shapes: A [r, in], B [out, r]."""
    C, F_, H, KV = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = C // H
    out_in = {"q": (H * D, C), "k": (KV * D, C), "v": (KV * D, C), "o": (C, H * D),
              "gate": (F_, C), "up": (F_, C), "down": (C, F_)}
    r = lora["rank"]
    shapes = {}
    for l in range(cfg["num_hidden_layers"]):
        for t in LORA_TARGETS:
            if t in lora["targets"]:
                o, i = out_in[t]
                base = f"model.layers.{l}.{LORA_MODULES[t]}"
                shapes[base + "/A"] = (r, i)
                shapes[base + "/B"] = (o, r)
    return shapes


def hash_uniform(seed, idx):
    """rng.hpp's hash_uniform(seed, i) for a uint64 array of i: splitmix64 of seed + (i + 1) * golden."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (idx + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def dropout_mask(dropout_seed, layer, target, n_rows, width, p):
    """The [n_rows, width] multipliers of our adapter dropout for (layer, target): element (n, col)
    is kept iff hash_uniform(seed_of(layer, target), n * width + col) >= p (p as the float the
    model holds), and a kept one is 1 / (1 - p) in float32, as the backends' dropout_fwd."""
    seed = (dropout_seed ^ (((layer * 8 + LORA_TARGETS.index(target) + 1) * 0xD1B54A32D192ED03) & M64)) & M64
    p32 = np.float32(p)
    keep = hash_uniform(seed, np.arange(n_rows * width, dtype=np.uint64)) >= float(p32)
    scale = np.float32(1.0) / (np.float32(1.0) - p32)
    return torch.from_numpy(np.where(keep, scale, np.float32(0.0)).astype(np.float32).reshape(n_rows, width))


class PeftLora:
    """peft's LoraLayer.forward (Linear, no merge) around each targeted projection:
    result = base_layer(x) + lora_B(lora_A(dropout(x))) * scaling, dropout with our masks."""

    def __init__(self, settings, factors):
        self.targets = settings["targets"]
        r, alpha = settings["rank"], settings["alpha"]
        self.scaling = alpha / math.sqrt(r) if settings["rslora"] else alpha / r  # peft's rslora rule
        self.p = settings["dropout"]
        self.factors = factors  # {"model.layers.L.self_attn.q_proj/A": tensor, ...}
        self.dropout_seed = None

    def linear(self, x, layer, target, weight):
        y = F.linear(x, weight)  # the frozen base_layer
        if target not in self.targets:
            return y
        base = f"model.layers.{layer}.{LORA_MODULES[target]}"
        u = x
        if self.p > 0:
            b, t, width = x.shape
            u = x * dropout_mask(self.dropout_seed, layer, target, b * t, width, self.p).view(b, t, width)
        return y + F.linear(F.linear(u, self.factors[base + "/A"]), self.factors[base + "/B"]) * self.scaling


def rms_norm(x, weight, eps):
    """LlamaRMSNorm.forward (in float32, or float64 for a float64 reference such as
    check_dpo_golden.py's, where HF's cast to float32 would only add rounding)."""
    input_dtype = x.dtype
    x = x.to(torch.promote_types(input_dtype, torch.float32))
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + eps)
    return weight * x.to(input_dtype)


def llama3_inv_freq(inv_freq, rs):
    """_compute_llama3_parameters (modeling_rope_utils.py) applied to the default inv_freq."""
    factor = rs["factor"]
    low_freq_factor = rs["low_freq_factor"]
    high_freq_factor = rs["high_freq_factor"]
    old_context_len = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    # wavelen < high_freq_wavelen: kept; wavelen > low_freq_wavelen: divided by factor
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    # in between: a smooth blend of the two
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    """[B, KV, T, D] -> [B, KV * n_rep, T, D], each KV head serving n_rep query heads in turn."""
    b, kv, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, t, d).reshape(b, kv * n_rep, t, d)


def forward(cfg, P, ids, pos, doc_start, lora=None):
    """LlamaForCausalLM.forward: ids, pos, doc_start [B, T] -> logits [B, T, V]; with `lora` (a
    PeftLora) its adapters wrap the targeted projections."""
    B, T = ids.shape
    if lora is None:
        def lin(x, layer, target, w):
            return F.linear(x, w)
    else:
        lin = lora.linear
    C, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = C // H
    eps = cfg["rms_norm_eps"]

    # LlamaRotaryEmbedding: float32 inv_freq, angles pos * inv_freq, cos/sin of cat(freqs, freqs).
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    if cfg.get("rope_scaling"):
        assert cfg["rope_scaling"]["rope_type"] == "llama3"
        inv_freq = llama3_inv_freq(inv_freq, cfg["rope_scaling"])
    freqs = pos[:, :, None].float() * inv_freq[None, None, :]  # [B, T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B, 1, T, D], broadcast over heads

    # Causal within documents: key s is visible to query t iff doc_start[t] <= s <= t.
    s = torch.arange(T)
    visible = (s[None, None, :] <= s[None, :, None]) & (s[None, None, :] >= doc_start[:, :, None])  # [B, Tq, Tk]
    mask_min = torch.finfo(torch.float32).min  # as HF's 4-D mask: a large negative, not -inf

    x = F.embedding(ids, P["model.embed_tokens.weight"])  # [B, T, C]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, P[p + "input_layernorm.weight"], eps)
        q = lin(h, l, "q", P[p + "self_attn.q_proj.weight"]).view(B, T, H, D).transpose(1, 2)
        k = lin(h, l, "k", P[p + "self_attn.k_proj.weight"]).view(B, T, KV, D).transpose(1, 2)
        v = lin(h, l, "v", P[p + "self_attn.v_proj.weight"]).view(B, T, KV, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, H // KV), repeat_kv(v, H // KV)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(D)  # [B, H, T, T]
        scores = scores.masked_fill(~visible[:, None], mask_min)
        probs = F.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(q.dtype)
        att = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H * D)
        x = x + lin(att, l, "o", P[p + "self_attn.o_proj.weight"])
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        mlp = F.silu(lin(h, l, "gate", P[p + "mlp.gate_proj.weight"])) * lin(h, l, "up", P[p + "mlp.up_proj.weight"])
        x = x + lin(mlp, l, "down", P[p + "mlp.down_proj.weight"])
    x = rms_norm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else P["lm_head.weight"]
    return F.linear(x, head)


def mean_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)


def load_npy(path):
    a = np.load(path)
    if a.dtype != np.float32:
        raise SystemExit(f"{path}: dtype {a.dtype}, expected float32")
    return torch.from_numpy(np.ascontiguousarray(a))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", type=pathlib.Path)
    ap.add_argument("--corrupt-grad", metavar="NAME", help="scale our gradient of NAME by 1.001 first")
    args = ap.parse_args()
    out = args.outdir
    torch.set_num_threads(1)

    cfg = json.loads((out / "config.json").read_text())
    batch = json.loads((out / "batch.json").read_text())
    B, T = batch["B"], batch["T"]
    ids, targets, pos, doc_start = (torch.tensor(batch[k], dtype=torch.int64).view(B, T)
                                    for k in ("ids", "targets", "pos", "doc_start"))
    failures = []

    # Names and shapes: exactly HF's, so that our checkpoints load into transformers as they are.
    shapes = hf_param_shapes(cfg)
    files = {p.name[: -len(".npy")] for p in (out / "params").glob("*.npy")}
    for name in sorted(files - shapes.keys()):
        failures.append(f"params: {name} is not a parameter of HF's LlamaForCausalLM for this config")
    for name in [n for n in shapes if n not in files]:
        failures.append(f"params: {name} is missing")
    init = {n: load_npy(out / "params" / f"{n}.npy") for n in shapes if n in files}
    for name, t in init.items():
        if tuple(t.shape) != shapes[name]:
            failures.append(f"params: {name} has shape {tuple(t.shape)}, HF's is {shapes[name]}")
    if failures:
        print("\n".join(f"FAIL {f}" for f in failures))
        return 1

    def check(what, err):
        if not err <= TOL:  # also catches NaN
            failures.append(f"{what}: relative error {err:.3e} > {TOL:g}")
        return err

    if (out / "lora.json").exists():
        return check_lora(args, cfg, (ids, targets, pos, doc_start), shapes, init, failures, check)
    if args.corrupt_grad and args.corrupt_grad not in shapes:
        raise SystemExit(f"--corrupt-grad: no parameter named {args.corrupt_grad}")

    # Forward and backward from the initial parameters.
    P = {n: t.clone().requires_grad_() for n, t in init.items()}
    logits = forward(cfg, P, ids, pos, doc_start)
    loss = mean_loss(logits, targets)
    loss.backward()
    V = cfg["vocab_size"]
    err_logits = check("logits", rel_err(load_npy(out / "logits.npy"), logits.detach().reshape(B * T, V)))
    ours_loss = json.loads((out / "loss.json").read_text())
    count = int((targets != -1).sum())
    if ours_loss["count"] != count:
        failures.append(f"loss: counted over {ours_loss['count']} targets, torch over {count}")
    err_loss = check("loss", abs(ours_loss["loss"] - loss.item()) / abs(loss.item()))
    grad_errs = {}
    for name, p in P.items():
        ours = load_npy(out / "grads" / f"{name}.npy")
        if name == args.corrupt_grad:
            ours = ours * 1.001
        grad_errs[name] = check(f"grad {name}", rel_err(ours, p.grad))
    worst_grad = max(grad_errs, key=grad_errs.get)

    # AdamW, 10 steps on the same batch: decay on the 2-D weights only, no clipping; step k's loss
    # is that of the parameters before step k's update.
    adam = json.loads((out / "adamw_losses.json").read_text())
    P = {n: t.clone().requires_grad_() for n, t in init.items()}
    groups = [{"params": [p for p in P.values() if p.dim() >= 2], "weight_decay": adam["weight_decay"]},
              {"params": [p for p in P.values() if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=adam["lr"], betas=tuple(adam["betas"]), eps=adam["eps"])
    torch_losses = []
    for _ in range(len(adam["losses"])):
        opt.zero_grad()
        step_loss = mean_loss(forward(cfg, P, ids, pos, doc_start), targets)
        step_loss.backward()
        torch_losses.append(step_loss.item())
        opt.step()
    adam_errs = [abs(a - b) / abs(b) for a, b in zip(adam["losses"], torch_losses)]
    for k, e in enumerate(adam_errs, 1):
        check(f"adamw step {k} loss (ours {adam['losses'][k - 1]:.7f}, torch {torch_losses[k - 1]:.7f})", e)
    if len(adam["losses"]) != 10:
        failures.append(f"adamw: {len(adam['losses'])} losses, expected 10")
    worst_step = max(range(len(adam_errs)), key=adam_errs.__getitem__)

    for f in failures:
        print(f"FAIL {f}")
    print(f"{'FAILED' if failures else 'ok'}: {len(P)} tensors, loss {loss.item():.6f} -> "
          f"{torch_losses[-1]:.6f} after {len(torch_losses)} AdamW steps; worst relative errors: "
          f"logits {err_logits:.2e}, loss {err_loss:.2e}, grads {grad_errs[worst_grad]:.2e} ({worst_grad}), "
          f"adamw losses {adam_errs[worst_step]:.2e} (step {worst_step + 1}) (tolerance {TOL:g})")
    return 1 if failures else 0

def check_lora(args, cfg, batch, shapes, init, failures, check):
    """The LoRA half of main(): peft's math on the frozen base against lora/, lora_grads/,
    logits, loss, the 10 AdamW losses and params_after/."""
    out = args.outdir
    ids, targets, pos, doc_start = batch
    B, T = ids.shape
    V = cfg["vocab_size"]
    settings = json.loads((out / "lora.json").read_text())
    for t in settings["targets"]:
        if t not in LORA_TARGETS:
            raise SystemExit(f"lora.json: unknown target {t}")
    seeds = settings["dropout_seeds"]
    if len(seeds) != 10:
        failures.append(f"lora: {len(seeds)} dropout seeds, expected 10")

    # Adapter files: exactly lora_param_specs' names and shapes for the config and targets.
    ashapes = lora_shapes(cfg, settings)
    files = {str(p.relative_to(out / "lora"))[: -len(".npy")] for p in (out / "lora").rglob("*.npy")}
    for name in sorted(files - ashapes.keys()):
        failures.append(f"lora: lora/{name} is not an adapter of targets {','.join(settings['targets'])}")
    for name in [n for n in ashapes if n not in files]:
        failures.append(f"lora: lora/{name} is missing")
    factors0 = {n: load_npy(out / "lora" / f"{n}.npy") for n in ashapes if n in files}
    for name, t in factors0.items():
        if tuple(t.shape) != ashapes[name]:
            failures.append(f"lora: lora/{name} has shape {tuple(t.shape)}, expected {ashapes[name]}")
    if failures:
        print("\n".join(f"FAIL {f}" for f in failures))
        return 1
    if args.corrupt_grad and args.corrupt_grad.removeprefix("lora/") not in ashapes:
        raise SystemExit(f"--corrupt-grad: no adapter tensor named {args.corrupt_grad}")

    # init_lora as peft's reset_lora_parameters: A ~ kaiming_uniform_(a = sqrt(5)), i.e.
    # U(-1/sqrt(in), 1/sqrt(in)) (not degenerate: 96+ draws reach past 0.8 of the bound), B = 0
    # (the helper then gives B values; it reports whether init_lora had left them at 0).
    for name, t in factors0.items():
        if name.endswith("/A"):
            bound = 1.0 / math.sqrt(t.shape[1])
            top = t.abs().max().item()
            if not 0.8 * bound < top <= bound * (1 + 1e-6):
                failures.append(f"lora: init A lora/{name}: max |A| {top:.6g} is not within (0.8, 1] x 1/sqrt(in) = {bound:.6g}")
    if settings.get("init_b_all_zero") is not True:
        failures.append("lora: init_lora left a B that is not all zeros")
    lora = PeftLora(settings, {})
    if abs(settings["scale"] - lora.scaling) > 1e-12 * lora.scaling:
        failures.append(f"lora: our scale {settings['scale']!r}, peft's {'alpha / sqrt(r)' if settings['rslora'] else 'alpha / r'} "
                        f"= {lora.scaling!r}")

    # Forward and backward: the base frozen (no requires_grad), gradients of A and B only.
    P = {n: t.clone() for n, t in init.items()}
    lora.factors = {n: t.clone().requires_grad_() for n, t in factors0.items()}
    lora.dropout_seed = seeds[0]
    logits = forward(cfg, P, ids, pos, doc_start, lora)
    loss = mean_loss(logits, targets)
    loss.backward()
    err_logits = check("logits", rel_err(load_npy(out / "logits.npy"), logits.detach().reshape(B * T, V)))
    ours_loss = json.loads((out / "loss.json").read_text())
    count = int((targets != -1).sum())
    if ours_loss["count"] != count:
        failures.append(f"loss: counted over {ours_loss['count']} targets, torch over {count}")
    err_loss = check("loss", abs(ours_loss["loss"] - loss.item()) / abs(loss.item()))
    grad_errs = {}
    for name, p in lora.factors.items():
        full = "lora/" + name
        ours = load_npy(out / "lora_grads" / f"{name}.npy")
        if tuple(ours.shape) != tuple(p.shape):
            failures.append(f"grad {full}: shape {tuple(ours.shape)}, expected {tuple(p.shape)}")
            continue
        if full == args.corrupt_grad or name == args.corrupt_grad:
            ours = ours * 1.001
        if not p.grad.abs().max().item() > 0:
            failures.append(f"grad {full}: torch's gradient is all zeros (the test would not see an error)")
        grad_errs[full] = check(f"grad {full}", rel_err(ours, p.grad))
    if any(p.grad is not None for p in P.values()):
        failures.append("torch: a base parameter got a gradient")
    worst_grad = max(grad_errs, key=grad_errs.get)

    # AdamW, 10 steps on the same batch, the adapters only (all 2-D: all decayed); step k's loss is
    # that of the adapters before step k's update, its forward with dropout seed k.
    adam = json.loads((out / "adamw_losses.json").read_text())
    lora.factors = {n: t.clone().requires_grad_() for n, t in factors0.items()}
    decayed = [p for p in lora.factors.values() if p.dim() >= 2]
    others = [p for p in lora.factors.values() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": adam["weight_decay"]},
                             {"params": others, "weight_decay": 0.0}],
                            lr=adam["lr"], betas=tuple(adam["betas"]), eps=adam["eps"])
    torch_losses = []
    for k in range(len(adam["losses"])):
        opt.zero_grad()
        lora.dropout_seed = seeds[k]
        step_loss = mean_loss(forward(cfg, P, ids, pos, doc_start, lora), targets)
        step_loss.backward()
        torch_losses.append(step_loss.item())
        opt.step()
    adam_errs = [abs(a - b) / abs(b) for a, b in zip(adam["losses"], torch_losses)]
    for k, e in enumerate(adam_errs, 1):
        check(f"adamw step {k} loss (ours {adam['losses'][k - 1]:.7f}, torch {torch_losses[k - 1]:.7f})", e)
    if len(adam["losses"]) != 10:
        failures.append(f"adamw: {len(adam['losses'])} losses, expected 10")
    worst_step = max(range(len(adam_errs)), key=adam_errs.__getitem__)

    # The frozen base after training: bit for bit the initial one.
    changed = 0
    for name in shapes:
        path = out / "params_after" / f"{name}.npy"
        if not path.exists():
            failures.append(f"base {name}: params_after/{name}.npy is missing")
            continue
        a = np.load(path)
        b = init[name].numpy()
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
            changed += 1
            n_diff = int((a.view(np.uint32) != b.view(np.uint32)).sum()) if a.shape == b.shape else -1
            failures.append(f"base {name}: changed during LoRA training ({n_diff} elements differ)")

    for f in failures:
        print(f"FAIL {f}")
    targets_s = ",".join(t for t in LORA_TARGETS if t in settings["targets"])
    print(f"{'FAILED' if failures else 'ok'}: LoRA rank {settings['rank']} on {targets_s}, scale {lora.scaling:.6g}"
          f"{' (rslora)' if settings['rslora'] else ''}, dropout {settings['dropout']:g}: {len(lora.factors)} adapter "
          f"tensors; base of {len(shapes)} tensors {'bit-identical' if changed == 0 else 'CHANGED'} after "
          f"{len(torch_losses)} steps; loss {loss.item():.6f} -> {torch_losses[-1]:.6f}; worst relative errors: "
          f"logits {err_logits:.2e}, loss {err_loss:.2e}, grads {grad_errs[worst_grad]:.2e} ({worst_grad}), "
          f"adamw losses {adam_errs[worst_step]:.2e} (step {worst_step + 1}) (tolerance {TOL:g})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
