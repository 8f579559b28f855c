#!/usr/bin/env python3
"""The PyTorch eager peer of `pretrain --device cuda` for bench/gpu, on the same card.

    torch_llama.py --config config.json --seq-len 2048 --micro-batch 4 --steps 20 --result OUT.json
                   [--warmup-exclude 3] [--profile PROFILE.txt]
    torch_llama.py --matmul-peak OUT.json        (the card's bf16 and fp32 GEMM peak, torch.mm)

LlamaForCausalLM as HF's modeling_llama.py defines it, in plain PyTorch modules (HF's names, fp32
parameters): RMSNorm (variance in fp32), RoPE (rotate_half, Llama 3 frequency scaling), GQA,
attention through F.scaled_dot_product_attention(is_causal=True) (PyTorch picks its flash /
memory-efficient kernel), SwiGLU MLP, final norm, lm_head (tied when the config says so), loss
F.cross_entropy over the fp32 logits. Mixed precision as people run it: forward and backward
under torch.autocast(bfloat16), fp32 master weights and AdamW state (fused AdamW, betas
(0.9, 0.95), eps 1e-8, weight decay 0.1 on 2-D weights), clipping by global norm at 1.0, lr
warmup then cosine. The batches are random token ids of the config's vocabulary (throughput does
not depend on the text; this machine has no h5py to read our shards). Each step is timed from its
batch to the end of the optimizer step with torch.cuda.synchronize(); tokens/s and MFU over the
steps after --warmup-exclude. --profile writes torch.profiler's table of CUDA kernels over two
steps."""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rope_tables(cfg, T, device):
    D = cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    sc = cfg.get("rope_scaling")
    if sc and sc.get("rope_type") == "llama3":
        old, lo, hi, fac = sc["original_max_position_embeddings"], sc["low_freq_factor"], sc["high_freq_factor"], sc["factor"]
        wl = 2 * math.pi / inv
        out = torch.where(wl > old / lo, inv / fac, inv)
        smooth = (old / wl - lo) / (hi - lo)
        mid = (1 - smooth) * out / fac + smooth * out
        inv = torch.where((wl >= old / hi) & (wl <= old / lo), mid, out)
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
    emb = torch.cat([ang, ang], -1)
    return emb.cos().to(device), emb.sin().to(device)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, F_ = cfg["hidden_size"], cfg["intermediate_size"]
        self.H, self.KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.D = C // self.H
        eps = cfg.get("rms_norm_eps", 1e-5)
        self.input_layernorm = RMSNorm(C, eps)
        self.post_attention_layernorm = RMSNorm(C, eps)
        self.q_proj = nn.Linear(C, self.H * self.D, bias=False)
        self.k_proj = nn.Linear(C, self.KV * self.D, bias=False)
        self.v_proj = nn.Linear(C, self.KV * self.D, bias=False)
        self.o_proj = nn.Linear(self.H * self.D, C, bias=False)
        self.gate_proj = nn.Linear(C, F_, bias=False)
        self.up_proj = nn.Linear(C, F_, bias=False)
        self.down_proj = nn.Linear(F_, C, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.KV, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.KV, self.D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o_proj(a.transpose(1, 2).reshape(B, T, self.H * self.D))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg.get("rms_norm_eps", 1e-5))
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_word_embeddings"):
            self.lm_head.weight = self.embed_tokens.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids, targets, cos, sin):
        x = self.embed_tokens(ids)
        for blk in self.layers:
            x = blk(x, cos, sin)
        logits = self.lm_head(self.norm(x)).float()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def flops_per_token(cfg, T):
    """pretrain's count (nn::LlamaConfig::train_flops_per_token): 6 x matmul parameters + 12 L C T."""
    C, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    D = C // cfg["num_attention_heads"]
    per_layer = C * (cfg["num_attention_heads"] * D + 2 * cfg["num_key_value_heads"] * D) + cfg["num_attention_heads"] * D * C \
        + 3 * C * cfg["intermediate_size"]
    # pretrain counts every parameter but an untied embedding: the layers, the norms, and the
    # embedding once (it is the lm_head when tied; the lookup itself costs nothing)
    matmul = L * (per_layer + 2 * C) + C + V * C
    return 6.0 * matmul + 12.0 * L * C * T


def matmul_peak(out):
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for name, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32), ("tf32", "tf32")):
        torch.backends.cuda.matmul.allow_tf32 = dt == "tf32"
        best = 0.0
        for n in (4096, 8192):
            a = torch.randn(n, n, device="cuda", dtype=torch.float32 if dt == "tf32" else dt)
            b = torch.randn_like(a)
            for _ in range(3):
                a @ b
            torch.cuda.synchronize()
            reps = 20
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            torch.cuda.synchronize()
            best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12)
        res[name + "_tflops"] = best
    torch.backends.cuda.matmul.allow_tf32 = False
    json.dump(res, open(out, "w"), indent=1)
    print(f"matmul peak on {res['device']}: bf16 {res['bf16_tflops']:.0f}, tf32 {res['tf32_tflops']:.0f}, "
          f"fp32 {res['fp32_tflops']:.0f} TFLOP/s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup-exclude", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--result")
    ap.add_argument("--profile")
    ap.add_argument("--matmul-peak")
    a = ap.parse_args()
    if a.matmul_peak:
        return matmul_peak(a.matmul_peak)
    cfg = json.load(open(a.config))
    torch.manual_seed(1)
    dev = torch.device("cuda")
    model = Llama(cfg).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    B, T, V = a.micro_batch, a.seq_len, cfg["vocab_size"]
    cos, sin = rope_tables(cfg, T, dev)
    gen = torch.Generator(device=dev).manual_seed(1)

    def lr_at(step):
        warm = max(1, a.steps // 10)
        if step < warm:
            return a.lr * (step + 1) / warm
        p = (step - warm) / max(1, a.steps - warm)
        return a.lr * 0.1 + 0.5 * (a.lr - a.lr * 0.1) * (1 + math.cos(math.pi * p))

    def step(i):
        ids = torch.randint(0, V, (B, T + 1), device=dev, generator=gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(i)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(ids[:, :T], ids[:, 1:], cos, sin)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    times, losses = [], []
    torch.cuda.reset_peak_memory_stats()
    for i in range(a.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step(i)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
        print(f"torch step {i + 1}/{a.steps} loss {losses[-1]:.4f} {times[-1]:.3f} s", flush=True)
    timed = times[a.warmup_exclude:]
    mean = sum(timed) / len(timed)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "micro_batch": B, "seq_len": T,
           "steps": a.steps, "step_s": times, "loss": losses, "mean_step_s": mean, "tokens_per_s": B * T / mean,
           "flops_per_token": flops_per_token(cfg, T), "peak_memory_allocated_gb": torch.cuda.max_memory_allocated() / 1e9}
    json.dump(res, open(a.result, "w"), indent=1)
    print(f"torch: {res['tokens_per_s']:.0f} tokens/s, peak allocated {res['peak_memory_allocated_gb']:.1f} GB")
    if a.profile:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for i in range(2):
                step(i)
            torch.cuda.synchronize()
        open(a.profile, "w").write(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))


if __name__ == "__main__":
    main()
