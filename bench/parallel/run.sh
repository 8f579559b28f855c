#!/bin/bash
# pretrain's scaling from 1 to 2 ranks on this machine, and the share of the step each 2-rank layout spends in
# communication, beside PyTorch DDP (issue 6). The model, data and recipe of bench/pretrain/run.sh:
#   model: Llama, hidden 256, 4 layers, 8 heads / 4 kv heads, ffn 688, vocab 8192, untied lm_head; seq 256,
#          AdamW (0.9, 0.95, wd 0.1 not on norms), clip 1.0, lr 1e-3 warmup 10 then cosine to 1e-4,
#          --doc-masking off; here global batch 16 = micro-batch 8 x 2 (2 accumulation steps on one rank, one
#          micro-batch per rank on two);
#   data:  bench/pretrain's cached corpus and token shards (DATA_WORK = BUILD/bench/pretrain; made there with
#          bench/pretrain's recipe if missing, never re-tokenized when present);
#   runs, each --repeat times, interleaved (the fastest repeat of each is the headline):
#     ours-1r1t    pretrain, 1 rank x 1 thread, taskset -c <first core>
#     torch-1r     torch_train.py --accum 2, 1 process x 1 thread, the same core
#     ours-dp2     mpirun -np 2 pretrain --dp 2, 1 thread per rank, rank r pinned to the r-th core
#     torch-ddp2   torch_train.py --ddp (DistributedDataParallel, gloo), 2 processes started by hand
#                  (bench/parallel/ranks.sh spawn: RANK, WORLD_SIZE, MASTER_ADDR/PORT), 1 thread each, pinned alike
#     ours-1r2t    pretrain, 1 rank x 2 threads on both cores (threads against ranks, for information)
#     ours-tp2, ours-pp2, ours-dp2z1   mpirun -np 2 pretrain --tp 2 / --pp 2 / --dp 2 --zero 1, pinned alike
#     ours-pp2b    --pp 2 --pp-layers 3,1 (for information: the default cut gives the last stage the lm_head too)
#   MPI through tests/mpirun.sh (--oversubscribe, root allowed, the tests' shared-memory settings) with
#   --bind-to none; each rank goes through bench/parallel/ranks.sh pin (taskset to its core, /usr/bin/time -v of
#   its own), the whole job under taskset -c CORES and /usr/bin/time -v. Torch with OMP_NUM_THREADS =
#   OPENBLAS_NUM_THREADS = 1 and OMP_WAIT_POLICY=PASSIVE; ours with OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
#   its --threads.
#   quiet check: OpenBLAS sgemm (bench/pretrain/sgemm_peak.cpp), 1 thread on each core at once, before and after.
# Tokens/s leave out the first 2 steps of each run; the communication shares come from rank 0's metrics.jsonl
# (time_s.step, .communication, .tp, .pp, .dp and comm_s_by_rank for every rank). 4- and 8-rank layouts would
# oversubscribe 2 cores: not timed. Writes RESULTS/results.json and RESULTS/results.md (bench/parallel/README.md).
# A benchmark, never a test: run it on a quiet machine.
#
# Usage: bench/parallel/run.sh [--steps 20] [--repeat 2] [--mb 8] [--seed 1] [--cores 0,1] [--label TEXT]
#                              [--skip-build]
# Environment: BUILD (build), JOBS (2: make -j), WORK (BUILD/bench/parallel: runs, logs), DATA_WORK
#   (BUILD/bench/pretrain: corpus and shards, shared with bench/pretrain), RESULTS (bench/parallel), PY (the test
#   venv's python, as bench/pretrain/run.sh), MPIRUN (tests/mpirun.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

