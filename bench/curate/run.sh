#!/bin/bash
# curate-dedup against its peers, side by side in one run, on the same corpus and parameters, one core each:
#   a. MinHash stage: curate-dedup with every other stage off vs datasketch (MinHash.generator + update_batch
#      over the same word 5-gram shingles; then MinHashLSH with the same bands x rows);
#   b. whole pipeline: curate-dedup --disable langid --pii-types email,ipv4 vs datatrove's equivalent
#      pipeline (bench/curate/peer_datatrove.py), LocalPipelineExecutor with workers=1.
# Writes bench/curate/results.json and bench/curate/results.md (see bench/curate/README.md for what each
# number includes and every difference in semantics). A benchmark, never a test: run it on a quiet machine.
#
# Usage: bench/curate/run.sh [--mb 50] [--seed 1] [--repeat 3] [--datatrove-repeat 1] [--threshold 0.8]
#                            [--num-perm 128] [--core 0] [--label TEXT] [--skip-datatrove]
# Environment: BUILD (build), BIN (BUILD/bin/curate-dedup), BENCH_VENV (the venv `make bench-venv` made:
#   ~/.cache/bellows/bench-venv-<hash of bench/curate/requirements.txt>), WORK (BUILD/bench/curate: corpus,
#   outputs, logs), RESULTS (bench/curate: where results.json and results.md go).
set -euo pipefail
cd "$(dirname "$0")/../.."

MB=50 SEED=1 REPEAT=3 DT_REPEAT=1 THRESHOLD=0.8 NUM_PERM=128 CORE=0 LABEL="" SKIP_DT=0
ARGS=""; if (($#)); then ARGS=$(printf '%q ' "$@"); ARGS=${ARGS% }; fi
while (($#)); do
    case $1 in
        --mb) MB=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --datatrove-repeat) DT_REPEAT=$2; shift 2 ;;
        --threshold) THRESHOLD=$2; shift 2 ;;
        --num-perm) NUM_PERM=$2; shift 2 ;;
        --core) CORE=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --skip-datatrove) SKIP_DT=1; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

BUILD=${BUILD:-build}
BIN=${BIN:-$BUILD/bin/curate-dedup}
REQ=bench/curate/requirements.txt
BENCH_VENV=${BENCH_VENV:-$HOME/.cache/bellows/bench-venv-$(sha256sum "$REQ" | cut -c1-12)}
WORK=${WORK:-$BUILD/bench/curate}
RESULTS=${RESULTS:-bench/curate}
PY=$BENCH_VENV/bin/python

die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x $BIN ]] || die "$BIN not found: build it first (make)"
[[ -x $PY ]] && "$PY" -c 'import datatrove, datasketch' 2>/dev/null ||
    die "no bench venv at $BENCH_VENV: make bench-venv (or set BENCH_VENV)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"
PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c "$CORE"); CORES_USED=1
else echo "run.sh: taskset not found (util-linux): runs are not pinned; per-core figures use CPU time" >&2; CORES_USED=0; fi

# One thread everywhere; nothing fetched from a hub; OpenBLAS tuning variables unset for numpy.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1 \
    VECLIB_MAXIMUM_THREADS=1 RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

mkdir -p "$WORK"
BIN_SUM=$(sha256sum "$BIN" | cut -c1-16)  # a rebuild during the run would mix two binaries
CORPUS=$WORK/corpus-${MB}mb-seed$SEED.jsonl
if [[ ! -s $CORPUS || ! -s $CORPUS.stats.json ]]; then
    echo "run.sh: writing $CORPUS" >&2
    /usr/bin/python3 bench/curate/make_corpus.py --mb "$MB" --seed "$SEED" -o "$CORPUS.tmp" --stats "$CORPUS.stats.json"
    mv "$CORPUS.tmp" "$CORPUS"
fi
cat "$CORPUS" > /dev/null  # into the page cache before anything is timed

