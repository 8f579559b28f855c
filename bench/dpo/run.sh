#!/bin/bash
# dpo-align's step time, tokens/s and peak RSS for each way of getting the reference (issue 9), side by side in one
# run on the same cores and the same model:
#   model: bench/pretrain's Llama (hidden 256, 4 layers, 8 heads / 4 kv heads, ffn 688, vocab 8192, untied lm_head),
#          seq 256, micro-batch 4 pairs (8 rows: what bench/lora's micro-batch 8 holds) = global batch 4 pairs,
#          AdamW, lr 1e-4 (the speed does not depend on it), --doc-masking off;
#   data:  bench/pretrain's cached corpus and tokenizer (DATA_WORK = BUILD/bench/pretrain; made by
#          bench/pretrain/run.sh --steps 3 --repeat 1 if missing); preference shards made here from the same corpus:
#          windows of 120 words, the first 40 the prompt, the next 40 the chosen response, the 40 after those the
#          rejected one (tokenize-pack --mode preference with the same tokenizer), the first --pairs of them;
#   policy: the model after one pretraining step (the weights do not change the speed);
#   runs, each --repeat times, interleaved; the fastest repeat is the headline (of the step time, and of the
#   one-off set-up):
#     lora-ref          --new-lora (rank 16, alpha 32, all seven projections): the reference is the base with the
#                       adapters off, a second forward of the same model each step, no second copy
#     lora-precompute   the same with --precompute-ref: the reference's log-probabilities of every pair computed once
#                       before the first step (RUNDIR/reference/logps-train.h5), no reference pass per step
#     full-copy         every weight trains; the reference is a frozen copy of the policy (its own weights and
#                       activations), a forward of it each step
#     full-precompute   every weight with --precompute-ref (the copy is built for the precomputation, then freed)
#   each 1 process x --threads, taskset -c CORES, /usr/bin/time -v (peak RSS); stderr time-stamped as it arrives
#   (monotonic clock), so the one-off reference set-up is the time from dpo-align's "model:" line to its "dpo:" line
#   (the precomputation, or loading the frozen copy).
# Step time: the median of the steps after the first 2 (RUNDIR/metrics.jsonl time_s.step, the reference pass
# included); tokens/s: every token of both rows of each pair (2 x pairs x seq per step) over that median. Writes
# RESULTS/results.json and RESULTS/results.md. A benchmark, never a test: run it on a quiet machine.
#
# Usage: bench/dpo/run.sh [--steps 30] [--repeat 3] [--pairs 512] [--cores 0,1] [--skip-build] [--report-only]
# --report-only: no runs, results.{json,md} again from WORK/runs.tsv (the last run's logs).
# Environment: BUILD (build), JOBS (2), WORK (BUILD/bench/dpo), DATA_WORK (BUILD/bench/pretrain), RESULTS (bench/dpo),
#   PY (the test venv's python: only bench/pretrain/run.sh uses it, when its cache is missing)
set -euo pipefail
cd "$(dirname "$0")/../.."

STEPS=30 REPEAT=3 PAIRS=512 CORES=0,1 SKIP_BUILD=0 REPORT_ONLY=0
ARGS=""; if (($#)); then ARGS=$(printf '%q ' "$@"); ARGS=${ARGS% }; fi
while (($#)); do
    case $1 in
        --steps) STEPS=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --pairs) PAIRS=$2; shift 2 ;;
        --cores) CORES=$2; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --report-only) REPORT_ONLY=1; SKIP_BUILD=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
((STEPS > 2)) || { echo "run.sh: --steps must be more than 2" >&2; exit 2; }
((PAIRS >= 8)) || { echo "run.sh: --pairs must be at least 8" >&2; exit 2; }
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
WORK=${WORK:-$BUILD/bench/dpo}
DATA_WORK=${DATA_WORK:-$BUILD/bench/pretrain}
RESULTS=${RESULTS:-bench/dpo}
THREADS=$(awk -F, '{print NF}' <<< "$CORES")
SEQ=256 MICRO=4
die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"
command -v taskset > /dev/null || die "taskset not found (util-linux)"

