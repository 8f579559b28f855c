#!/bin/bash
# bench/gpu/run.sh — issue 10's benchmark, on the GPU machine, from an unpacked GPU bundle
# (`make gpu-bundle` here, then there: tar xzf gpu-bundle.tgz -C /tmp && /tmp/gpu-bundle/bench/gpu/run.sh):
# pretrain --device cuda and PyTorch eager (SDPA, bf16 autocast) side by side on the same card,
# llama3.2-1b shapes (vocabulary 128,256), seq 2048; tokens/s and MFU against the card's measured
# bf16 GEMM peak; the per-op time breakdown of ours (BELLOWS_CUDA_PROFILE) and torch's kernels.
#
#   run.sh [--steps 20] [--micro-batch 4] [--seq-len 2048] [--precision bf16] [--out DIR]
#
# Results go to DIR (default $OUT when set, else ./bench-gpu): results.md, results.json, the
# runs' metrics, the profiles and a log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../env.sh"
steps=20 micro=4 seq=2048 precision=bf16 out=${OUT:-$PWD/bench-gpu}
while (($#)); do
    case $1 in
        --steps) steps=$2; shift 2 ;;
        --micro-batch) micro=$2; shift 2 ;;
        --seq-len) seq=$2; shift 2 ;;
        --precision) precision=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
work=$(mktemp -d /tmp/bellows-bench-gpu.XXXXXX)
trap 'rm -rf "$work"' EXIT
exec > >(tee "$out/log.txt") 2>&1
echo "== $(date -u +%FT%TZ) bench/gpu: steps $steps, micro-batch $micro, seq $seq, matmul precision $precision"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
echo "bundle $(cat "$BUNDLE/VERSION")"

# Peak device memory of a command: nvidia-smi sampled every 200 ms while it runs.
with_memory() { # with_memory FILE CMD...
    local file=$1; shift
    (while :; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done) >"$file" &
    local sampler=$! rc=0
    "$@" || rc=$?
    kill $sampler 2>/dev/null; wait $sampler 2>/dev/null || true
    return $rc
}

echo "== data: a 128,256-token tiktoken vocabulary and random words, packed into $seq-token samples"
python3 "$here/make_data.py" "$work/data" --tokens $(( (steps + 8) * micro * (seq + 1) * 2 ))
bin/tokenize-pack --tokenizer "$work/data/vocab.tiktoken" --pattern cl100k --special-token '<|end_of_text|>=128255' \
    --eos-token '<|end_of_text|>' --mode pretrain --seq-len "$seq" --progress off "$work/data/corpus.jsonl" -o "$work/tok"

echo "== the card's GEMM peak (torch.mm, n = 4096 and 8192)"
python3 "$here/torch_llama.py" --matmul-peak "$out/peak.json"

echo "== ours: pretrain --device cuda"
ours=(bin/pretrain --data "$work/tok" --model llama3.2-1b --seq-len "$seq" --micro-batch "$micro" --lr 3e-4
      --warmup-steps 2 --doc-masking off --device cuda --matmul-precision "$precision" --progress off)
with_memory "$out/ours-memory.txt" "${ours[@]}" --steps "$steps" -o "$work/ours"
cp "$work/ours/metrics.jsonl" "$out/ours-metrics.jsonl"
cp "$work/ours/config.json" "$out/config.json"
rm -rf "$work/ours/checkpoints"
echo "== ours, per-op profile over 3 steps (BELLOWS_CUDA_PROFILE: each op timed alone)"
BELLOWS_CUDA_PROFILE="$out/ours-profile.jsonl" "${ours[@]}" --steps 3 -o "$work/prof" >/dev/null 2>&1 || echo "(profile run failed)"
rm -rf "$work/prof"

echo "== PyTorch eager: SDPA, bf16 autocast, fused AdamW"
with_memory "$out/torch-memory.txt" python3 "$here/torch_llama.py" --config "$out/config.json" --seq-len "$seq" \
    --micro-batch "$micro" --steps "$steps" --result "$out/torch.json" --profile "$out/torch-profile.txt"

python3 "$here/summarize.py" "$out" | tee "$out/results.md"
