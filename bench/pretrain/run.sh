#!/bin/bash
# pretrain against PyTorch eager (Debian's python3-torch), side by side in one run, on the same token shards,
# the same model config and the same two cores:
#   model: Llama, hidden 256, 4 layers, 8 heads / 4 kv heads, ffn 688, vocab 8192, untied lm_head (config.json,
#          HF field names); seq 256, micro-batch 8 = global batch 8, AdamW (0.9, 0.95, wd 0.1 not on norms),
#          clip 1.0, lr 1e-3 warmup 10 then cosine to 1e-4; --doc-masking off, so both sides run plain causal
#          attention over each 256-token row;
#   data:  real text from /usr/share/doc (bench/tokenize/make_corpus.py), packed by tokenize-pack
#          --train-vocab-size 8192 --mode pretrain --seq-len 256 (a byte-level BPE trained on the same text);
#          cached under WORK;
#   ours:  build/bin/pretrain, tokens/s and GFLOP/s from RUNDIR/metrics.jsonl;
#   peer:  bench/pretrain/torch_train.py (HF's LlamaForCausalLM in plain torch ops, torch.optim.AdamW), reading the
#          same shards with h5py in pretrain's sample order; run twice per repeat: in the same environment as ours
#          (OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = 2) and with OMP_WAIT_POLICY=PASSIVE added (much faster here:
#          torch's OpenMP pool otherwise spins against its pthread OpenBLAS); the gate is read against the faster;
#   peaks: OpenBLAS sgemm GFLOP/s on this machine (bench/pretrain/sgemm_peak.cpp, linked with the Makefile's
#          BLAS_LIBS, n = 512..2048), before and after the runs; torch.mm's too, for information.
# Both sides pinned with taskset to --cores, 2 threads, under /usr/bin/time -v (peak RSS), --repeat times each,
# interleaved (ours, torch, torch passive, ours, ...); the fastest repeat is the headline. Tokens/s leave out the first 2
# steps of each run. Writes RESULTS/results.json and RESULTS/results.md (see bench/pretrain/README.md). A benchmark,
# never a test: run it on a quiet machine.
#
# Usage: bench/pretrain/run.sh [--steps 20] [--repeat 2] [--mb 8] [--seed 1] [--cores 0,1] [--label TEXT]
#                              [--skip-build] [--perf]
# --perf: after the timed runs, profile 10 steps of ours and of torch (passive) with `perf record -g` (untimed);
#   the symbols over 1% go into results.md.
# Environment: BUILD (build; the tools are built there with make), JOBS (2: make -j), WORK (BUILD/bench/pretrain:
#   corpus, shards, runs, logs), RESULTS (bench/pretrain: where results.json and results.md go), PY (the test venv's
#   python, ~/.cache/bellows/venv-<hash of tests/python/requirements.txt>, made by `make venv`: h5py + hdf5plugin,
#   and Debian's torch through the system site packages).
set -euo pipefail
cd "$(dirname "$0")/../.."

STEPS=20 REPEAT=2 MB=8 SEED=1 CORES=0,1 LABEL="" SKIP_BUILD=0 PERF=0
ARGS=""; if (($#)); then ARGS=$(printf '%q ' "$@"); ARGS=${ARGS% }; fi
while (($#)); do
    case $1 in
        --steps) STEPS=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --mb) MB=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --cores) CORES=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --perf) PERF=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
((STEPS > 2)) || { echo "run.sh: --steps must be more than 2 (the first 2 steps are left out of tokens/s)" >&2; exit 2; }

BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
WORK=${WORK:-$BUILD/bench/pretrain}
RESULTS=${RESULTS:-bench/pretrain}
PY=${PY:-$HOME/.cache/bellows/venv-$(sha256sum tests/python/requirements.txt | cut -c1-12)/bin/python}
PRETRAIN=$BUILD/bin/pretrain
TOKPACK=$BUILD/bin/tokenize-pack
THREADS=$(awk -F, '{print NF}' <<< "$CORES")
SEQ=256 MICRO=8 VOCAB=8192 LR=1e-3 MIN_LR=1e-4 WARMUP=10

die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"
command -v taskset > /dev/null || die "taskset not found (util-linux)"
if [[ ! -x $PY ]] || ! "$PY" -c 'import torch, h5py, hdf5plugin' 2> /dev/null; then
    die "$PY cannot import torch, h5py and hdf5plugin: make venv (and make deps for python3-torch), or set PY"
fi

# --- build: the two tools (make), and the sgemm probe linked as the Makefile links OpenBLAS --------------------
if ((SKIP_BUILD == 0)); then
    echo "run.sh: make BUILD=$BUILD -j$JOBS $PRETRAIN $TOKPACK" >&2
    make --no-print-directory BUILD="$BUILD" -j"$JOBS" "$PRETRAIN" "$TOKPACK" >&2