if ((REPORT_ONLY)); then
    [[ -s $WORK/runs.tsv && -s $WORK/run-info ]] || die "--report-only: no $WORK/runs.tsv or $WORK/run-info from an earlier run"
    # shellcheck source=/dev/null
    . "$WORK/run-info"
else
    if ((SKIP_BUILD == 0)); then
        make --no-print-directory BUILD="$BUILD" -j"$JOBS" "$BUILD/bin/pretrain" "$BUILD/bin/dpo-align" "$BUILD/bin/tokenize-pack" >&2
    fi
    mkdir -p "$WORK"
    TOKENS=$(ls -d "$DATA_WORK"/tokens-v8192-s256-* 2>/dev/null | grep -v '\.tmp$' | head -n 1 || true)
    if [[ -z $TOKENS ]]; then
        echo "run.sh: no cached token shards under $DATA_WORK: making them with bench/pretrain/run.sh" >&2
        pre_results=$WORK/pretrain-results
        BUILD=$BUILD WORK=$DATA_WORK RESULTS=$pre_results bench/pretrain/run.sh --steps 3 --repeat 1 --skip-build >&2
        TOKENS=$(ls -d "$DATA_WORK"/tokens-v8192-s256-* | grep -v '\.tmp$' | head -n 1)
    fi
    CORPUS=$(ls "$DATA_WORK"/corpus-*.jsonl | head -n 1)
    CONFIG=$DATA_WORK/config.json
    [[ -s $CONFIG && -s $CORPUS && -s $TOKENS/tokenizer.json ]] || die "bench/pretrain's cache under $DATA_WORK is incomplete"
    export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
    BIN_SUM=$(sha256sum "$BUILD/bin/dpo-align" | cut -c1-16)  # a rebuild during the run would mix two binaries
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

    PREF=$WORK/pref-$PAIRS-$(basename "$TOKENS")
    if [[ ! -s $PREF/report.json ]]; then
        /usr/bin/python3 - "$CORPUS" "$WORK/pairs.jsonl" "$PAIRS" <<'PY'
import json, sys
n, want = 0, int(sys.argv[3])
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        words = json.loads(line)["text"].split()
        # Windows of 120 words: prompt, chosen (what follows it), rejected (the text after that).
        for at in range(0, len(words) - 119, 120):
            w = words[at:at + 120]
            out.write(json.dumps({"prompt": " ".join(w[:40]), "chosen": " " + " ".join(w[40:80]),
                                  "rejected": " " + " ".join(w[80:120])}) + "\n")
            n += 1
            if n == want:
                sys.exit(0)
