#!/bin/bash
# tokenize-pack against tiktoken (and HF tokenizers, for information), side by side in one run, on the
# same text and the same cl100k-style vocabulary, one core each:
#   a. exactness + speed: tokenize-pack --encode (whole process: JSON parsing and printing ids included)
#      vs tiktoken encode_ordinary over every document (bench/tokenize/peer_encode.py; timed in-process,
#      JSON parsing excluded; the whole process is timed too), once with the cl100k pattern as tiktoken
#      ships it and once with formats.md's form (= ours), and HF tokenizers once; the id files compared
#      with ours document by document;
#   b. packing: tokenize-pack --mode pretrain on the same corpus (tokenize + pack into shards) vs --encode;
#   c. scaling: --mode pretrain under tests/mpirun.sh -np 2 (two cores) vs -np 1 (one core), on the same
#      corpus cut into --parts JSONL files (ranks share out input files, not lines of one file).
# No cl100k_base.tiktoken can be downloaded here: the vocabulary (--vocab tokens, cl100k pre-tokenizer)
# is trained with HF tokenizers on held-out local text (/usr/share/doc) and converted to a tiktoken rank
# file; it is cached under WORK, keyed by its parameters. Writes bench/tokenize/results.json and
# bench/tokenize/results.md (see bench/tokenize/README.md for what each span includes). A benchmark,
# never a test: run it on a quiet machine.
#
# Usage: bench/tokenize/run.sh [--mb 50] [--vocab 50000] [--train-mb 40] [--seed 1] [--repeat 3]
#                              [--seq-len 2048] [--parts 8] [--core 0] [--cores 0,1] [--label TEXT]
#                              [--skip-hf] [--skip-scaling]
# Environment: BUILD (build), BIN (BUILD/bin/tokenize-pack), BENCH_VENV (the venv `make bench-venv-tokenize`
#   makes: ~/.cache/bellows/bench-venv-<hash of bench/tokenize/requirements.txt>), WORK (BUILD/bench/tokenize:
#   vocabularies, corpora, outputs, logs), RESULTS (bench/tokenize: where results.json and results.md go),
#   MPIRUN (tests/mpirun.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

MB=50 VOCAB=50000 TRAIN_MB=40 SEED=1 REPEAT=3 SEQ_LEN=2048 PARTS=8 CORE=0 CORES=0,1 LABEL="" SKIP_HF=0 SKIP_SCALING=0
ARGS=""; if (($#)); then ARGS=$(printf '%q ' "$@"); ARGS=${ARGS% }; fi
while (($#)); do
    case $1 in
        --mb) MB=$2; shift 2 ;;
        --vocab) VOCAB=$2; shift 2 ;;
        --train-mb) TRAIN_MB=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --seq-len) SEQ_LEN=$2; shift 2 ;;
        --parts) PARTS=$2; shift 2 ;;
        --core) CORE=$2; shift 2 ;;
        --cores) CORES=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --skip-hf) SKIP_HF=1; shift ;;
        --skip-scaling) SKIP_SCALING=1; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

BUILD=${BUILD:-build}
BIN=${BIN:-$BUILD/bin/tokenize-pack}
REQ=bench/tokenize/requirements.txt
BENCH_VENV=${BENCH_VENV:-$HOME/.cache/bellows/bench-venv-$(sha256sum "$REQ" | cut -c1-12)}
WORK=${WORK:-$BUILD/bench/tokenize}
RESULTS=${RESULTS:-bench/tokenize}
MPIRUN=${MPIRUN:-tests/mpirun.sh}
PY=$BENCH_VENV/bin/python

die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x $BIN ]] || die "$BIN not found: build it first (make)"
[[ -x $PY ]] && "$PY" -c 'import tiktoken, tokenizers' 2>/dev/null ||
    die "no bench venv at $BENCH_VENV: make bench-venv-tokenize (or set BENCH_VENV)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"
if ((SKIP_SCALING == 0)); then command -v mpirun >/dev/null || die "mpirun not found (or pass --skip-scaling)"; fi
PIN1=() PIN2=()
if command -v taskset >/dev/null; then PIN1=(taskset -c "$CORE"); PIN2=(taskset -c "$CORES"); CORES_USED=1
else echo "run.sh: taskset not found (util-linux): runs are not pinned; per-core figures use CPU time" >&2; CORES_USED=0; fi

# One thread everywhere; nothing fetched from a hub; tiktoken's file cache off.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 TIKTOKEN_CACHE_DIR=""

mkdir -p "$WORK"
LOAD_START=$(cat /proc/loadavg 2>/dev/null || true)
rm -f "$WORK"/ids-*.txt "$WORK"/compare-*.json  # nothing from an earlier run may be compared
BIN_SUM=$(sha256sum "$BIN" | cut -c1-16)  # a rebuild during the run would mix two binaries