fi
[[ -x $PRETRAIN && -x $TOKPACK ]] || die "$PRETRAIN or $TOKPACK missing: build them (make BUILD=$BUILD)"
mkdir -p "$WORK"
# a Makefile variable's value (an extra makefile with a print-VAR rule; the Makefile itself is not changed)
# shellcheck disable=SC2016  # $($*) is make's, not the shell's
mkvar() { make -s --no-print-directory -f Makefile -f <(printf 'print-%%:\n\t@echo $($*)\n') BUILD="$BUILD" "print-$1"; }
BLAS_CFLAGS=$(mkvar BLAS_CFLAGS) BLAS_LIBS=$(mkvar BLAS_LIBS)
[[ -n $BLAS_LIBS ]] || die "could not read BLAS_LIBS from the Makefile"
SGEMM=$WORK/sgemm_peak
if [[ ! -x $SGEMM || bench/pretrain/sgemm_peak.cpp -nt $SGEMM || Makefile -nt $SGEMM ]]; then
    # shellcheck disable=SC2086  # the flags are word lists
    g++ -std=c++20 -O2 -Wall -Wextra -Werror -fopenmp $BLAS_CFLAGS bench/pretrain/sgemm_peak.cpp -o "$SGEMM" $BLAS_LIBS
fi

# One thread per core given; nothing fetched.
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS \
    HF_HUB_OFFLINE=1 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
LOAD_START=$(cat /proc/loadavg 2> /dev/null || true)
BIN_SUM=$(sha256sum "$PRETRAIN" | cut -c1-16)  # a rebuild during the run would mix two binaries

# --- data: corpus -> BPE of 8192 trained on it -> token shards of 257 tokens; cached --------------------------
KEY=$(sha256sum < bench/tokenize/make_corpus.py | cut -c1-10)
CORPUS=$WORK/corpus-${MB}mb-seed$SEED-$KEY.jsonl
TOKENS=$WORK/tokens-v$VOCAB-s$SEQ-${MB}mb-seed$SEED-$KEY
if [[ ! -s $CORPUS ]]; then
    echo "run.sh: writing $CORPUS (once; cached)" >&2
    /usr/bin/python3 bench/tokenize/make_corpus.py --split bench --mb "$MB" --seed "$SEED" -o "$CORPUS.tmp" \
        --stats "$CORPUS.stats.json"
    mv "$CORPUS.tmp" "$CORPUS"
fi
PACK_CMD=("$TOKPACK" --train-vocab-size "$VOCAB" --mode pretrain --seq-len "$SEQ" --seed "$SEED" --progress off
          "$CORPUS" -o "$TOKENS.tmp")
if [[ ! -s $TOKENS/report.json ]]; then
    echo "run.sh: packing: ${PACK_CMD[*]} (once; cached)" >&2
    rm -rf "$TOKENS.tmp"
    "${PACK_CMD[@]}" >&2
    rm -rf "$TOKENS"; mv "$TOKENS.tmp" "$TOKENS"
    # report.json and tokenizer.json may name the .tmp directory: pretrain finds the tokenizer through report.json
    sed -i "s#$TOKENS.tmp#$TOKENS#g" "$TOKENS/report.json"
