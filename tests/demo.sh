#!/bin/bash
# `make demo`: the main job end to end, with the tools that exist so far. Each tool issue
# extends this script.
#
#   1. curate-dedup on a real corpus every Debian machine has: the copyright files and
#      changelogs under /usr/share/doc (full of duplicated licence texts and maintainer e-mail
#      addresses), on 2 MPI ranks;
#   2. shard-inspect on what it wrote;
#   3. tokenize-pack: a tokenizer trained on the curated text, pretraining shards packed with it;
#   4. pretrain: the `small` model (~20M parameters) trained on those shards for a few minutes,
#      its validation loss compared with the corpus' unigram entropy, its chart (make plot);
#   5. lm-generate: text from the trained model, and its perplexity on the validation split;
#   6. lora-tune: a LoRA adapter on the frozen model learns to answer any line with a fixed
#      sign-off (SFT shards from tokenize-pack --mode sft; loss on the answer only), shown by
#      lm-generate with and without --lora;
#   7. dpo-align: preference pairs (chosen: a shorter sign-off, rejected: the one the adapter
#      learned) align the adapter against itself frozen as the reference; held-out reward accuracy
#      and greedy answers before and after;
#   8. ckpt-convert: the model to HF safetensors and GGUF, the adapters to HF PEFT and GGUF LoRA;
#   9. the whole life cycle again as dependent SLURM jobs (sbatch/pipeline.sh: curation as a job
#      array, tokenize, pretrain, lora, dpo, HF and GGUF exports) on a local test cluster, ending
#      with its curation report, loss charts, a sample of the aligned model and the exports
#      (tests/demo-pipeline.sh; skipped with a note where SLURM cannot be started).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$PWD/$BUILD/bin
OUT=${DEMO_DIR:-$PWD/$BUILD/demo}
rm -rf "$OUT" && mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The build"
"$BIN/curate-dedup" --version | head -6

step "curate-dedup: /usr/share/doc copyright files and changelogs, 2 MPI ranks"
# Copyright files and changelogs are not prose: with the web-text quality rules on, most of them
# would be dropped at that stage (run it without --disable quality to see which rules fire).
# The demo switches the rules off to show what the other stages do with licence texts.
tests/mpirun.sh -np 2 "$BIN/curate-dedup" --input-format text --include copyright --include 'changelog*' \
    /usr/share/doc -o "$OUT/curated" --disable quality --on-bad-record skip --verify-jaccard --export-jsonl

step "What was removed, and why (removed.jsonl.zst: one line per document)"
zstdcat "$OUT/curated/removed.jsonl.zst" | python3 -c '
import collections, json, sys
rows = [json.loads(l) for l in sys.stdin]
by = collections.Counter((r["stage"], r["reason"]) for r in rows)
for (stage, reason), n in by.most_common(8):
    print(f"  {n:6d}  {stage:8s} {reason}")
dups = [r for r in rows if r["reason"] == "fuzzy_dup"][:3]
for r in dups:
    print("  e.g. " + r["id"] + "\n       near-duplicate of " + r["kept_id"])
'

step "report.json (excerpt)"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r[k] for k in ("documents", "pii", "exact_dedup", "fuzzy_dedup", "lsh", "peak_rss_mb_max_rank", "seconds")}, indent=2))
' "$OUT/curated/report.json"

step "The output shards: kind, provenance, datasets, zstd + Fletcher32 (shard-inspect)"
"$BIN/shard-inspect" "$OUT/curated" | head -16
"$BIN/shard-inspect" --verify --progress off "$OUT/curated" >/dev/null

step "tokenize-pack: train a byte-level BPE tokenizer on the curated documents and pack them for pretraining, 2 ranks"
tests/mpirun.sh -np 2 "$BIN/tokenize-pack" --train-vocab-size 4096 --mode pretrain "$OUT/curated" -o "$OUT/tokens" \
    --seq-len 512 --valid-fraction 0.02 --progress off
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r[k] for k in ("documents", "tokens", "samples", "train_samples", "valid_samples", "waste_fraction")}, indent=2))
print("tokenizer:", r["tokenizer"]["path"].split("/")[-1], "sha256", r["tokenizer"]["sha256"][:16] + "...", "vocab", r["tokenizer"]["vocab_size"])
' "$OUT/tokens/report.json"
"$BIN/shard-inspect" --verify --progress off "$OUT/tokens" >/dev/null

step "The same tokenizer, by hand: encode a line and decode it back"
echo '{"text": "Copyright (C) 2026 The bellows authors <EMAIL>, licensed under the GPL."}' |
    "$BIN/tokenize-pack" --tokenizer "$OUT/tokens/tokenizer.json" --encode - | tee "$OUT/ids.txt"
