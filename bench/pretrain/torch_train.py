#!/usr/bin/env python3
"""The PyTorch eager peer of `pretrain` for bench/pretrain: the same Llama, the same shards, the same order.

    torch_train.py --data DIR --config config.json --steps N --result OUT.json
                   [--seq-len 256] [--micro-batch 8] [--lr 1e-3] [--min-lr 1e-4] [--warmup-steps 10]
                   [--seed 1] [--threads 2] [--save DIR] [--warmup-exclude 2] [--accum 1] [--ddp]
    torch_train.py --matmul-peak OUT.json [--threads 2]    (torch.mm GFLOP/s at n = 512..2048, for information)

The model is LlamaForCausalLM as HF transformers' modeling_llama.py defines it, written out in plain
PyTorch modules with HF's parameter names (float32, eager, autograd): LlamaRMSNorm (variance in
float32), LlamaRotaryEmbedding + rotate_half, LlamaAttention with q/k/v/o without bias and repeat_kv
for grouped-query attention, attention as matmul + additive causal mask (finfo.min, as HF's 4-D mask)
+ softmax in float32 + matmul (torch 1.13 has no F.scaled_dot_product_attention, which arrived in
2.0), LlamaMLP (SwiGLU: down(silu(gate(x)) * up(x))), final norm, untied lm_head, F.cross_entropy
(mean over the micro-batch's tokens). HF's initialisation: Linear and Embedding weights ~ N(0, 0.02),
norm weights 1 (torch.manual_seed(seed); not pretrain's streams, so the two runs start from
different weights).

Training as `pretrain` does it: torch.optim.AdamW(betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on
the 2-D weights only, i.e. not on the norms), gradient clipping by global norm at 1.0
(clip_grad_norm_), learning rate warmup then cosine to --min-lr (pretrain's lr_at), one micro-batch
per step (global batch = micro-batch). Data: the train-*.h5 token shards of DIR in file-name order,
samples read in pretrain's order (TokenData::sample_at: a Fisher-Yates permutation per epoch drawn
from splitmix64 seeded with seed ^ FNV-1a("epoch-<e>")), inputs tokens[:T], targets tokens[1:T+1],
plain causal attention over the row and positions 0..T-1 (= pretrain --doc-masking off). Read with
h5py; hdf5plugin provides the zstd filter the shards use.

Each step is timed with time.perf_counter from the start of reading its batch to the end of the
optimizer step (what pretrain's step time covers). The result JSON holds every step's seconds and
loss, tokens/s over the steps after the first --warmup-exclude (median and mean step time), the
peak RSS of the process (resource.getrusage ru_maxrss), versions and threads. --save DIR writes a
checkpoint at the end (model + AdamW state, torch.save), as pretrain always does; it is not timed.

--accum A (bench/parallel) accumulates the gradients of A micro-batches per step (each micro-batch's
mean loss divided by A, so the gradient is the mean over the step's tokens, as pretrain's). --ddp
trains with torch.distributed.DistributedDataParallel over the gloo backend, one process per rank,
started by hand or by torch.distributed.run (init_method env://: RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT); DDP averages the gradients across ranks in its buckets during the backward (all but the
last micro-batch of a step under model.no_sync()); broadcast_buffers=False (the model's only buffer,
RoPE's inv_freq, is a constant). The global batch is micro-batch x A x ranks, and replica d reads
micro-batches d*A .. d*A + A - 1 of each global batch, as pretrain's data parallelism does, so the
samples match pretrain --dp. The logged loss is the mean over the global batch (an all_reduce of one
number, inside the timed step). Rank 0 writes --result and --save (the unwrapped model's state dict);
rank r > 0 writes its step times to --result with ".rank<r>" before the extension. Without --accum and
--ddp the behaviour and the result file are exactly as before.
"""

import argparse
import glob
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

T_IMPORTED = time.perf_counter()

M64 = (1 << 64) - 1


# --- pretrain's sample order (libshared/nn/rng.hpp, libshared/train/token_data.cpp) ---------------------
class Rng:
    """splitmix64 seeded by (seed, stream name), as bellows::nn::Rng."""

    def __init__(self, seed, stream=""):
        h = 1469598103934665603
        for c in stream.encode():
            h = ((h ^ c) * 1099511628211) & M64
        self.state = (seed ^ h) & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n if n else 0