fi
ls "$TOKENS"/train-*.h5 > /dev/null 2>&1 || die "$TOKENS holds no train-*.h5 shards"
cat "$TOKENS"/*.h5 > /dev/null  # into the page cache before anything is timed

CONFIG=$WORK/config.json
cat > "$CONFIG" << EOF
{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "hidden_size": 256,
  "num_hidden_layers": 4,
  "num_attention_heads": 8,
  "num_key_value_heads": 4,
  "intermediate_size": 688,
  "vocab_size": $VOCAB,
  "max_position_embeddings": $SEQ,
  "rope_theta": 10000.0,
  "rms_norm_eps": 1e-05,
  "tie_word_embeddings": false,
  "hidden_act": "silu",
  "torch_dtype": "float32"
}
EOF
"$PRETRAIN" --model "$CONFIG" --seq-len "$SEQ" --micro-batch "$MICRO" --global-batch "$MICRO" --dry-run \
    --progress off > "$WORK/dry-run.txt"
sed -n 's/^plan: //p' "$WORK/dry-run.txt" > "$WORK/plan.json"

RUNS=$WORK/runs.tsv
: > "$RUNS"
# timed NAME KIND REPEAT RESULT -- command...: one run pinned to CORES under /usr/bin/time -v; stdout and stderr
# to WORK/NAME.log.
timed() {
    local name=$1 kind=$2 rep=$3 result=$4; shift 5
    local cmd=(taskset -c "$CORES" "$@") rc=0 t0 t1
    echo "run.sh: $name: ${cmd[*]}" >&2
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$WORK/$name.time" "${cmd[@]}" > "$WORK/$name.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    ((rc == 0)) || { tail -20 "$WORK/$name.log" >&2; die "$name failed (exit $rc); log: $WORK/$name.log"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$rep" "$result" "$WORK/$name.time" \
        "$(/usr/bin/python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.6f}")' "$t0" "$t1")" \
        "${cmd[*]}" >> "$RUNS"
}

# --- the peaks: OpenBLAS sgemm (the denominator of the fractions) and torch.mm, before the runs ------------------
timed sgemm-before sgemm 1 "$WORK/sgemm-before.json" -- \
    bash -c "\"\$0\" --threads $THREADS > \"$WORK/sgemm-before.json\"" "$SGEMM"
timed torch-mm torch_mm 1 "$WORK/torch-mm.json" -- \
    "$PY" bench/pretrain/torch_train.py --matmul-peak "$WORK/torch-mm.json" --threads "$THREADS"

# --- the runs, interleaved ---------------------------------------------------------------------------------
COMMON=(--seq-len "$SEQ" --micro-batch "$MICRO" --steps "$STEPS" --lr "$LR" --min-lr "$MIN_LR" --seed "$SEED")
for ((r = 1; r <= REPEAT; r++)); do
    rm -rf "$WORK/ours-$r"
    timed "ours-$r" ours "$r" "$WORK/ours-$r/metrics.jsonl" -- \
        "$PRETRAIN" --data "$TOKENS" --model "$CONFIG" "${COMMON[@]}" --global-batch "$MICRO" \
        --warmup-steps "$WARMUP" --doc-masking off --threads "$THREADS" --progress off -o "$WORK/ours-$r"
    # torch twice: as set up (the same environment as ours), then with libgomp's idle threads sleeping instead of
    # spinning (OMP_WAIT_POLICY=PASSIVE), which leaves the cores to the pthread OpenBLAS workers torch's matmuls use
    for tv in default passive; do
        envs=(); [[ $tv == passive ]] && envs=(env OMP_WAIT_POLICY=PASSIVE)
        rm -rf "$WORK/torch-$tv-$r"
        timed "torch-$tv-$r" "torch_$tv" "$r" "$WORK/torch-$tv-$r.json" -- "${envs[@]}" \
            "$PY" bench/pretrain/torch_train.py --data "$TOKENS" --config "$CONFIG" "${COMMON[@]}" \
            --warmup-steps "$WARMUP" --threads "$THREADS" --save "$WORK/torch-$tv-$r" --result "$WORK/torch-$tv-$r.json"
    done
done

timed sgemm-after sgemm 2 "$WORK/sgemm-after.json" -- \
    bash -c "\"\$0\" --threads $THREADS > \"$WORK/sgemm-after.json\"" "$SGEMM"

# --- where the time goes (untimed) ------------------------------------------------------------------------
PERF_ARGS=()
if ((PERF)); then
    command -v perf > /dev/null || die "--perf: perf not found (apt-get install linux-perf)"
    for who in ours torch; do
        rm -rf "$WORK/perf-$who"
        if [[ $who == ours ]]; then
            cmd=("$PRETRAIN" --data "$TOKENS" --model "$CONFIG" --seq-len "$SEQ" --micro-batch "$MICRO" --steps 10
                 --global-batch "$MICRO" --doc-masking off --threads "$THREADS" --progress off -o "$WORK/perf-$who")
        else
            cmd=(env OMP_WAIT_POLICY=PASSIVE "$PY" bench/pretrain/torch_train.py --data "$TOKENS" --config "$CONFIG"
                 --seq-len "$SEQ" --micro-batch "$MICRO" --steps 10 --threads "$THREADS" --result "$WORK/perf-$who.json")
        fi
        echo "run.sh: perf: taskset -c $CORES perf record -F 999 -g -o $WORK/perf-$who.data -- ${cmd[*]}" >&2
        taskset -c "$CORES" perf record -q -F 999 -g -o "$WORK/perf-$who.data" -- "${cmd[@]}" > "$WORK/perf-$who.log" 2>&1 ||
            die "perf record of $who failed: $WORK/perf-$who.log"
        perf report -i "$WORK/perf-$who.data" --no-children --percent-limit 1 --stdio -g none \
            > "$WORK/perf-$who.txt" 2> /dev/null
        perf report -i "$WORK/perf-$who.data" --no-children --sort dso --stdio -g none > "$WORK/perf-$who-dso.txt" 2> /dev/null
        PERF_ARGS+=(--perf "$who=$WORK/perf-$who.txt" --perf "$who-dso=$WORK/perf-$who-dso.txt")
    done
fi

[[ $(sha256sum "$PRETRAIN" | cut -c1-16) == "$BIN_SUM" ]] || die "$PRETRAIN changed during the run (rebuilt?): run again"

BUILD_PREFIX=""; [[ $BUILD == build ]] || BUILD_PREFIX="BUILD=$BUILD "
/usr/bin/python3 bench/pretrain/summarize.py --runs "$RUNS" --plan "$WORK/plan.json" --config "$CONFIG" \
    --tokens "$TOKENS" --corpus "$CORPUS" --bin "$PRETRAIN" --bin-sha256 "$BIN_SUM" --py "$PY" --cores "$CORES" \
    --steps "$STEPS" --label "$LABEL" --load-start "$LOAD_START" --blas-libs "$BLAS_LIBS" \
    --pack-command "${PACK_CMD[*]}" --command "${BUILD_PREFIX}bench/pretrain/run.sh${ARGS:+ $ARGS}" \
    "${PERF_ARGS[@]}" --json "$RESULTS/results.json" --md "$RESULTS/results.md"
cat "$RESULTS/results.md"