STEPS=20 REPEAT=2 MB=8 SEED=1 CORES=0,1 LABEL="" SKIP_BUILD=0
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
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
((STEPS > 2)) || { echo "run.sh: --steps must be more than 2 (the first 2 steps are left out of tokens/s)" >&2; exit 2; }
IFS=, read -ra CORE_LIST <<< "$CORES"
((${#CORE_LIST[@]} == 2)) || { echo "run.sh: --cores takes two cores (one per rank), e.g. 0,1" >&2; exit 2; }
CORE0=${CORE_LIST[0]}

BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
WORK=${WORK:-$BUILD/bench/parallel}
DATA_WORK=${DATA_WORK:-$BUILD/bench/pretrain}
RESULTS=${RESULTS:-bench/parallel}
PY=${PY:-$HOME/.cache/bellows/venv-$(sha256sum tests/python/requirements.txt | cut -c1-12)/bin/python}
MPIRUN=${MPIRUN:-tests/mpirun.sh}
RANKS=bench/parallel/ranks.sh
PRETRAIN=$BUILD/bin/pretrain
TOKPACK=$BUILD/bin/tokenize-pack
SEQ=256 MICRO=8 GLOBAL=16 VOCAB=8192 LR=1e-3 MIN_LR=1e-4 WARMUP=10

die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"
command -v taskset > /dev/null || die "taskset not found (util-linux)"
command -v mpirun > /dev/null || die "mpirun not found: make deps (openmpi-bin)"
if [[ ! -x $PY ]] || ! "$PY" -c 'import torch, torch.distributed, h5py, hdf5plugin' 2> /dev/null; then
    die "$PY cannot import torch, h5py and hdf5plugin: make venv (and make deps for python3-torch), or set PY"
fi
"$PY" -c 'import sys, torch.distributed as d; sys.exit(0 if d.is_available() and d.is_gloo_available() else 1)' ||
    die "$PY: torch.distributed with gloo is not available"

# --- build: the two tools (make), and the sgemm probe linked as the Makefile links OpenBLAS --------------------
if ((SKIP_BUILD == 0)); then
    echo "run.sh: make BUILD=$BUILD -j$JOBS $PRETRAIN $TOKPACK" >&2
    make --no-print-directory BUILD="$BUILD" -j"$JOBS" "$PRETRAIN" "$TOKPACK" >&2
fi
[[ -x $PRETRAIN && -x $TOKPACK ]] || die "$PRETRAIN or $TOKPACK missing: build them (make BUILD=$BUILD)"
mkdir -p "$WORK" "$DATA_WORK"
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

export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
LOAD_START=$(cat /proc/loadavg 2> /dev/null || true)
BIN_SUM=$(sha256sum "$PRETRAIN" | cut -c1-16)  # a rebuild during the run would mix two binaries

# --- data: bench/pretrain's recipe and cache (corpus -> BPE of 8192 trained on it -> shards of 257 tokens) -------
KEY=$(sha256sum < bench/tokenize/make_corpus.py | cut -c1-10)
CORPUS=$DATA_WORK/corpus-${MB}mb-seed$SEED-$KEY.jsonl
TOKENS=$DATA_WORK/tokens-v$VOCAB-s$SEQ-${MB}mb-seed$SEED-$KEY
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

# The layouts of ours: KIND RANKS THREADS CORES pretrain-flags. The planner's view of each (--dry-run: FLOPs and
# the traffic it expects per rank and step) goes into results.json.
LAYOUTS=(
    "ours_1r1t 1 1 $CORE0 "
    "ours_dp2 2 1 $CORES --dp 2"
    "ours_1r2t 1 2 $CORES "
    "ours_tp2 2 1 $CORES --tp 2"
    "ours_pp2 2 1 $CORES --pp 2"
    "ours_dp2z1 2 1 $CORES --dp 2 --zero 1"
    "ours_pp2b 2 1 $CORES --pp 2 --pp-layers 3,1"
)
PLAN_ARGS=()
for l in "${LAYOUTS[@]}"; do
    read -r kind _ _ _ flags <<< "$l"
    # shellcheck disable=SC2086  # flags is a word list
    "$PRETRAIN" --model "$CONFIG" --seq-len "$SEQ" --micro-batch "$MICRO" --global-batch "$GLOBAL" --dry-run \
        $flags --progress off > "$WORK/dry-run-$kind.txt"
    sed -n 's/^plan: //p' "$WORK/dry-run-$kind.txt" > "$WORK/plan-$kind.json"
    PLAN_ARGS+=(--plan "$kind=$WORK/plan-$kind.json")
done

RUNS=$WORK/runs.tsv
: > "$RUNS"
# timed NAME KIND REPEAT RANKS RESULT CORES -- command...: one run under taskset -c CORES and /usr/bin/time -v;
# stdout and stderr to WORK/NAME.log; ranks write WORK/NAME.rankR.time themselves (ranks.sh pin).
timed() {
    local name=$1 kind=$2 rep=$3 nranks=$4 result=$5 cores=$6; shift 7
    local cmd=(taskset -c "$cores" "$@") rc=0 t0 t1
    echo "run.sh: $name: ${cmd[*]}" >&2
    rm -f "$WORK/$name".rank*.time
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$WORK/$name.time" "${cmd[@]}" > "$WORK/$name.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    ((rc == 0)) || { tail -20 "$WORK/$name.log" >&2; die "$name failed (exit $rc); log: $WORK/$name.log"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$rep" "$nranks" "$result" "$WORK/$name.time" \
        "$(/usr/bin/python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.6f}")' "$t0" "$t1")" \
        "${cmd[*]}" >> "$RUNS"
}

# sgemm_probe NAME: 1-thread OpenBLAS sgemm on each core at once (the two cores busy together, as in a 2-rank run)
sgemm_probe() {
    local name=$1 c pids=()
    echo "run.sh: $name: sgemm_peak --threads 1 on cores ${CORE_LIST[*]} at once" >&2
    for c in "${CORE_LIST[@]}"; do
        OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c "$c" "$SGEMM" --threads 1 --sizes 1024,1536 --reps 3 \
            --seconds 0.3 > "$WORK/$name-core$c.json" &
        pids+=($!)
    done
    for c in "${pids[@]}"; do wait "$c" || die "$name: sgemm_peak failed"; done
}

COMMON=(--seq-len "$SEQ" --micro-batch "$MICRO" --steps "$STEPS" --lr "$LR" --min-lr "$MIN_LR" --seed "$SEED"
        --warmup-steps "$WARMUP")
# ours KIND REPEAT: one layout of LAYOUTS
ours() {
    local kind=$1 rep=$2 l nranks threads cores flags name
    for l in "${LAYOUTS[@]}"; do [[ $l == "$kind "* ]] && break; done
    read -r _ nranks threads cores flags <<< "$l"
    name="${kind//_/-}-$rep"
    rm -rf "${WORK:?}/$name"
    local args=(--data "$TOKENS" --model "$CONFIG" "${COMMON[@]}" --global-batch "$GLOBAL" --doc-masking off
                --threads "$threads" --progress off -o "$WORK/$name")
    # shellcheck disable=SC2206  # flags is a word list
    args+=($flags)
    if ((nranks == 1)); then
        timed "$name" "$kind" "$rep" 1 "$WORK/$name/metrics.jsonl" "$cores" -- \
            env OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" "$PRETRAIN" "${args[@]}"
    else
        timed "$name" "$kind" "$rep" "$nranks" "$WORK/$name/metrics.jsonl" "$cores" -- \
            env OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" "$MPIRUN" -np "$nranks" --bind-to none \
            "$RANKS" pin "$cores" "$WORK/$name" -- "$PRETRAIN" "${args[@]}"
    fi
}
# peer KIND REPEAT: torch_1r (1 process, 2 accumulation steps) or torch_ddp2 (2 processes, DDP over gloo)
peer() {
    local kind=$1 rep=$2 name="${1//_/-}-$2"
    rm -rf "${WORK:?}/$name"
    local envs=(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE)
    local args=(bench/pretrain/torch_train.py --data "$TOKENS" --config "$CONFIG" "${COMMON[@]}" --threads 1
                --save "$WORK/$name" --result "$WORK/$name.json")
    if [[ $kind == torch_1r ]]; then
        timed "$name" "$kind" "$rep" 1 "$WORK/$name.json" "$CORE0" -- "${envs[@]}" "$PY" "${args[@]}" --accum 2
    else
        timed "$name" "$kind" "$rep" 2 "$WORK/$name.json" "$CORES" -- "${envs[@]}" \
            "$RANKS" spawn 2 "$CORES" "$WORK/$name" -- "$PY" "${args[@]}" --ddp
    fi
}

# --- the runs, interleaved ---------------------------------------------------------------------------------
sgemm_probe sgemm-before
for ((r = 1; r <= REPEAT; r++)); do
    ours ours_1r1t "$r"
    peer torch_1r "$r"
    ours ours_dp2 "$r"
    peer torch_ddp2 "$r"
    ours ours_1r2t "$r"
    ours ours_tp2 "$r"
    ours ours_pp2 "$r"
    ours ours_dp2z1 "$r"
    ours ours_pp2b "$r"
done
sgemm_probe sgemm-after

[[ $(sha256sum "$PRETRAIN" | cut -c1-16) == "$BIN_SUM" ]] || die "$PRETRAIN changed during the run (rebuilt?): run again"

SGEMM_ARGS=()
for c in "${CORE_LIST[@]}"; do
    SGEMM_ARGS+=(--sgemm "before:$c=$WORK/sgemm-before-core$c.json" --sgemm "after:$c=$WORK/sgemm-after-core$c.json")
done
BUILD_PREFIX=""; [[ $BUILD == build ]] || BUILD_PREFIX="BUILD=$BUILD "
/usr/bin/python3 bench/parallel/summarize.py --runs "$RUNS" "${PLAN_ARGS[@]}" "${SGEMM_ARGS[@]}" --config "$CONFIG" \
    --tokens "$TOKENS" --corpus "$CORPUS" --bin "$PRETRAIN" --bin-sha256 "$BIN_SUM" --py "$PY" --cores "$CORES" \
    --steps "$STEPS" --label "$LABEL" --load-start "$LOAD_START" --blas-libs "$BLAS_LIBS" --mpirun "$MPIRUN" \
    --pack-command "${PACK_CMD[*]}" --command "${BUILD_PREFIX}bench/parallel/run.sh${ARGS:+ $ARGS}" \
    --json "$RESULTS/results.json" --md "$RESULTS/results.md"
cat "$RESULTS/results.md"