# --- the vocabulary: trained once per parameters (and per version of the scripts that make it) ------------
VOCAB_KEY=$(cat bench/tokenize/make_corpus.py bench/tokenize/train_vocab.py tests/python/make_tokenizer_fixtures.py "$REQ" |
    sha256sum | cut -c1-10)
VDIR=$WORK/vocab-${VOCAB}-train${TRAIN_MB}mb-seed$SEED-$VOCAB_KEY
if [[ ! -s $VDIR/meta.json ]]; then
    TRAIN=$WORK/train-${TRAIN_MB}mb-seed$SEED.jsonl
    echo "run.sh: training the $VOCAB-token vocabulary into $VDIR (once; cached)" >&2
    /usr/bin/python3 bench/tokenize/make_corpus.py --split train --mb "$TRAIN_MB" --seed "$SEED" -o "$TRAIN.tmp" \
        --stats "$TRAIN.stats.json"
    mv "$TRAIN.tmp" "$TRAIN"
    rm -rf "$VDIR.tmp"
    "${PIN1[@]}" "$PY" bench/tokenize/train_vocab.py "$TRAIN" "$VDIR.tmp" --vocab-size "$VOCAB"
    cp "$TRAIN.stats.json" "$VDIR.tmp/train.stats.json"
    rm -rf "$VDIR"; mv "$VDIR.tmp" "$VDIR"
fi
RANKS=$VDIR/vocab.tiktoken
EOS_ID=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eos_id"])' "$VDIR/meta.json")

# --- the corpus: the held-out 'bench' pool, one JSONL file and the same documents as --parts files ---------
CORPUS=$WORK/corpus-${MB}mb-seed$SEED.jsonl
CORPUS_PARTS=$WORK/corpus-${MB}mb-seed$SEED-parts$PARTS
if [[ ! -s $CORPUS || ! -s $CORPUS.stats.json || ! -d $CORPUS_PARTS ]]; then
    echo "run.sh: writing $CORPUS" >&2
    rm -rf "$CORPUS_PARTS"
    /usr/bin/python3 bench/tokenize/make_corpus.py --split bench --mb "$MB" --seed "$SEED" -o "$CORPUS.tmp" \
        --stats "$CORPUS.stats.json" --parts "$CORPUS_PARTS" --num-parts "$PARTS"
    mv "$CORPUS.tmp" "$CORPUS"