"$BIN/tokenize-pack" --tokenizer "$OUT/tokens/tokenizer.json" --decode "$OUT/ids.txt"

step "pretrain: the small model (~20M parameters) on those shards, on this machine's cores"
# DEMO_STEPS=N trains longer (or shorter); ~1.5 s per step on 2 cores.
"$BIN/pretrain" --data "$OUT/tokens" --model small --seq-len 256 --micro-batch 8 --steps "${DEMO_STEPS:-250}" \
    --lr 2e-3 --warmup-steps 20 --eval-every 50 --eval-batches 8 --save-every 100 --log-every 10 -o "$OUT/run"
/usr/bin/python3 tools/plot_metrics.py "$OUT/run/metrics.jsonl" -o "$OUT/run/metrics.png"

step "Validation loss against the unigram entropy (the loss of a model that knows only token frequencies)"
"$BIN/lm-generate" --ckpt "$OUT/run" --eval "$OUT/tokens" --eval-samples 512 2>/dev/null | tee "$OUT/eval.txt"
read -r _ loss _ ppl _ tokens _ unigram < "$OUT/eval.txt"
python3 -c "
loss, uni = $loss, $unigram
print(f'validation loss {loss:.3f} nats/token vs unigram entropy {uni:.3f}: {uni - loss:.3f} nats below'
      + ('' if loss < uni - 0.3 else '  (NOT clearly below: train longer, DEMO_STEPS=500)'))"
echo "chart of the run: $OUT/run/metrics.png"

step "lm-generate: text from the trained model (KV cache, top-p sampling)"
for prompt in "Copyright (C) 2012 " "This package is free software; you can" "  * New upstream release"; do
    "$BIN/lm-generate" --ckpt "$OUT/run" --prompt "$prompt" --max-new-tokens 48 --temperature 0.7 --seed 1 2>/dev/null
    echo "---"
done

step "lora-tune: teach the frozen model a fixed answer with a LoRA adapter (SFT, loss on the answer only)"
# Prompts are lines of Debian copyright files (what the model was trained on); the answer is always
# the same sign-off, which the model never writes after such a line. 400 examples to train on, 40
# held out.
/usr/bin/python3 - "$OUT" <<'PY'
import json, random, sys, glob, os
out = sys.argv[1]
random.seed(1)
lines = []
for path in sorted(glob.glob("/usr/share/doc/*/copyright"))[:400]:
    try:
        for l in open(path, errors="ignore"):
            l = " ".join(l.split())
            if 20 <= len(l) <= 80:
                lines.append(l)
    except OSError:
        pass
random.shuffle(lines)
answer = " -- reviewed and approved by the bellows maintainers"
for name, chunk in (("sft", lines[:400]), ("sft-valid", lines[400:440])):
    with open(f"{out}/{name}.jsonl", "w") as f:
        for l in chunk:
            f.write(json.dumps({"prompt": l, "response": answer}) + "\n")
with open(f"{out}/probe.txt", "w") as f:
    f.write("\n".join(lines[400:403]) + "\n")
PY
for name in sft sft-valid; do
    "$BIN/tokenize-pack" --tokenizer "$OUT/run/tokenizer/tokenizer.json" --mode sft --seq-len 128 \
        "$OUT/$name.jsonl" -o "$OUT/$name-tokens" --progress off
done
"$BIN/lora-tune" --base "$OUT/run" --data "$OUT/sft-tokens" --valid-data "$OUT/sft-valid-tokens" --seq-len 128 \
    --micro-batch 8 --rank 16 --alpha 32 --lr 3e-3 --warmup-steps 10 --steps "${DEMO_LORA_STEPS:-150}" \
    --eval-every 50 --log-every 25 -o "$OUT/lora"
ls -l "$OUT/lora/checkpoints/latest" "$OUT/lora"/checkpoints/step-*/adapter.h5

step "lm-generate: held-out lines, the base model and then base + adapter (greedy)"
while IFS= read -r prompt; do
    echo "prompt: $prompt"
    echo "base:   $("$BIN/lm-generate" --ckpt "$OUT/run" --prompt "$prompt" --max-new-tokens 16 --temperature 0 2>/dev/null)"
    echo "+ LoRA: $("$BIN/lm-generate" --ckpt "$OUT/run" --lora "$OUT/lora" --prompt "$prompt" --max-new-tokens 16 --temperature 0 2>/dev/null)"
    echo "---"
done <"$OUT/probe.txt"

