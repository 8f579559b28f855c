#!/bin/bash
# test-gpu.sh — run in a GPU bundle (make gpu-bundle) on a machine with a GPU: what the machine
# offers, that every tool and test binary loads, and the test cases that need a GPU. Ends with
# one line "test-gpu: N passed, M failed".
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$BUNDLE"
passed=0 failed=0
check() { # check NAME CMD...: one test
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok: $name"; else failed=$((failed + 1)); echo "FAILED: $name"; fi
}
echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
command -v nvcc >/dev/null && nvcc --version | tail -1
echo "bundle $(cat VERSION); LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
echo "== every binary loads (no library missing)"
for f in bin/* tests/*; do
    check "ldd $f" bash -c "! ldd '$f' | grep -q 'not found'"
done
echo "== the tools see the GPU"
check "pretrain --version names a CUDA device" bash -c 'bin/pretrain --version | tee /dev/stderr | grep -q "^cuda: on .*, [1-9][0-9]* device(s)"'
echo "== GPU test cases: every op and model test on CUDA against the CPU reference (unit tests named *Cuda*, *Gpu*, *Nccl*)"
check "unit tests on the GPU" tests/unit_tests --gtest_filter='*Cuda*:*Gpu*:*Nccl*' --gtest_color=no
check "no GPU unit test was skipped" bash -c "! tests/unit_tests --gtest_filter='*Cuda*:*Gpu*:*Nccl*' --gtest_color=no | grep -q '^\[  SKIPPED'"

echo "== the tools on the GPU (tiny model, token shards made here)"
work=$(mktemp -d /tmp/bellows-gpu.XXXXXX)
python3 - "$work" <<'PY'
import json, random, sys
random.seed(1)
words = ("the cluster trains a model on shards while the scheduler waits and the loss goes down "
         "tokens flow from curated documents into packed samples every step").split()
with open(f"{sys.argv[1]}/corpus.jsonl", "w") as f:
    for i in range(300):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(random.randint(20, 200)))}) + "\n")
PY
check "tokenize-pack makes shards" bin/tokenize-pack --train-vocab-size 300 --mode pretrain --seq-len 64 \
    --valid-fraction 0.1 --progress off "$work/corpus.jsonl" -o "$work/tok"
# close A B TOL [FIRST]: the per-step losses of two runs agree within TOL relative from step FIRST on.
close() {
    python3 - "$@" <<'PY'
import json, sys
def losses(p):
    last = {}
    for line in open(p):
        r = json.loads(line)
        if r.get("event") == "step":
            last[r["step"]] = r["loss"]
    return last
a, b, tol = losses(sys.argv[1]), losses(sys.argv[2]), float(sys.argv[3])
first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
steps = [s for s in sorted(b) if s >= first]
assert steps and all(s in a for s in steps), f"steps {sorted(a)} vs {sorted(b)}"
worst = max(abs(a[s] - b[s]) / abs(b[s]) for s in steps)
print(f"worst relative loss difference {worst:.3g} over steps {steps[0]}..{steps[-1]} (tolerance {tol})")
sys.exit(0 if worst <= tol else 1)
PY
}
train=(bin/pretrain --data "$work/tok" --model tiny --seq-len 64 --micro-batch 4 --lr 1e-3 --warmup-steps 2 --seed 1
       --progress off)
"${train[@]}" --device cpu --steps 8 -o "$work/cpu" 2>"$work/cpu.log"
check "pretrain --device cuda (fp32 GEMMs) runs" "${train[@]}" --device cuda --matmul-precision fp32 --steps 8 -o "$work/cuda"
check "  its losses equal the CPU run's within 1e-4" close "$work/cuda/metrics.jsonl" "$work/cpu/metrics.jsonl" 1e-4
check "  its log names the GPU" grep -q "backend cuda (matmul fp32) on cuda:0 " "$work/cuda/logs/"pretrain-*.log
check "--device auto picks the GPU" bash -c "${train[*]} --steps 1 -o $work/auto 2>&1 | grep -q 'on cuda:0 '"
check "--recompute full on CUDA: the same losses" bash -c "${train[*]} --device cuda --matmul-precision fp32 --steps 8 \
    --recompute full -o $work/cuda-rc >/dev/null 2>&1"
check "  (within 1e-6)" close "$work/cuda-rc/metrics.jsonl" "$work/cuda/metrics.jsonl" 1e-6
check "two CUDA runs give bit-identical losses" bash -c "${train[*]} --device cuda --matmul-precision fp32 --steps 8 \
    -o $work/cuda2 >/dev/null 2>&1 && diff <(grep '\"step\"' $work/cuda/metrics.jsonl | grep -o '\"loss\": [^,]*') \
    <(grep '\"step\"' $work/cuda2/metrics.jsonl | grep -o '\"loss\": [^,]*')"
check "bf16 GEMMs (the default on CUDA) train within 2% of fp32" bash -c "${train[*]} --device cuda --steps 8 \
    -o $work/bf16 >/dev/null 2>&1"
check "  (losses)" close "$work/bf16/metrics.jsonl" "$work/cuda/metrics.jsonl" 2e-2
# Checkpoints are device-independent: 4 steps on one device, resumed to 8 on the other, against a
# run that did the same on the CPU alone.
"${train[@]}" --device cpu --steps 4 -o "$work/cc" 2>/dev/null && "${train[@]}" --device cpu --steps 8 --resume auto -o "$work/cc" 2>/dev/null
check "CUDA checkpoint resumed on the CPU" bash -c "${train[*]} --device cuda --matmul-precision fp32 --steps 4 -o $work/gc \
    >/dev/null 2>&1 && ${train[*]} --device cpu --steps 8 --resume auto -o $work/gc >/dev/null 2>&1"
check "  steps 5..8 equal the CPU-only run's within 1e-4" close "$work/gc/metrics.jsonl" "$work/cc/metrics.jsonl" 1e-4 5
check "CPU checkpoint resumed on CUDA" bash -c "${train[*]} --device cpu --steps 4 -o $work/cg >/dev/null 2>&1 && \
    ${train[*]} --device cuda --matmul-precision fp32 --steps 8 --resume auto -o $work/cg >/dev/null 2>&1"
check "  steps 5..8 equal the CPU-only run's within 1e-4" close "$work/cg/metrics.jsonl" "$work/cc/metrics.jsonl" 1e-4 5
check "lm-generate on CUDA: the logits of every position equal the CPU's within 1e-4" bash -c "
    bin/lm-generate --ckpt $work/cpu --ids 1,2,3,4,5,6,7 --dump-logits $work/l-cpu.json --device cpu >/dev/null 2>&1 &&
    bin/lm-generate --ckpt $work/cpu --ids 1,2,3,4,5,6,7 --dump-logits $work/l-cuda.json --device cuda >/dev/null 2>&1 &&
    python3 -c \"
import json, sys
def flat(x):
    return [v for e in x for v in flat(e)] if isinstance(x, list) else ([x] if isinstance(x, (int, float)) else [v for e in x.values() for v in flat(e)] if isinstance(x, dict) else [])
a, b = flat(json.load(open('$work/l-cuda.json'))), flat(json.load(open('$work/l-cpu.json')))
worst = max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b)
print('lm-generate logits: worst difference', worst, 'of the largest logit')
sys.exit(0 if len(a) == len(b) and worst < 1e-4 else 1)
\""
check "greedy generation on CUDA equals the CPU's" bash -c "
    diff <(bin/lm-generate --ckpt $work/cpu --ids 1,2,3 --max-new-tokens 20 --temperature 0 --print-ids --device cpu 2>/dev/null) \
         <(bin/lm-generate --ckpt $work/cpu --ids 1,2,3 --max-new-tokens 20 --temperature 0 --print-ids --device cuda 2>/dev/null)"
# LoRA (adapter dropout, frozen base) and DPO (per-token gradient weights, reference passes) on CUDA
# against the same runs on the CPU, on the tiny base trained above.
python3 - "$work" <<'PY'
import json, random, sys
d = sys.argv[1]
rng = random.Random(2)
words = "the cluster trains a model on shards while the scheduler waits".split()
def prompt():
    return " ".join(rng.choice(words) for _ in range(rng.randint(3, 8)))
with open(f"{d}/sft.jsonl", "w") as f:
    for _ in range(200):
        f.write(json.dumps({"prompt": prompt(), "response": " and down"}) + "\n")
with open(f"{d}/pref.jsonl", "w") as f:
    for _ in range(100):
        f.write(json.dumps({"prompt": prompt(), "chosen": " and down", "rejected": " and waits"}) + "\n")
PY
bin/tokenize-pack --tokenizer "$work/cpu/tokenizer/tokenizer.json" --mode sft --seq-len 64 --progress off \
    "$work/sft.jsonl" -o "$work/sft" 2>/dev/null
bin/tokenize-pack --tokenizer "$work/cpu/tokenizer/tokenizer.json" --mode preference --seq-len 64 --progress off \
    "$work/pref.jsonl" -o "$work/pref" 2>/dev/null
lora=(bin/lora-tune --base "$work/cpu" --data "$work/sft" --micro-batch 4 --seq-len 64 --steps 6 --lr 1e-2 --rank 8
      --dropout 0.1 --progress off)
"${lora[@]}" --device cpu -o "$work/lora-cpu" >/dev/null 2>&1
check "lora-tune on CUDA (adapter dropout 0.1)" bash -c "${lora[*]} --device cuda --matmul-precision fp32 -o $work/lora-cuda >/dev/null 2>&1"
check "  its losses equal the CPU run's within 1e-4" close "$work/lora-cuda/metrics.jsonl" "$work/lora-cpu/metrics.jsonl" 1e-4
for kind in new-lora every-weight; do
    dpo=(bin/dpo-align --policy "$work/cpu" --data "$work/pref" --micro-batch 4 --seq-len 64 --steps 4 --lr 1e-3 --progress off)
    [[ $kind == new-lora ]] && dpo+=(--new-lora)  # else every weight trains, against a frozen copy
    "${dpo[@]}" --device cpu -o "$work/dpo-$kind-cpu" >/dev/null 2>&1
    check "dpo-align ($kind) on CUDA" bash -c "${dpo[*]} --device cuda --matmul-precision fp32 -o $work/dpo-$kind-cuda >/dev/null 2>&1"
    check "  its losses equal the CPU run's within 1e-4" close "$work/dpo-$kind-cuda/metrics.jsonl" \
        "$work/dpo-$kind-cpu/metrics.jsonl" 1e-4
done
check "BELLOWS_CUDA_PROFILE writes a per-op table" bash -c "BELLOWS_CUDA_PROFILE=$work/profile.jsonl ${train[*]} --device cuda \
    --steps 2 -o $work/prof >/dev/null 2>&1 && grep -q '\"op\": \"matmul_fwd ' $work/profile.jsonl && head -5 $work/profile.jsonl"
echo "(one GPU here: TP/PP/DP over NCCL needs a machine with two or more)"
rm -rf "$work"
echo "test-gpu: $passed passed, $failed failed"
((failed == 0))