fi
STARTUP=$WORK/startup.jsonl
echo '{"text": "Hello, world!"}' > "$STARTUP"
cat "$CORPUS" "$CORPUS_PARTS"/*.jsonl "$RANKS" > /dev/null  # into the page cache before anything is timed

RUNS=$WORK/runs.tsv
: > "$RUNS"
# timed NAME KIND REPEAT OUTDIR RESULTFILE STDOUT CPUS -- command...: one run under /usr/bin/time -v,
# pinned to CPUS; STDOUT '-' sends stdout to the log (WORK/NAME.log), else to that file.
timed() {
    local name=$1 kind=$2 rep=$3 outdir=$4 result=$5 stdout=$6 cpus=$7; shift 8
    [[ $outdir == - ]] || rm -rf "$outdir"
    local cmd=("$@") redirect=""
    if ((CORES_USED)); then cmd=(taskset -c "$cpus" "$@"); fi
    if [[ $stdout == - ]]; then stdout=$WORK/$name.log; else redirect=" > $stdout"; fi
    echo "run.sh: $name: ${cmd[*]}$redirect" >&2
    local rc=0 t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$WORK/$name.time" "${cmd[@]}" > "$stdout" 2> "$WORK/$name.err" || rc=$?
    t1=$(date +%s.%N)
    ((rc == 0)) || { tail -20 "$WORK/$name.err" >&2; die "$name failed (exit $rc); log: $WORK/$name.err"; }
    # wall seconds at ns resolution (GNU time prints 10 ms steps); GNU time gives peak RSS and CPU time
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$rep" "$outdir" "$result" "$WORK/$name.time" \
        "$(/usr/bin/python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.6f}")' "$t0" "$t1")" \
        "$cpus" "${cmd[*]}$redirect" >> "$RUNS"
}

TOK=(--tokenizer "$RANKS" --pattern cl100k)
PACK=("${TOK[@]}" --special-token "<|endoftext|>=$EOS_ID" --eos-token "<|endoftext|>" --mode pretrain
      --seq-len "$SEQ_LEN" --seed 1 --progress off)
for ((r = 1; r <= REPEAT; r++)); do
    # start-up alone (load the rank file, build the merge table, compile the regex): one short record
    timed "ours-startup-$r" ours_startup "$r" - - "$WORK/ours-startup-$r.ids" "$CORE" -- \
        "$BIN" "${TOK[@]}" --encode "$STARTUP"
    # a. ours: the whole process, ids printed to a file
    timed "ours-encode-$r" ours_encode "$r" - - "$WORK/ids-ours-$r.txt" "$CORE" -- \
        "$BIN" "${TOK[@]}" --encode "$CORPUS"
    # a. the peers, one per process: tiktoken with both forms of the cl100k pattern; HF tokenizers once
    for peer in tiktoken-shipped tiktoken-formats hf; do
        if [[ $peer == hf ]] && ((SKIP_HF || r > 1)); then continue; fi
        timed "$peer-$r" "${peer//-/_}" "$r" - "$WORK/$peer-$r.json" - "$CORE" -- \
            "$PY" bench/tokenize/peer_encode.py "$CORPUS" --peer "$peer" --vocab-dir "$VDIR" \
            --ids-out "$WORK/ids-$peer-$r.txt" --result "$WORK/$peer-$r.json"
    done
    # b. ours: tokenize + pack, same corpus file
    timed "ours-pretrain-$r" ours_pretrain "$r" "$WORK/ours-pretrain-$r" "$WORK/ours-pretrain-$r/report.json" - \
        "$CORE" -- "$BIN" "${PACK[@]}" "$CORPUS" -o "$WORK/ours-pretrain-$r"
    if ((SKIP_SCALING == 0)); then
        # c. ours under MPI: 1 rank on one core, 2 ranks on two cores, the corpus as PARTS files
        timed "ours-pretrain-np1-$r" ours_pretrain_np1 "$r" "$WORK/ours-pretrain-np1-$r" \
            "$WORK/ours-pretrain-np1-$r/report.json" - "$CORE" -- \
            "$MPIRUN" -np 1 "$BIN" "${PACK[@]}" "$CORPUS_PARTS" -o "$WORK/ours-pretrain-np1-$r"
        timed "ours-pretrain-np2-$r" ours_pretrain_np2 "$r" "$WORK/ours-pretrain-np2-$r" \
            "$WORK/ours-pretrain-np2-$r/report.json" - "$CORES" -- \
            "$MPIRUN" -np 2 "$BIN" "${PACK[@]}" "$CORPUS_PARTS" -o "$WORK/ours-pretrain-np2-$r"
        if ((r == 1)); then
            # for information: 2 ranks given the single corpus file (ranks share out files, so one rank works)
            timed "ours-pretrain-np2-onefile-$r" ours_pretrain_np2_onefile "$r" "$WORK/ours-pretrain-np2-onefile-$r" \
                "$WORK/ours-pretrain-np2-onefile-$r/report.json" - "$CORES" -- \
                "$MPIRUN" -np 2 "$BIN" "${PACK[@]}" "$CORPUS" -o "$WORK/ours-pretrain-np2-onefile-$r"
        fi
    fi
done

[[ $(sha256sum "$BIN" | cut -c1-16) == "$BIN_SUM" ]] || die "$BIN changed during the run (rebuilt?): run again"

# Exactness: ours vs each peer, every document (repeat 1); every other repeat's ids must equal repeat 1's.
COMPARES=()
for peer in tiktoken-shipped tiktoken-formats hf; do
    [[ -s $WORK/ids-$peer-1.txt ]] || continue
    /usr/bin/python3 bench/tokenize/compare_ids.py "$WORK/ids-ours-1.txt" "$WORK/ids-$peer-1.txt" --corpus "$CORPUS" \
        --result "$WORK/compare-$peer.json"
    COMPARES+=(--compare "$peer=$WORK/compare-$peer.json")
done
for ((r = 2; r <= REPEAT; r++)); do
    for who in ours tiktoken-shipped tiktoken-formats; do
        cmp -s "$WORK/ids-$who-1.txt" "$WORK/ids-$who-$r.txt" || die "$who: repeat $r gave other ids than repeat 1"
        rm -f "$WORK/ids-$who-$r.txt"
    done
done

/usr/bin/python3 bench/tokenize/summarize.py --runs "$RUNS" --corpus "$CORPUS" --parts "$CORPUS_PARTS" \
    --vocab-dir "$VDIR" "${COMPARES[@]}" --venv "$BENCH_VENV" --bin "$BIN" --bin-sha256 "$BIN_SUM" \
    --core "$CORE" --cores "$CORES" --cores-used "$CORES_USED" --label "$LABEL" --load-start "$LOAD_START" \
    --seq-len "$SEQ_LEN" \
    --command "bench/tokenize/run.sh${ARGS:+ $ARGS}" --json "$RESULTS/results.json" --md "$RESULTS/results.md"
cat "$RESULTS/results.md"