step "dpo-align: prefer a shorter sign-off (preference pairs; the reference is the adapter above, frozen)"
# Other lines of the same copyright files than the SFT stage's (200 pairs to train on, 40 held
# out; the probe lines are in neither), each with the sign-off the adapter learned as the rejected
# answer and a shorter one as the chosen. The reference log-probabilities are computed once
# (--precompute-ref); --sft-weight adds the chosen answers' NLL (RPO), which keeps them likely
# while DPO pushes the two apart. DEMO_DPO_STEPS=N trains longer; ~1.5 s per step on 2 cores.
/usr/bin/python3 - "$OUT" <<'PY'
import json, random, sys, glob
out = sys.argv[1]
random.seed(1)
lines = []
for path in sorted(glob.glob("/usr/share/doc/*/copyright"))[:400]:
    try:
        for l in open(path, errors="ignore"):
            l = " ".join(l.split())
            if 20 <= len(l) <= 80:
                lines.append(l)
    except OSError:
        pass
random.shuffle(lines)
long, short = " -- reviewed and approved by the bellows maintainers", " -- approved by the bellows maintainers"
for name, chunk in (("pref", lines[440:640]), ("pref-valid", lines[640:680])):
    with open(f"{out}/{name}.jsonl", "w") as f:
        for l in chunk:
            f.write(json.dumps({"prompt": l, "chosen": short, "rejected": long}) + "\n")
PY
for name in pref pref-valid; do
    "$BIN/tokenize-pack" --tokenizer "$OUT/run/tokenizer/tokenizer.json" --mode preference --seq-len 128 \
        "$OUT/$name.jsonl" -o "$OUT/$name-tokens" --progress off
done
"$BIN/dpo-align" --policy "$OUT/run" --lora "$OUT/lora" --data "$OUT/pref-tokens" --valid-data "$OUT/pref-valid-tokens" \
    --seq-len 128 --micro-batch 4 --global-batch 8 --lr 1e-3 --beta 0.1 --sft-weight 1 --precompute-ref \
    --steps "${DEMO_DPO_STEPS:-40}" --eval-every 20 --eval-batches 10 --log-every 10 -o "$OUT/dpo"
/usr/bin/python3 - "$OUT/dpo/metrics.jsonl" <<'PY'
import json, sys
ev = [r for r in map(json.loads, open(sys.argv[1])) if r.get("event") == "eval"][-1]
print("held-out pairs: reward accuracy %.2f, margin %.2f (rewards: chosen %+.2f, rejected %+.2f)" % (
    ev["eval_rewards/accuracies"], ev["eval_rewards/margins"], ev["eval_rewards/chosen"], ev["eval_rewards/rejected"]))
PY

step "lm-generate: held-out lines, base + SFT adapter and base + DPO adapter (greedy)"
while IFS= read -r prompt; do
    echo "prompt: $prompt"
    echo "SFT:    $("$BIN/lm-generate" --ckpt "$OUT/run" --lora "$OUT/lora" --prompt "$prompt" --max-new-tokens 16 --temperature 0 2>/dev/null)"
    echo "+ DPO:  $("$BIN/lm-generate" --ckpt "$OUT/run" --lora "$OUT/dpo" --prompt "$prompt" --max-new-tokens 16 --temperature 0 2>/dev/null)"
    echo "---"
done <"$OUT/probe.txt"

step "ckpt-convert: the model for transformers/vLLM (HF safetensors) and llama.cpp (GGUF), the adapter for peft and llama.cpp"
mkdir -p "$OUT/export"
"$BIN/ckpt-convert" --from "$OUT/run" --to hf --dtype bf16 -o "$OUT/export/hf" --progress off
"$BIN/ckpt-convert" --from "$OUT/run" --to gguf --dtype q8_0 -o "$OUT/export/model-q8_0.gguf" --progress off
"$BIN/ckpt-convert" --from "$OUT/run" --lora "$OUT/lora" --to peft --peft-base "$OUT/export/hf" -o "$OUT/export/peft" --progress off
"$BIN/ckpt-convert" --from "$OUT/run" --lora "$OUT/lora" --to gguf-lora -o "$OUT/export/lora.gguf" --progress off
"$BIN/ckpt-convert" --from "$OUT/run" --lora "$OUT/dpo" --to peft --peft-base "$OUT/export/hf" -o "$OUT/export/peft-dpo" --progress off
ls -l "$OUT/export" "$OUT/export/hf" "$OUT/export/peft" "$OUT/export/peft-dpo"

# 9. The same life cycle as SLURM jobs (sbatch/pipeline.sh) on a local test cluster, when this
#    machine can run one.
BUILD=$BUILD tests/demo-pipeline.sh "$OUT" "$OUT/sft.jsonl" "$OUT/pref.jsonl" "$OUT/tokens/tokenizer.json"

step "Done. Output in $OUT"