class TokenData:
    """The train-*.h5 shards of a directory, read as TokenData::fill(shuffle=true, doc_masking=false)."""

    def __init__(self, path, split="train"):
        import hdf5plugin  # noqa: F401  (registers the zstd filter, 32015, before any file is opened)
        import h5py

        files = [path] if os.path.isfile(path) else sorted(glob.glob(os.path.join(path, split + "-*.h5")))
        if not files:
            raise SystemExit(f"torch_train.py: no {split}-*.h5 shards in {path}")
        self.files, self.shards, self.total, self.seq_len, self.vocab_size = files, [], 0, None, None
        for f in files:
            h = h5py.File(f, "r")
            if h.attrs["schema"] != "tokens_pretrain":
                raise SystemExit(f"{f}: schema {h.attrs['schema']!r}, not tokens_pretrain")
            L, V, n = int(h.attrs["seq_len"]), int(h.attrs["vocab_size"]), int(h.attrs["num_samples"])
            if self.seq_len is None:
                self.seq_len, self.vocab_size = L, V
            elif (L, V) != (self.seq_len, self.vocab_size):
                raise SystemExit(f"{f}: seq_len/vocab differ from {files[0]}'s")
            self.shards.append((h, self.total, n))
            self.total += n
        self.perm_epoch, self.perm_seed, self.perm = None, None, None
        self.cache = {}  # (shard, row0) -> rows, as pretrain's blocks of ~1 MiB
        self.block_rows = max(1, (1 << 20) // ((self.seq_len + 1) * 4))

    def sample_at(self, k, seed):
        epoch, i = divmod(k, self.total)
        if (epoch, seed) != (self.perm_epoch, self.perm_seed):
            perm = list(range(self.total))
            rng = Rng(seed, f"epoch-{epoch}")
            for j in range(self.total - 1, 0, -1):
                r = rng.below(j + 1)
                perm[j], perm[r] = perm[r], perm[j]
            self.perm, self.perm_epoch, self.perm_seed = perm, epoch, seed
        return self.perm[i]

    def row(self, g):
        for si, (h, first, n) in enumerate(self.shards):
            if first <= g < first + n:
                r = g - first
                r0 = r // self.block_rows * self.block_rows
                key = (si, r0)
                if key not in self.cache:
                    if len(self.cache) >= 16:
                        self.cache.pop(next(iter(self.cache)))
                    self.cache[key] = h["tokens"][r0:min(n, r0 + self.block_rows)]
                return self.cache[key][r - r0]
        raise IndexError(g)

    def batch(self, first, rows, T, seed):
        toks = np.stack([self.row(self.sample_at(first + r, seed))[: T + 1] for r in range(rows)]).astype(np.int64)
        t = torch.from_numpy(toks)
        return t[:, :T].contiguous(), t[:, 1:].contiguous()


# --- the model: HF LlamaForCausalLM, eager ------------------------------------------------------------
class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, base):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(hidden_states, n_rep):
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, self.H, self.KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.D = C // self.H
        self.q_proj = nn.Linear(C, self.H * self.D, bias=False)
        self.k_proj = nn.Linear(C, self.KV * self.D, bias=False)
        self.v_proj = nn.Linear(C, self.KV * self.D, bias=False)
        self.o_proj = nn.Linear(self.H * self.D, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.KV, self.D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.KV, self.D).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k, v = repeat_kv(k, self.H // self.KV), repeat_kv(v, self.H // self.KV)
        attn_weights = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.D)
        attn_weights = attn_weights + mask
        attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(attn_weights, v).transpose(1, 2).reshape(B, T, self.H * self.D)
        return self.o_proj(out)


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, Fi = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(C, Fi, bias=False)
        self.up_proj = nn.Linear(C, Fi, bias=False)
        self.down_proj = nn.Linear(Fi, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.post_attention_layernorm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.rotary_emb = LlamaRotaryEmbedding(cfg["hidden_size"] // cfg["num_attention_heads"], cfg["rope_theta"])

    def forward(self, input_ids):
        B, T = input_ids.shape
        x = self.embed_tokens(input_ids)
        position_ids = torch.arange(T).unsqueeze(0).expand(B, T)
        cos, sin = self.rotary_emb(x, position_ids)
        # HF's 4-D causal mask: 0 where key <= query, finfo.min above the diagonal
        mask = torch.full((T, T), torch.finfo(x.dtype).min, dtype=x.dtype).triu(1)[None, None]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg.get("tie_word_embeddings", False):
            raise SystemExit("torch_train.py: the benchmark's config has an untied lm_head")
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module, std=0.02):  # LlamaPreTrainedModel._init_weights (initializer_range 0.02)
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=std)

    def forward(self, input_ids, labels):
        logits = self.lm_head(self.model(input_ids)).float()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))


