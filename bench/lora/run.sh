#!/bin/bash
# lora-tune's speed and memory against full SFT and pretraining on the same model (issue 8), side by side in one
# run on the same cores:
#   model: bench/pretrain's Llama (hidden 256, 4 layers, 8 heads / 4 kv heads, ffn 688, vocab 8192, untied lm_head),
#          seq 256, micro-batch 8 = global batch 8, AdamW, lr 1e-4 (the speed does not depend on it);
#   data:  bench/pretrain's cached corpus, tokenizer and pretraining shards (DATA_WORK = BUILD/bench/pretrain; made
#          by bench/pretrain/run.sh --steps 3 --repeat 1 if missing); SFT shards made here from the same corpus:
#          from each document, its first (up to) 40 words the prompt, the next as many the response
#          (tokenize-pack --mode sft with the same tokenizer, seq 256), so the loss covers about half the tokens;
#   base:  the model after one pretraining step (the weights do not change the speed);
#   runs, each --repeat times, interleaved; the fastest repeat is the headline:
#     pretrain     every weight, pretraining shards
#     full-sft     lora-tune --full: every weight, SFT shards
#     lora-r16     lora-tune --rank 16 --alpha 32 --dropout 0.05, all seven projections (the base frozen)
#     lora-r16-qv  the same on q and v only (peft's default targets)
#   each 1 process x --threads, taskset -c CORES, /usr/bin/time -v (peak RSS).
# Tokens/s: every token processed (prompt and response alike, micro-batch x seq per step), over the steps after the
# first 2, from RUNDIR/metrics.jsonl. Writes RESULTS/results.json and RESULTS/results.md. A benchmark, never a test:
# run it on a quiet machine.
#
# Usage: bench/lora/run.sh [--steps 20] [--repeat 2] [--cores 0,1] [--skip-build]
# Environment: BUILD (build), JOBS (2), WORK (BUILD/bench/lora), DATA_WORK (BUILD/bench/pretrain), RESULTS (bench/lora)
set -euo pipefail
cd "$(dirname "$0")/../.."

STEPS=20 REPEAT=2 CORES=0,1 SKIP_BUILD=0
ARGS=""; if (($#)); then ARGS=$(printf '%q ' "$@"); ARGS=${ARGS% }; fi
while (($#)); do
    case $1 in
        --steps) STEPS=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --cores) CORES=$2; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
((STEPS > 2)) || { echo "run.sh: --steps must be more than 2" >&2; exit 2; }
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
WORK=${WORK:-$BUILD/bench/lora}
DATA_WORK=${DATA_WORK:-$BUILD/bench/pretrain}
RESULTS=${RESULTS:-bench/lora}
THREADS=$(awk -F, '{print NF}' <<< "$CORES")
die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"

if ((SKIP_BUILD == 0)); then
    make --no-print-directory BUILD="$BUILD" -j"$JOBS" "$BUILD/bin/pretrain" "$BUILD/bin/lora-tune" "$BUILD/bin/tokenize-pack" >&2
fi
mkdir -p "$WORK"
TOKENS=$(ls -d "$DATA_WORK"/tokens-v8192-s256-* 2>/dev/null | grep -v '\.tmp$' | head -n 1 || true)
if [[ -z $TOKENS ]]; then
    echo "run.sh: no cached token shards under $DATA_WORK: making them with bench/pretrain/run.sh" >&2
    BUILD=$BUILD WORK=$DATA_WORK RESULTS=$WORK/pretrain-results bench/pretrain/run.sh --steps 3 --repeat 1 --skip-build >&2
    TOKENS=$(ls -d "$DATA_WORK"/tokens-v8192-s256-* | grep -v '\.tmp$' | head -n 1)
fi
CORPUS=$(ls "$DATA_WORK"/corpus-*.jsonl | head -n 1)
CONFIG=$DATA_WORK/config.json
[[ -s $CONFIG && -s $CORPUS && -s $TOKENS/tokenizer.json ]] || die "bench/pretrain's cache under $DATA_WORK is incomplete"
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

SFT=$WORK/sft-$(basename "$TOKENS")
if [[ ! -s $SFT/report.json ]]; then
    /usr/bin/python3 - "$CORPUS" "$WORK/sft.jsonl" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        words = json.loads(line)["text"].split()
        if len(words) < 16:
            continue
        # At most 40 + 40 words, so that an example fits a 256-token sample.
        h = min(40, len(words) // 2)
        out.write(json.dumps({"prompt": " ".join(words[:h]), "response": " " + " ".join(words[h:2 * h])}) + "\n")
PY
    rm -rf "$SFT.tmp"
    "$BUILD/bin/tokenize-pack" --tokenizer "$TOKENS/tokenizer.json" --mode sft --seq-len 256 --progress off --on-bad-record skip \
        "$WORK/sft.jsonl" -o "$SFT.tmp" >&2
    mv "$SFT.tmp" "$SFT"
fi
BASE=$WORK/base
if [[ ! -s $BASE/checkpoints/latest ]]; then
    rm -rf "$BASE"
    "$BUILD/bin/pretrain" --data "$TOKENS" --model "$CONFIG" --seq-len 256 --micro-batch 8 --steps 1 --threads "$THREADS" \
        --progress off -o "$BASE" 2> "$WORK/base.log"
fi

COMMON=(--seq-len 256 --micro-batch 8 --global-batch 8 --steps "$STEPS" --lr 1e-4 --warmup-steps 2 --threads "$THREADS"
        --doc-masking off --log-every 1000 --progress off)
run_one() {  # NAME REPEAT: one timed run
    local name=$1 rep=$2 dir=$WORK/runs/$1-$2 cmd
    rm -rf "$dir"
    case $name in
        pretrain) cmd=("$BUILD/bin/pretrain" --data "$TOKENS" --model "$CONFIG") ;;
        full-sft) cmd=("$BUILD/bin/lora-tune" --base "$BASE" --data "$SFT" --full) ;;
        lora-r16) cmd=("$BUILD/bin/lora-tune" --base "$BASE" --data "$SFT" --rank 16 --alpha 32 --dropout 0.05) ;;
        lora-r16-qv) cmd=("$BUILD/bin/lora-tune" --base "$BASE" --data "$SFT" --rank 16 --alpha 32 --dropout 0.05 --targets q,v) ;;
    esac
    taskset -c "$CORES" /usr/bin/time -v "${cmd[@]}" "${COMMON[@]}" -o "$dir" 2> "$WORK/$name-$rep.log" ||
        die "$name failed: $(tail -3 "$WORK/$name-$rep.log")"
    printf '%s\t%s\t%s\t%s\n' "$name" "$rep" "$dir" "$WORK/$name-$rep.log" >> "$WORK/runs.tsv"
}
: > "$WORK/runs.tsv"
for rep in $(seq "$REPEAT"); do
    for name in pretrain full-sft lora-r16 lora-r16-qv; do
        echo "run.sh: $name, repeat $rep" >&2
        run_one "$name" "$rep"
    done
