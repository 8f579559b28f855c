#!/bin/bash
# ckpt-convert throughput against the disk: a random Llama of --layers x --hidden (default 8 x 2048,
# ffn 5632: 411M parameters, 1.6 GB in fp32) is written as an HF fp32 safetensors file (random
# fp32 values, as incompressible as trained weights);
# then `dd bs=4M` of that file (read + write through user space, then sync: what this disk does
# for a program that copies; cp may copy inside the kernel) and each conversion are timed
# under /usr/bin/time (wall, peak RSS), one after another on the same files:
#   import hf (f32 -> our fp32 model.h5), export hf f32 and bf16, export gguf f32 and q8_0,
#   import gguf (f32).
# MB/s = bytes written / wall seconds (for imports and exports alike), beside dd's. The page cache is
# warm (the inputs were just written): this measures the conversion, not a cold read. A benchmark,
# never a test.
#
# Usage: bench/convert/run.sh [--layers 8] [--hidden 2048] [--ffn 5632] [--heads 16]
# Environment: BUILD (build), HF_VENV (the hf venv: make hf-venv), WORK (BUILD/bench/convert),
#   RESULTS (bench/convert: results.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
LAYERS=8 HIDDEN=2048 FFN=5632 HEADS=16
while (($#)); do
    case $1 in
        --layers) LAYERS=$2; shift 2 ;; --hidden) HIDDEN=$2; shift 2 ;;
        --ffn) FFN=$2; shift 2 ;; --heads) HEADS=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
BUILD=${BUILD:-build}
WORK=${WORK:-$BUILD/bench/convert}
RESULTS=${RESULTS:-bench/convert}
: "${HF_VENV:?set HF_VENV (make hf-venv; make bench-convert sets it)}"
make -s -j2 "$BUILD/bin/ckpt-convert" "$BUILD/bin/pretrain" "$BUILD/bin/tokenize-pack"
BIN=$BUILD/bin
rm -rf "$WORK" && mkdir -p "$WORK"

# A tokenizer and a tiny run to take it from, then the big random model with that tokenizer.
python3 - "$WORK/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(1)
w = "the cluster converts a model for serving".split()
with open(sys.argv[1], "w") as f:
    for _ in range(200):
        f.write(json.dumps({"text": " ".join(random.choice(w) for _ in range(80))}) + "\n")
PY
"$BIN/tokenize-pack" --train-vocab-size 300 --mode pretrain --seq-len 64 --progress off "$WORK/corpus.jsonl" -o "$WORK/tok" 2>/dev/null
"$BIN/pretrain" --data "$WORK/tok" --model tiny --seq-len 64 --micro-batch 2 --steps 1 --progress off -o "$WORK/tiny" 2>/dev/null
"$BIN/ckpt-convert" --progress off --from "$WORK/tiny" --to hf -o "$WORK/tiny-hf" 2>/dev/null
"$HF_VENV/bin/python" tests/python/make_random_hf_llama.py "$WORK/tiny-hf" "$WORK/big-hf" --hidden "$HIDDEN" --ffn "$FFN" \
    --layers "$LAYERS" --heads "$HEADS" --dtype f32

rows=()
timed() {  # NAME OUTPUT CMD...: runs CMD (then sync), records wall s, MB written, peak RSS
    local name=$1 out=$2; shift 2
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$WORK/rss" "$@" 2>"$WORK/$name.log"
    sync
    t1=$(date +%s.%N)
    local bytes; bytes=$(du -sb "$out" | cut -f1)
    rows+=("$(python3 -c "
import sys; n, b, s, r = sys.argv[1], int(sys.argv[2]), float(sys.argv[4]) - float(sys.argv[3]), int(sys.argv[5])
print(f'| {n} | {b/1e6:.0f} | {s:.2f} | {b/1e6/s:.0f} | {r/1024:.0f} |')" "$name" "$bytes" "$t0" "$t1" "$(cat "$WORK/rss")")")
    echo "${rows[-1]}"
}
timed "dd, 4 MiB blocks (the disk)" "$WORK/copy.safetensors" dd if="$WORK/big-hf/model.safetensors" of="$WORK/copy.safetensors" bs=4M status=none
timed "import hf f32" "$WORK/run" "$BIN/ckpt-convert" --progress off --from-hf "$WORK/big-hf" -o "$WORK/run"
timed "export hf f32" "$WORK/hf-f32" "$BIN/ckpt-convert" --progress off --from "$WORK/run" --to hf -o "$WORK/hf-f32"
timed "export hf bf16" "$WORK/hf-bf16" "$BIN/ckpt-convert" --progress off --from "$WORK/run" --to hf --dtype bf16 -o "$WORK/hf-bf16"
timed "export gguf f32" "$WORK/m-f32.gguf" "$BIN/ckpt-convert" --progress off --from "$WORK/run" --to gguf -o "$WORK/m-f32.gguf"
timed "export gguf q8_0" "$WORK/m-q8.gguf" "$BIN/ckpt-convert" --progress off --from "$WORK/run" --to gguf --dtype q8_0 -o "$WORK/m-q8.gguf"
timed "import gguf f32" "$WORK/run-gguf" "$BIN/ckpt-convert" --progress off --from-gguf "$WORK/m-f32.gguf" -o "$WORK/run-gguf"

{
    echo "# ckpt-convert throughput"
    echo
    echo "\`bench/convert/run.sh --layers $LAYERS --hidden $HIDDEN --ffn $FFN --heads $HEADS\` on $(date -u +%F),"
    echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(df -h "$WORK" | awk 'NR==2 {print $1}') filesystem, warm page cache."
    echo "Model: $(python3 -c "import json; c=json.load(open('$WORK/big-hf/config.json')); print(c['num_hidden_layers'], 'layers, hidden', c['hidden_size'], ', ffn', c['intermediate_size'])")."
    echo "Our model.h5 is compressed with zstd's fastest mode (checkpoints: level -5) and Fletcher32-checksummed."
    echo
    echo "| step | MB written | wall s | MB/s | peak RSS MB |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} > "$RESULTS/results.md"
cat "$RESULTS/results.md"