sys.exit(f"only {n} pairs in the corpus, --pairs {want} asked for")
PY
        rm -rf "$PREF.tmp"
        "$BUILD/bin/tokenize-pack" --tokenizer "$TOKENS/tokenizer.json" --mode preference --seq-len "$SEQ" --progress off \
            "$WORK/pairs.jsonl" -o "$PREF.tmp" >&2
        mv "$PREF.tmp" "$PREF"
        sed -i "s#$PREF.tmp#$PREF#g" "$PREF/report.json"
    fi
    cat "$PREF"/*.h5 > /dev/null  # into the page cache before anything is timed
    BASE=$WORK/base
    if [[ ! -s $BASE/checkpoints/latest ]]; then
        rm -rf "$BASE"
        "$BUILD/bin/pretrain" --data "$TOKENS" --model "$CONFIG" --seq-len "$SEQ" --micro-batch 8 --steps 1 --threads "$THREADS" \
            --progress off -o "$BASE" 2> "$WORK/base.log"
    fi

    # Each line of stdin with the monotonic time it arrived, for the one-off reference set-up.
    STAMP=$'import sys, time\nfor line in sys.stdin:\n    sys.stdout.write("%.6f %s" % (time.monotonic(), line))\n    sys.stdout.flush()'
    COMMON=(--policy "$BASE" --data "$PREF" --seq-len "$SEQ" --micro-batch "$MICRO" --global-batch "$MICRO" --steps "$STEPS"
            --lr 1e-4 --warmup-steps 2 --threads "$THREADS" --doc-masking off --log-every 1000 --progress off)
    LORA=(--new-lora --rank 16 --alpha 32)
    run_one() {  # NAME REPEAT: one timed run
        local name=$1 rep=$2 dir=$WORK/runs/$1-$2 extra
        rm -rf "$dir"
        case $name in
            lora-ref) extra=("${LORA[@]}") ;;
            lora-precompute) extra=("${LORA[@]}" --precompute-ref) ;;
            full-copy) extra=() ;;
            full-precompute) extra=(--precompute-ref) ;;
        esac
        if ! taskset -c "$CORES" /usr/bin/time -v -o "$WORK/$name-$rep.time" "$BUILD/bin/dpo-align" "${COMMON[@]}" \
            "${extra[@]}" -o "$dir" 2>&1 > /dev/null | /usr/bin/python3 -u -c "$STAMP" > "$WORK/$name-$rep.log"; then
            die "$name failed: $(tail -3 "$WORK/$name-$rep.log")"
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$dir" "$WORK/$name-$rep.log" "$WORK/$name-$rep.time" >> "$WORK/runs.tsv"
    }
    : > "$WORK/runs.tsv"
    for rep in $(seq "$REPEAT"); do
        for name in lora-ref lora-precompute full-copy full-precompute; do
            echo "run.sh: $name, repeat $rep" >&2
            run_one "$name" "$rep"
        done
    done
    [[ $(sha256sum "$BUILD/bin/dpo-align" | cut -c1-16) == "$BIN_SUM" ]] || die "$BUILD/bin/dpo-align changed during the run"
    LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
    RUN_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
    printf 'ARGS=%q PAIRS=%q CORES=%q BIN_SUM=%q LOAD_START=%q LOAD_END=%q RUN_DATE=%q\n' "$ARGS" "$PAIRS" "$CORES" \
        "$BIN_SUM" "$LOAD_START" "$LOAD_END" "$RUN_DATE" > "$WORK/run-info"
fi

mkdir -p "$RESULTS"
/usr/bin/python3 - "$WORK/runs.tsv" "$RESULTS" "$ARGS" "$CORES" "$PAIRS" "$SEQ" "$MICRO" "$BIN_SUM" "$LOAD_START" "$LOAD_END" \
    "$RUN_DATE" <<'PY'
import json, re, statistics, subprocess, sys
runs, out, args, cores, pairs, seq, micro, bin_sum, load_start, load_end, run_date = sys.argv[1:12]
pairs, seq, micro = int(pairs), int(seq), int(micro)
best, setups = {}, {}
for line in open(runs):
    name, rep, d, log, timef = line.rstrip("\n").split("\t")
    steps = [json.loads(l) for l in open(f"{d}/metrics.jsonl") if '"event":"step"' in l.replace(" ", "")]
    secs = [s["time_s"]["step"] for s in steps[2:]]
    step_s = statistics.median(secs)
    tokens = 2 * micro * seq
    stamps = {}
    for l in open(log):
        t, _, text = l.partition(" ")
        for key, pat in (("model", " info: model: "), ("dpo", " info: dpo: loss "),
                         ("precomputed", " info: reference log-probabilities of ")):
            if pat in text and key not in stamps:
                stamps[key] = float(t)
        m = re.search(r" info: model: (\d+) parameters", text)
        if m:
            stamps["params"] = int(m.group(1))
        m = re.search(r"reference: a frozen copy of the policy's starting weights \(([0-9.e+-]+) GiB", text)
        if m:
            stamps["ref_gib"] = float(m.group(1))
    setup_s = stamps["dpo"] - stamps["model"]
    tv = open(timef).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv).group(1)) // 1024
    r = {"name": name, "repeat": int(rep), "step_s": step_s, "tokens_per_s": tokens / step_s, "peak_rss_mib": rss,
         "reference_setup_s": setup_s, "targets_per_step": statistics.mean(s["targets"] for s in steps),
         "final_loss": steps[-1]["loss"], "final_accuracy": steps[-1]["rewards/accuracies"], "parameters": stamps["params"]}
    if "ref_gib" in stamps:
        r["reference_copy_gib"] = stamps["ref_gib"]
    setups.setdefault(name, []).append(setup_s)
    if name not in best or step_s < best[name]["step_s"]:
        best[name] = r
for name, v in setups.items():  # the one-off set-up: its fastest repeat too (not necessarily the fastest steps')
    best[name]["reference_setup_s"] = min(v)
    best[name]["reference_setup_s_repeats"] = v
cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
res = {"date": run_date, "machine": f"{model}, nproc {nproc}, cores {cores}",
       "command": ("bench/dpo/run.sh " + args).strip(), "dpo_align_sha256": bin_sum, "pairs": pairs, "seq_len": seq,
       "micro_batch_pairs": micro, "loadavg_start": load_start, "loadavg_end": load_end, "runs": best}
json.dump(res, open(f"{out}/results.json", "w"), indent=2)
steps_per_epoch = pairs / micro
lines = [f"# dpo-align: the reference as adapters off, a frozen copy, or precomputed ({res['date']})", "",
         f"Machine: {res['machine']} (a 2-core VM; load average {load_start} before, {load_end} after). Command: `{res['command']}` (`make bench-dpo`). Model: bench/pretrain's "
         f"(hidden 256, 4 layers, vocab 8192, {best['full-copy']['parameters'] / 1e6:.1f}M parameters), seq {seq}, micro-batch = global batch {micro} pairs "
         f"({2 * micro} rows, {2 * micro * seq} tokens a step), {pairs} pairs; LoRA rank 16 on all seven projections; "
         "fastest repeat (step time and set-up each). Step: the median of time_s.step after the first 2 steps, the reference pass "
         "included; tokens/s: both rows of each pair; one-off set-up: from dpo-align's \"model:\" line to its \"dpo:\" "
         "line (stderr time-stamped as it arrives); peak RSS: /usr/bin/time -v.", "",
         "| run | reference | step (s) | tokens/s | vs its on-the-fly reference | one-off reference set-up (s) | peak RSS (MiB) |",
         "|---|---|---:|---:|---:|---:|---:|"]
what = {"lora-ref": "base, adapters off (a 2nd forward of the policy)",
        "lora-precompute": "precomputed log-probs",
        "full-copy": "frozen copy (a 2nd model, its forward)",
        "full-precompute": "precomputed log-probs"}
onfly = {"lora-ref": "lora-ref", "lora-precompute": "lora-ref", "full-copy": "full-copy", "full-precompute": "full-copy"}
for name in ("lora-ref", "lora-precompute", "full-copy", "full-precompute"):
    b = best[name]
    o = best[onfly[name]]
    setup = ("—" if name == "lora-ref" else f"{b['reference_setup_s']:.2f}" +
             (" (precompute)" if "precompute" in name else " (load the copy)"))
    lines.append(f"| {name} | {what[name]} | {b['step_s']:.3f} | {b['tokens_per_s']:.0f} | {o['step_s'] / b['step_s']:.2f}x | "
                 f"{setup} | {b['peak_rss_mib']} |")
lines.append("")
for kind in ("lora", "full"):
    on, pre = best[f"{kind}-ref" if kind == "lora" else "full-copy"], best[f"{kind}-precompute"]
    saved = on["step_s"] - pre["step_s"]
    if saved > 0:
        be = pre["reference_setup_s"] / saved
        lines.append(f"- {kind}: precomputing saves {saved:.3f} s a step ({100 * saved / on['step_s']:.0f}% of the "
                     f"on-the-fly step) for {pre['reference_setup_s']:.1f} s once ({1000 * pre['reference_setup_s'] / pairs:.1f} ms "
                     f"a pair): it pays off after {be:.0f} steps ({be / steps_per_epoch:.2f} epochs of these {pairs} pairs).")
    else:
        lines.append(f"- {kind}: precomputing does not make the step faster here ({pre['step_s']:.3f} s against {on['step_s']:.3f} s).")
lines.append(f"- peak RSS: full-copy {best['full-copy']['peak_rss_mib']} MiB against full-precompute "
             f"{best['full-precompute']['peak_rss_mib']} MiB, lora-ref {best['lora-ref']['peak_rss_mib']} MiB, "
             f"lora-precompute {best['lora-precompute']['peak_rss_mib']} MiB"
             + (f"; dpo-align sizes the frozen copy (weights and activations) at {best['full-copy']['reference_copy_gib'] * 1024:.0f} MiB"
                if "reference_copy_gib" in best["full-copy"] else "") + ".")
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
