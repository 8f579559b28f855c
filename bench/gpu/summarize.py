#!/usr/bin/env python3
"""bench/gpu/summarize.py DIR: results.md (stdout) and results.json from what run.sh left in DIR."""
import json
import os
import sys

d = sys.argv[1]
peak = json.load(open(os.path.join(d, "peak.json")))
torch_r = json.load(open(os.path.join(d, "torch.json")))
gpu = open(os.path.join(d, "gpu.txt")).read().strip()
steps = [json.loads(line) for line in open(os.path.join(d, "ours-metrics.jsonl"))]
steps = [r for r in steps if r.get("event") == "step"]
skip = 3
timed = [r["time_s"]["step"] for r in steps[skip:]]
tokens_per_step = torch_r["micro_batch"] * torch_r["seq_len"]
ours_tps = tokens_per_step / (sum(timed) / len(timed))
fpt = torch_r["flops_per_token"]
bf16 = peak["bf16_tflops"] * 1e12


def mem(name):
    vals = [int(x) for x in open(os.path.join(d, name)).read().split() if x.strip().isdigit()]
    return max(vals) / 1024 if vals else float("nan")


res = {
    "gpu": gpu, "peak_tflops": peak,
    "ours": {"tokens_per_s": ours_tps, "mfu_vs_bf16_peak": ours_tps * fpt / bf16, "peak_memory_gib": mem("ours-memory.txt"),
             "loss_last": steps[-1]["loss"]},
    "torch": {"tokens_per_s": torch_r["tokens_per_s"], "mfu_vs_bf16_peak": torch_r["tokens_per_s"] * fpt / bf16,
              "peak_memory_gib": mem("torch-memory.txt"), "loss_last": torch_r["loss"][-1]},
}
res["ratio"] = ours_tps / torch_r["tokens_per_s"]
json.dump(res, open(os.path.join(d, "results.json"), "w"), indent=1)
o, t = res["ours"], res["torch"]
print(f"# bench/gpu: pretrain --device cuda vs PyTorch eager on {gpu}\n")
print(f"llama3.2-1b shapes (1.24B parameters, vocabulary 128,256, tied embeddings), seq {torch_r['seq_len']}, "
      f"micro-batch {torch_r['micro_batch']}, {torch_r['steps']} steps (the first {skip} not timed); "
      f"{fpt / 1e9:.2f} GFLOP per token (6 x matmul parameters + 12 L C T, both sides).")
print(f"Card's measured GEMM peak (torch.mm): bf16 {peak['bf16_tflops']:.0f}, tf32 {peak['tf32_tflops']:.0f}, "
      f"fp32 {peak['fp32_tflops']:.0f} TFLOP/s; torch {peak['torch']}.\n")
print("| | tokens/s | MFU (vs bf16 peak) | peak device memory GiB (nvidia-smi) | last loss |")
print("|---|---:|---:|---:|---:|")
print(f"| pretrain --device cuda | {o['tokens_per_s']:,.0f} | {100 * o['mfu_vs_bf16_peak']:.1f}% | {o['peak_memory_gib']:.1f} | {o['loss_last']:.3f} |")
print(f"| PyTorch eager (SDPA, bf16 autocast) | {t['tokens_per_s']:,.0f} | {100 * t['mfu_vs_bf16_peak']:.1f}% | {t['peak_memory_gib']:.1f} | {t['loss_last']:.3f} |")
print(f"| ours / torch | **{res['ratio']:.2f}x** | | | |\n")
print(f"Gates (issue 10): MFU >= 45%: {'met' if o['mfu_vs_bf16_peak'] >= 0.45 else 'NOT met'}; "
      f">= 1.2x PyTorch: {'met' if res['ratio'] >= 1.2 else 'NOT met'}.\n")
prof = os.path.join(d, "ours-profile.jsonl")
if os.path.exists(prof):
    print("## Ours, per op and shape (BELLOWS_CUDA_PROFILE over 3 steps; each op timed alone)\n")
    print("| op shape | calls | ms | share | TFLOP/s | GB/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for line in list(open(prof))[:20]:
        r = json.loads(line)
        print(f"| {r['op']} | {r['calls']} | {r['ms']:.1f} | {100 * r['share']:.1f}% | {r['tflops']:.1f} | {r['gb_per_s']:.0f} |")
    print()
tp = os.path.join(d, "torch-profile.txt")
if os.path.exists(tp):
    print("## PyTorch's CUDA kernels over 2 steps (torch.profiler)\n\n```\n" + open(tp).read() + "```")