RUNS=$WORK/runs.tsv
: > "$RUNS"
# timed NAME KIND REPEAT OUTDIR RESULTFILE -- command...: one run under /usr/bin/time -v, pinned.
timed() {
    local name=$1 kind=$2 rep=$3 outdir=$4 result=$5; shift 6
    rm -rf "$outdir"
    local cmd=("${PIN[@]}" "$@")
    echo "run.sh: $name: ${cmd[*]}" >&2
    local rc=0 t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$WORK/$name.time" "${cmd[@]}" > "$WORK/$name.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    ((rc == 0)) || { tail -20 "$WORK/$name.log" >&2; die "$name failed (exit $rc); log: $WORK/$name.log"; }
    # wall seconds at ns resolution (GNU time prints 10 ms steps); GNU time gives peak RSS and CPU time
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$rep" "$outdir" "$result" "$WORK/$name.time" \
        "$(/usr/bin/python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.6f}")' "$t0" "$t1")" \
        "${cmd[*]}" >> "$RUNS"
}

OURS_COMMON=(--progress off --num-perm "$NUM_PERM" --threshold "$THRESHOLD" --seed 1)
# One document kept per connected component, as datatrove (union-find roots) and peer_datasketch.py do;
# curate-dedup's default, covering, keeps more. (Older binaries have only that semantics and no flag.)
if "$BIN" --help 2>/dev/null | grep -q -- '--cluster-keep'; then OURS_COMMON+=(--cluster-keep one); fi
BANDS="" ROWS=""
for ((r = 1; r <= REPEAT; r++)); do
    # a. MinHash stage, ours: only fuzzy dedup on (no cleanup, langid, quality, pii, exact).
    timed "ours-minhash-$r" ours_minhash "$r" "$WORK/ours-minhash-$r" "$WORK/ours-minhash-$r/report.json" -- \
        "$BIN" "$CORPUS" -o "$WORK/ours-minhash-$r" --disable cleanup,langid,quality,pii,exact "${OURS_COMMON[@]}"
    if [[ -z $BANDS ]]; then
        read -r BANDS ROWS < <(/usr/bin/python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["lsh"]; print(l["bands"], l["rows"])' \
            "$WORK/ours-minhash-1/report.json")
        echo "run.sh: LSH $BANDS bands x $ROWS rows (curate-dedup's choice for threshold $THRESHOLD, $NUM_PERM permutations)" >&2
    fi
    # a. MinHash stage, datasketch: same shingles, num_perm, bands x rows.
    timed "datasketch-$r" datasketch "$r" "$WORK/datasketch-$r" "$WORK/datasketch-$r.json" -- \
        "$PY" bench/curate/peer_datasketch.py "$CORPUS" --num-perm "$NUM_PERM" --bands "$BANDS" --rows "$ROWS" \
        --variants default,xxh32 --result "$WORK/datasketch-$r.json"
    # b. Whole pipeline, ours, matched to datatrove: no langid, PII limited to what datatrove redacts.
    timed "ours-pipeline-$r" ours_pipeline "$r" "$WORK/ours-pipeline-$r" "$WORK/ours-pipeline-$r/report.json" -- \
        "$BIN" "$CORPUS" -o "$WORK/ours-pipeline-$r" --disable langid --pii-types email,ipv4 "${OURS_COMMON[@]}"
    # b'. For information: ours with every PII type (its default), still without langid.
    timed "ours-pipeline-allpii-$r" ours_pipeline_allpii "$r" "$WORK/ours-pipeline-allpii-$r" \
        "$WORK/ours-pipeline-allpii-$r/report.json" -- \
        "$BIN" "$CORPUS" -o "$WORK/ours-pipeline-allpii-$r" --disable langid "${OURS_COMMON[@]}"
done
if ((SKIP_DT == 0)); then
    for ((r = 1; r <= DT_REPEAT; r++)); do
        timed "datatrove-$r" datatrove "$r" "$WORK/datatrove-$r" "$WORK/datatrove-$r.json" -- \
            "$PY" bench/curate/peer_datatrove.py "$CORPUS" --work "$WORK/datatrove-$r" --bands "$BANDS" \
            --rows "$ROWS" --result "$WORK/datatrove-$r.json"
    done
fi

[[ $(sha256sum "$BIN" | cut -c1-16) == "$BIN_SUM" ]] || die "$BIN changed during the run (rebuilt?): run again"
/usr/bin/python3 bench/curate/summarize.py --runs "$RUNS" --corpus "$CORPUS" --venv "$BENCH_VENV" \
    --bin "$BIN" --bin-sha256 "$BIN_SUM" --core "$CORE" --cores-used "$CORES_USED" --label "$LABEL" \
    --command "bench/curate/run.sh${ARGS:+ $ARGS}" --json "$RESULTS/results.json" --md "$RESULTS/results.md"
cat "$RESULTS/results.md"
