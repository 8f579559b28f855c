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

--corrupt-grad NAME scales our gradient of NAME by 1.001 before the comparison, to show that the
check catches an error of that size.

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


def rms_norm(x, weight, eps):
    """LlamaRMSNorm.forward."""
    input_dtype = x.dtype
    x = x.to(torch.float32)
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


def forward(cfg, P, ids, pos, doc_start):
    """LlamaForCausalLM.forward: ids, pos, doc_start [B, T] -> logits [B, T, V]."""
    B, T = ids.shape
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
        q = F.linear(h, P[p + "self_attn.q_proj.weight"]).view(B, T, H, D).transpose(1, 2)
        k = F.linear(h, P[p + "self_attn.k_proj.weight"]).view(B, T, KV, D).transpose(1, 2)
        v = F.linear(h, P[p + "self_attn.v_proj.weight"]).view(B, T, KV, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, H // KV), repeat_kv(v, H // KV)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(D)  # [B, H, T, T]
        scores = scores.masked_fill(~visible[:, None], mask_min)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        att = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H * D)
        x = x + F.linear(att, P[p + "self_attn.o_proj.weight"])
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        mlp = F.silu(F.linear(h, P[p + "mlp.gate_proj.weight"])) * F.linear(h, P[p + "mlp.up_proj.weight"])
        x = x + F.linear(mlp, P[p + "mlp.down_proj.weight"])
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
    if args.corrupt_grad and args.corrupt_grad not in shapes:
        raise SystemExit(f"--corrupt-grad: no parameter named {args.corrupt_grad}")

    def check(what, err):
        if not err <= TOL:  # also catches NaN
            failures.append(f"{what}: relative error {err:.3e} > {TOL:g}")
        return err

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


if __name__ == "__main__":
    sys.exit(main())