done

mkdir -p "$RESULTS"
/usr/bin/python3 - "$WORK/runs.tsv" "$RESULTS" "$ARGS" "$CORES" <<'PY'
import json, statistics, subprocess, sys, time, platform
runs, out, args, cores = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
best = {}
for line in open(runs):
    name, rep, d, log = line.rstrip("\n").split("\t")
    steps = [json.loads(l) for l in open(f"{d}/metrics.jsonl") if '"event":"step"' in l.replace(" ", "")]
    secs = [s["time_s"]["step"] for s in steps[2:]]
    tokens = 8 * 256
    tps = tokens / statistics.median(secs)
    rss = int(next(l.split(":")[1] for l in open(log) if "Maximum resident set size" in l)) // 1024
    targets = statistics.mean(s["targets"] for s in steps)
    r = {"name": name, "repeat": int(rep), "tokens_per_s": tps, "peak_rss_mib": rss, "targets_per_step": targets,
         "final_loss": steps[-1]["loss"]}
    if name not in best or tps > best[name]["tokens_per_s"]:
        best[name] = r
cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{model}, cores {cores}",
       "command": "bench/lora/run.sh " + args, "runs": best}
json.dump(res, open(f"{out}/results.json", "w"), indent=2)
full = best["full-sft"]["tokens_per_s"]
lines = [f"# lora-tune against full SFT and pretraining ({res['date']})", "",
         f"Machine: {res['machine']}. Command: `{res['command']}`. Model: bench/pretrain's (hidden 256, 4 layers, "
         "vocab 8192), seq 256, micro-batch 8; fastest of the repeats.", "",
         "| run | tokens/s | vs full SFT | peak RSS (MiB) | targets/step |", "|---|---:|---:|---:|---:|"]
for name in ("pretrain", "full-sft", "lora-r16", "lora-r16-qv"):
    b = best[name]
    lines.append(f"| {name} | {b['tokens_per_s']:.0f} | {b['tokens_per_s'] / full:.2f}x | {b['peak_rss_mib']} | "
                 f"{b['targets_per_step']:.0f} |")
ok = best["lora-r16"]["tokens_per_s"] >= full
lines += ["", f"Gate (issue 8): LoRA at least as fast per token as full SFT: {'met' if ok else 'NOT met'} "
          f"({best['lora-r16']['tokens_per_s'] / full:.2f}x)."]
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