def lr_at(step, total, warmup, lr, min_lr):
    """pretrain's schedule (libshared/train/pretrain.cpp lr_at)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if total <= warmup:
        return lr
    progress = min(1.0, (step - warmup) / (total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def versions():
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "torch_blas": next((ln.split("BLAS_INFO=")[1].split(",")[0] for ln in torch.__config__.show().splitlines()
                                if "BLAS_INFO=" in ln), None),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": next((ln.split("CPU capability usage:")[1].strip() for ln in
                                    torch.__config__.show().splitlines() if "CPU capability usage:" in ln), None),
            "parallel_info": torch.__config__.parallel_info()}


def matmul_peak(out, threads, sizes=(512, 1024, 1536, 2048), reps=5, min_s=0.5):
    torch.set_num_threads(threads)
    res = []
    with torch.no_grad():
        for n in sizes:
            a = torch.rand(n, n) - 0.5
            b = torch.rand(n, n) - 0.5
            c = torch.mm(a, b)
            best = 1e30
            for _ in range(reps):
                it, t0 = 0, time.perf_counter()
                while True:
                    torch.mm(a, b, out=c)
                    it += 1
                    el = time.perf_counter() - t0
                    if el >= min_s:
                        break
                best = min(best, el / it)
            res.append({"n": n, "seconds": best, "gflops": 2 * n ** 3 / best / 1e9})
    peak = max(res, key=lambda r: r["gflops"])
    json.dump({"square": res, "peak_gflops": peak["gflops"], "peak_n": peak["n"], "threads": threads, **versions()},
              open(out, "w"), indent=1)
    print(f"torch.mm peak {peak['gflops']:.1f} GFLOP/s at n={peak['n']} ({threads} threads)", file=sys.stderr)


def train_extended(a, model, opt, data, rank, world, min_lr):
    """The training loop of --accum / --ddp: A micro-batches per step and rank, replica d reading micro-batches
    d*A .. d*A + A - 1 of each global batch (pretrain's order under --dp), the loss averaged over the global batch."""
    import contextlib
    T, B, A = a.seq_len, a.micro_batch, a.accum
    global_rows = B * A * world
    tokens_per_step = global_rows * T
    steps, consumed = [], 0
    for step in range(a.steps):
        t0 = time.perf_counter()
        lr = lr_at(step, a.steps, a.warmup_steps, a.lr, min_lr)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        td, loss_sum = 0.0, 0.0
        for mb in range(A):
            t1 = time.perf_counter()
            ids, targets = data.batch(consumed + (rank * A + mb) * B, B, T, a.seed)
            td += time.perf_counter() - t1
            sync = model.no_sync() if a.ddp and mb < A - 1 else contextlib.nullcontext()
            with sync:
                loss = model(ids, targets) / A
                loss.backward()
            loss_sum += loss.detach()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip) if a.grad_clip > 0 else None
        opt.step()
        if a.ddp:
            import torch.distributed as dist
            loss_sum = loss_sum.reshape(1)
            dist.all_reduce(loss_sum)
            loss_sum /= world
        lv = float(loss_sum)
        dt = time.perf_counter() - t0
        consumed += global_rows
        steps.append({"step": step + 1, "seconds": dt, "data_seconds": td, "loss": lv, "lr": lr,
                      "grad_norm": float(gnorm) if gnorm is not None else None,
                      "tokens_per_s": tokens_per_step / dt})
        if rank == 0:
            print(f"step {step + 1}/{a.steps} loss {lv:.4f} lr {lr:.3g} grad_norm {float(gnorm or 0):.3f} | "
                  f"{tokens_per_step / dt:.0f} tok/s | step {dt:.3f} s (data {100 * td / dt:.1f}%)", file=sys.stderr)
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--config")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=None, help="default lr/10, as pretrain")
    ap.add_argument("--warmup-steps", type=int, default=10)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--adam-eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup-exclude", type=int, default=2, help="steps left out of tokens/s")
    ap.add_argument("--save", help="write a checkpoint (model + optimizer, torch.save) here at the end")
    ap.add_argument("--result")
    ap.add_argument("--matmul-peak", metavar="OUT.json")
    ap.add_argument("--accum", type=int, default=1, help="micro-batches accumulated per step (per rank)")
    ap.add_argument("--ddp", action="store_true", help="DistributedDataParallel over gloo (RANK, WORLD_SIZE, "
                    "MASTER_ADDR, MASTER_PORT from the environment)")
    a = ap.parse_args()
    if a.matmul_peak:
        matmul_peak(a.matmul_peak, a.threads)
        return 0
    for k in ("data", "config", "result"):
        if getattr(a, k) is None:
            ap.error(f"--{k} is required")
    min_lr = a.lr / 10 if a.min_lr is None else a.min_lr
    if a.accum < 1:
        ap.error("--accum must be at least 1")
    extended = a.ddp or a.accum != 1  # bench/parallel's modes; without them, everything below is as before
    rank, world = 0, 1
    if a.ddp:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method="env://")
        rank, world = dist.get_rank(), dist.get_world_size()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = json.load(open(a.config))
    data = TokenData(a.data)
    T, B = a.seq_len, a.micro_batch
    if T > data.seq_len:
        raise SystemExit(f"--seq-len {T} is longer than the shards' samples ({data.seq_len})")
    if cfg["vocab_size"] < data.vocab_size:
        raise SystemExit(f"the model's vocabulary ({cfg['vocab_size']}) is smaller than the data's ({data.vocab_size})")
    model = LlamaForCausalLM(cfg)
    model.train()
    module = model
    if a.ddp:
        model = nn.parallel.DistributedDataParallel(module, broadcast_buffers=False)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(a.beta1, a.beta2), eps=a.adam_eps)
    t_ready = time.perf_counter()
    if rank == 0:
        print(f"torch_train: {n_params} parameters, torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"{data.total} samples of {data.seq_len} in {len(data.files)} shard(s)"
              + (f"; {world} rank(s){' (DDP, gloo)' if a.ddp else ''} x {a.accum} micro-batch(es) of {B} per step"
                 if extended else ""), file=sys.stderr)

    steps = []
    tokens_per_step = B * T
    consumed = 0
    if extended:
        tokens_per_step = B * T * a.accum * world
        steps = train_extended(a, model, opt, data, rank, world, min_lr)
        consumed = B * a.accum * world * a.steps
    for step in range(0 if extended else a.steps):  # (--accum / --ddp: trained above)
        t0 = time.perf_counter()
        ids, targets = data.batch(consumed, B, T, a.seed)
        td = time.perf_counter() - t0
        lr = lr_at(step, a.steps, a.warmup_steps, a.lr, min_lr)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = model(ids, targets)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip) if a.grad_clip > 0 else None
        opt.step()
        lv = loss.item()
        dt = time.perf_counter() - t0
        consumed += B
        steps.append({"step": step + 1, "seconds": dt, "data_seconds": td, "loss": lv, "lr": lr,
                      "grad_norm": float(gnorm) if gnorm is not None else None,
                      "tokens_per_s": tokens_per_step / dt})
        print(f"step {step + 1}/{a.steps} loss {lv:.4f} lr {lr:.3g} grad_norm {float(gnorm or 0):.3f} | "
              f"{tokens_per_step / dt:.0f} tok/s | step {dt:.3f} s (data {100 * td / dt:.1f}%)", file=sys.stderr)
    t_trained = time.perf_counter()
    rss_train_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if a.save and rank == 0:
        os.makedirs(a.save, exist_ok=True)
        torch.save({"model": module.state_dict(), "optimizer": opt.state_dict(), "step": a.steps},
                   os.path.join(a.save, "checkpoint.pt"))
    timed = steps[a.warmup_exclude:] or steps
    secs = [s["seconds"] for s in timed]
    med, mean = statistics.median(secs), statistics.mean(secs)
    res = {"peer": "pytorch-eager" if not a.ddp else "pytorch-ddp-gloo", "config": cfg, "parameters": n_params,
           "seq_len": T, "micro_batch": B, "global_batch": B * a.accum * world, "steps": a.steps,
           "warmup_excluded": len(steps) - len(timed), "seed": a.seed,
           "lr": a.lr, "min_lr": min_lr, "warmup_steps": a.warmup_steps, "tokens_per_step": tokens_per_step,
           "step_seconds_median": med, "step_seconds_mean": mean, "step_seconds_min": min(secs),
           "tokens_per_s_median": tokens_per_step / med, "tokens_per_s_mean": tokens_per_step / mean,
           "final_loss": steps[-1]["loss"], "steps_detail": steps,
           "peak_rss_mb_getrusage": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "peak_rss_mb_getrusage_before_save": rss_train_kb / 1024,
           "seconds": {"import": T_IMPORTED - T_START, "setup": t_ready - T_IMPORTED, "train": t_trained - t_ready,
                       "save": time.perf_counter() - t_trained},
           "optimizer": "torch.optim.AdamW (defaults otherwise: foreach/fused not set)",
           "data_files": data.files, "data_samples": data.total, **versions()}
    result = a.result
    if extended:
        res.update({"accum": a.accum, "ddp": a.ddp, "rank": rank, "world_size": world, "samples_consumed": consumed})
        if a.ddp:
            res["ddp_options"] = {"backend": "gloo", "broadcast_buffers": False, "no_sync": "all but the last "
                                  "micro-batch of a step", "bucket_cap_mb": 25}
            if rank > 0:
                root, ext = os.path.splitext(result)
                result = f"{root}.rank{rank}{ext}"
    with open(result, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    if a.ddp:
        dist.barrier()
        dist.destroy_process_group()
    if rank > 0:
        return 0
    print(f"torch_train: {tokens_per_step / med:.0f} tok/s (median step {med:.3f} s over steps "
          f"{len(steps) - len(timed) + 1}..{len(steps)}), final loss {steps[-1]['loss']:.4f}, "
          f"peak RSS {res['peak_rss_mb_getrusage']:.0f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
