#!/usr/bin/env bats
# bats file_tags=slurm
#
# sbatch/pipeline.sh on the single-node test cluster of tests/slurm/: one config (the tiny model, a
# few steps, a small generated corpus with planted copies, SFT and preference JSONL) takes the
# whole life cycle through SLURM — curation as a job array of 2 tasks and its merge, the three
# tokenize jobs, pretrain, lora, dpo, the merged HF and GGUF exports — as dependent jobs.
# The tests build on each other (one work directory for the file), in this order:
#   --dry-run prints the sbatch lines with their dependencies and submits nothing;
#   bad configs (unknown or missing key, missing input, bad value) exit 2 naming the key;
#   the pipeline: held at submission, every job's Dependency is exactly the stages it reads;
#     released, every job COMPLETED, each started after the jobs it waited for ended, and every
#     output is there;
#   run again: every stage skipped, nothing submitted;
#   the dpo run deleted: dpo and the two exports submitted again, nothing else;
#   a stage that fails: the jobs after it can never run; run again with the fix, those are
#     cancelled and submitted again, and complete;
#   the curated output deleted: refused (exit 2) naming the pretrain run it would leave stale;
#   the array curation keeps the same documents (ids, texts, languages, sources) as one
#   curate.sbatch job over the same files.
#
# The cluster must already be running. Same environment as the other SLURM suites
# (tests/slurm/helpers.bash):
#   BELLOWS_SLURM_STATE  the STATE_DIR given to tests/slurm/start-cluster.sh
#   BELLOWS_BIN          directory holding the built tools
#   BELLOWS_SLURM_JOB_TIMEOUT  seconds one job may take, queued + running (120; the whole
#                        pipeline may take 3 times that)
#
#   tests/slurm/start-cluster.sh /tmp/bellows-slurm
#   BELLOWS_SLURM_STATE=/tmp/bellows-slurm BELLOWS_BIN=$PWD/build/bin bats tests/slurm/pipeline.bats
#   tests/slurm/stop-cluster.sh /tmp/bellows-slurm

bats_require_minimum_version 1.5.0

setup_file() {
    # The inputs, once: a corpus of 4 JSONL files (40 documents, 3 exact and 3 near copies planted
    # after their originals, some across files, PII, German), SFT pairs (whatever the prompt, one
    # fixed answer) and preference pairs (that answer chosen, a random one rejected).
    cd "$BATS_FILE_TMPDIR" || return 1
    local repo
    repo=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    python3 "$repo/tests/helpers/make_corpus.py" corpus --files 4 --docs 40 --exact 3 --near 3 \
        --pii 2 --german 2 --seed 5 >setup.log 2>&1 || return 1
    python3 - <<'PY' || return 1
import json, random
words = ("the cluster trains a model on shards while the scheduler waits and the loss goes down "
         "tokens flow from curated documents into packed samples every step").split()
random.seed(7)
with open("sft.jsonl", "w") as f:
    for i in range(200):
        p = " ".join(random.choice(words) for _ in range(random.randint(3, 8)))
        f.write(json.dumps({"prompt": p, "response": " waits while the scheduler trains shards"}) + "\n")
random.seed(11)
with open("pairs.jsonl", "w") as f:
    for i in range(200):
        p = " ".join(random.choice(words) for _ in range(random.randint(3, 8)))
        r = " " + " ".join(random.choice(words) for _ in range(random.randint(3, 7)))
        f.write(json.dumps({"prompt": p, "chosen": " waits while the scheduler trains shards", "rejected": r}) + "\n")
PY
}

setup() {
    load helpers # slurm_setup, slurm_teardown, job_field
    slurm_setup pretrain
    local t
    for t in curate-dedup tokenize-pack lora-tune dpo-align ckpt-convert; do
        [[ -x $BELLOWS_BIN/$t ]] || fail "no executable $BELLOWS_BIN/$t"
    done
    [[ -f $BATS_FILE_TMPDIR/sft.jsonl && -d $BATS_FILE_TMPDIR/corpus ]] ||
        fail "setup_file made no inputs: $(cat "$BATS_FILE_TMPDIR/setup.log" 2>&1)"
    PY=/usr/bin/python3
    [[ -x $PY ]] || PY=$(command -v python3) || fail "python3 not found"
    PIPELINE=$REPO_ROOT/sbatch/pipeline.sh
    D=$BATS_FILE_TMPDIR
    W=$D/work
    CONF=$D/pipeline.conf
    write_config "$CONF"
    JOBS=()
}

teardown() {
    # Never leave this test's jobs behind.
    local id
    for id in "${JOBS[@]}"; do
        if timeout 10 squeue -h -j "$id" -o %A 2>/dev/null | grep -q .; then
            timeout 10 scancel "$id" || true
        fi
    done
    if [[ ${BATS_TEST_COMPLETED:-} != 1 && -d $W/logs ]]; then
        {
            echo "===== job logs in $W/logs ====="
            tail -n 15 "$W"/logs/*.out 2>/dev/null || true
            echo "--- squeue:"
            timeout 10 squeue 2>&1 || true
        } >&2
    fi
}

# write_config FILE [KEY = VALUE lines...] — the pipeline's config (the tiny model, a few steps of
# each stage, one cpu per job), with the extra lines appended.
write_config() {
    local file=$1
    shift
    cat >"$file" <<CONF
# The test pipeline: paths relative to this file.
workdir = work
corpus = corpus/          # 4 JSONL files
sft_data = sft.jsonl
pref_data = pairs.jsonl
tokenizer_vocab = 300     # trained on the curated corpus
model = tiny
seq_len = 64
pretrain_steps = 30
lora_steps = 10
dpo_steps = 10
curate_array = 2
name = pl
bin = $BELLOWS_BIN
cpus_per_task = 1
time = 00:10:00
partition = bellows
curate_args = --export-jsonl
tokenize_args = --valid-fraction 0.1
pretrain_args = --micro-batch 8 --lr 3e-3 --log-every 10
lora_args = --micro-batch 8 --rank 4 --log-every 5
dpo_args = --micro-batch 4 --log-every 5
export_gguf_args = --dtype q8_0
CONF
    if (($# > 0)); then printf '%s\n' "$@" >>"$file"; fi
}

# pipeline ARGS... — run pipeline.sh (bats `run`, stderr apart); the job ids it submitted are
# added to JOBS (cancelled by teardown if still there).
pipeline() {
    run --separate-stderr "$PIPELINE" "$@"
    local id
    for id in $(sed -n 's/^[a-z_]* *submitted: job \([0-9]*\).*/\1/p' <<<"$output"); do
        JOBS+=("$id")
    done
}

# stage_job STAGE — the job id pipeline.sh's output gives STAGE.
stage_job() {
    local id
    id=$(sed -n "s/^$1 *submitted: job \\([0-9]*\\).*/\\1/p" <<<"$output")
    [[ -n $id ]] || fail "no 'submitted' line for $1 in: $output"
    echo "$id"
}

# wait_all ID... — until every job (every task of an array) is in a final state, at most 3 x
# JOB_TIMEOUT s; then every one must be COMPLETED with ExitCode=0:0. Sets INFO[ID] (scontrol -o
# lines).
declare -A INFO
wait_all() {
    local deadline=$((SECONDS + 3 * JOB_TIMEOUT)) id pending
    while :; do
        pending=0
        for id in "$@"; do
            INFO[$id]=$(timeout 10 scontrol show job -o "$id" 2>&1 || true)
            if grep -qE 'JobState=(PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED|REQUEUED)' <<<"${INFO[$id]}"; then
                pending=1
            fi
        done
        ((pending)) || break
        ((SECONDS < deadline)) || fail "jobs not finished after $((3 * JOB_TIMEOUT))s: $(timeout 10 squeue 2>&1)"
        sleep 0.5
    done
    for id in "$@"; do
        while IFS= read -r line; do
            [[ $line == *" JobState=COMPLETED "* && $line == *" ExitCode=0:0 "* ]] ||
                fail "job $id did not complete: $line"
        done <<<"${INFO[$id]}"
    done
}

# field ID NAME — NAME=... of job ID's first scontrol line (INFO or asked now).
field() {
    local info=${INFO[$1]:-$(timeout 10 scontrol show job -o "$1" 2>&1)}
    sed -n "1s/.* $2=\\([^ ]*\\).*/\\1/p" <<<" $info"
}

# epoch TIME — scontrol's 2024-01-02T03:04:05 as seconds.
epoch() { date -d "$1" +%s; }

# kept OUTDIR — OUTDIR/kept.jsonl.zst as sorted JSON lines (id, source, language, score, text).
kept() {
    zstdcat "$1/kept.jsonl.zst" | "$PY" -c '
import json, sys
for line in sys.stdin:
    print(json.dumps(json.loads(line), sort_keys=True))'
}

@test "pipeline.sh --dry-run: every stage's sbatch line with its dependencies, as a script; nothing submitted" {
    local before
    before=$(squeue -h | wc -l)
    pipeline "$CONF" --dry-run
    assert_success
    assert_equal "$stderr" ""
    assert_equal "$(squeue -h | wc -l)" "$before"
    [[ ! -e $W ]] || fail "--dry-run made $W"

    assert_line --index 0 "# bellows-pipeline --dry-run $CONF: the sbatch lines it would run; nothing is submitted"
    # One line per stage, in order, each `STAGE=$(sbatch --parsable ... TEMPLATE ARGS)`.
    run grep -oE '^[a-z_]+=\$\(sbatch --parsable ' <<<"$output"
    assert_output "curate=\$(sbatch --parsable 
curate_merge=\$(sbatch --parsable 
tokenize=\$(sbatch --parsable 
tokenize_sft=\$(sbatch --parsable 
tokenize_pref=\$(sbatch --parsable 
pretrain=\$(sbatch --parsable 
lora=\$(sbatch --parsable 
dpo=\$(sbatch --parsable 
export_hf=\$(sbatch --parsable 
export_gguf=\$(sbatch --parsable "
    pipeline "$CONF" --dry-run
    local s="$REPO_ROOT/sbatch"
    assert_line --regexp "^curate=.* --job-name=pl-curate --comment=bellows-pipeline:$W:curate --chdir=$D --output=$W/logs/curate-%A_%a.out --nodes=1 --ntasks-per-node=1 --ntasks=1 --partition=bellows --export=ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_CURATE_PARTS=2 --array=0-1 $s/curate-array.sbatch $D/corpus/ -o $W/curate-parts --export-jsonl\)\$"
    assert_line --regexp "^curate_merge=.* --dependency=afterok:\\\$curate $s/curate-array.sbatch --merge $W/curate-parts -o $W/curated --export-jsonl\)\$"
    assert_line --regexp "^tokenize=.* --dependency=afterok:\\\$curate_merge $s/tokenize.sbatch --train-vocab-size 300 --mode pretrain --seq-len 64 $W/curated -o $W/tokens --valid-fraction 0.1\)\$"
    assert_line --regexp "^tokenize_sft=.* --dependency=afterok:\\\$tokenize $s/tokenize.sbatch --tokenizer $W/tokens/tokenizer.json --mode sft --seq-len 64 $D/sft.jsonl -o $W/sft-tokens\)\$"
    assert_line --regexp "^tokenize_pref=.* --dependency=afterok:\\\$tokenize $s/tokenize.sbatch --tokenizer $W/tokens/tokenizer.json --mode preference --seq-len 64 $D/pairs.jsonl -o $W/pref-tokens\)\$"
    assert_line --regexp "^pretrain=.* --cpus-per-task=1 .* --dependency=afterok:\\\$tokenize $s/pretrain.sbatch --data $W/tokens --model tiny --seq-len 64 --steps 30 -o $W/pretrain --micro-batch 8 --lr 3e-3 --log-every 10\)\$"
    assert_line --regexp "^lora=.* --dependency=afterok:\\\$pretrain:\\\$tokenize_sft $s/lora.sbatch --base $W/pretrain --data $W/sft-tokens --seq-len 64 --steps 10 -o $W/lora "
    assert_line --regexp "^dpo=.* --dependency=afterok:\\\$pretrain:\\\$lora:\\\$tokenize_pref $s/dpo.sbatch --policy $W/pretrain --lora $W/lora --data $W/pref-tokens --seq-len 64 --steps 10 -o $W/dpo "
    assert_line --regexp "^export_hf=.* --dependency=afterok:\\\$pretrain:\\\$dpo $s/convert.sbatch --from $W/pretrain --lora $W/dpo --merge --to hf -o $W/export/hf\)\$"
    assert_line --regexp "^export_gguf=.* --dependency=afterok:\\\$pretrain:\\\$dpo $s/convert.sbatch --from $W/pretrain --lora $W/dpo --merge --to gguf -o $W/export/model.gguf --dtype q8_0\)\$"
    # The training stages get the config's resources; the others one task and their template's cpus.
    refute_line --regexp '^(curate|tokenize[a-z_]*|export_[a-z]*)=.*--cpus-per-task'

    # Full SFT in lora: dpo trains a new adapter on lora's model, which the exports merge it into.
    write_config "$D/full.conf"
    sed -i 's/^lora_args = /lora_args = --full /' "$D/full.conf"
    pipeline "$D/full.conf" --dry-run
    assert_success
    assert_line --regexp "^dpo=.* --dependency=afterok:\\\$lora:\\\$tokenize_pref $s/dpo.sbatch --policy $W/lora --new-lora --data $W/pref-tokens "
    assert_line --regexp "^export_hf=.* --dependency=afterok:\\\$lora:\\\$dpo $s/convert.sbatch --from $W/lora --lora $W/dpo --merge --to hf "

    # A tokenizer file instead: the SFT and preference shards wait for nothing; one curate job.
    echo '{}' >"$D/tok.json"
    write_config "$D/file-tok.conf" "tokenizer = tok.json"
    sed -i -e '/^tokenizer_vocab/d' -e '/^curate_array/d' "$D/file-tok.conf"
    pipeline "$D/file-tok.conf" --dry-run
    assert_success
    assert_line --regexp "^curate=.* --output=$W/logs/curate-%j.out .* $s/curate.sbatch $D/corpus/ -o $W/curated --export-jsonl\)\$"
    refute_line --regexp '^curate_merge='
    assert_line --regexp "^tokenize_sft=.* --export=ALL,BELLOWS_BIN=[^ ]* $s/tokenize.sbatch --tokenizer $D/tok.json --mode sft "
    assert_line --regexp "^tokenize_pref=.* --export=ALL,BELLOWS_BIN=[^ ]* $s/tokenize.sbatch --tokenizer $D/tok.json --mode preference "
    assert_line --regexp "^tokenize=.* --dependency=afterok:\\\$curate $s/tokenize.sbatch --tokenizer $D/tok.json --mode pretrain "
}

@test "pipeline.sh with a bad config or command line: exit 2 and one line naming the problem, nothing submitted" {
    local before n
    before=$(squeue -h | wc -l)
    n=$(($(wc -l <"$CONF") + 1)) # the line each case appends
    # check_error EXPECTED [KEY = VALUE lines...] — the config plus those lines fails with EXPECTED.
    check_error() {
        local expected=$1
        shift
        write_config "$D/bad.conf" "$@"
        run --separate-stderr "$PIPELINE" "$D/bad.conf"
        assert_failure 2
        assert_equal "$output" ""
        assert_equal "$stderr" "bellows-pipeline: error: $expected"
    }
    check_error "$D/bad.conf:$n: unknown key 'pretrian_steps' (see pipeline.sh --help for the keys)" "pretrian_steps = 5"
    check_error "$D/bad.conf:$n: key 'model' given twice (first on line $(grep -n '^model' "$CONF" | cut -d: -f1))" \
        "model = small"
    check_error "$D/bad.conf:$n: not a 'key = value' line: lora_steps 10" "lora_steps 10"
    check_error "$D/bad.conf:$n: lora_nodes = 'two' is not a whole number >= 1" "lora_nodes = two"
    check_error "$D/bad.conf:$n: tokenizer and tokenizer_vocab both given: a tokenizer file, or the vocabulary size of one to train" \
        "tokenizer = pipeline.conf"
    # An input that is not there; a required key missing; more array tasks than input files (the
    # template's own listing says so).
    write_config "$D/bad.conf"
    sed -i 's/^pref_data = .*/pref_data = nothere.jsonl/' "$D/bad.conf"
    run --separate-stderr "$PIPELINE" "$D/bad.conf"
    assert_failure 2
    assert_equal "$stderr" "bellows-pipeline: error: $D/bad.conf:$(grep -n '^pref_data' "$CONF" | cut -d: -f1): pref_data: '$D/nothere.jsonl' does not exist"
    write_config "$D/bad.conf"
    sed -i '/^sft_data/d' "$D/bad.conf"
    run --separate-stderr "$PIPELINE" "$D/bad.conf"
    assert_failure 2
    assert_equal "$stderr" "bellows-pipeline: error: $D/bad.conf: missing key 'sft_data' (SFT JSONL for lora)"
    write_config "$D/bad.conf"
    sed -i 's/^curate_array = 2/curate_array = 5/' "$D/bad.conf"
    run --separate-stderr "$PIPELINE" "$D/bad.conf" --dry-run
    assert_failure 2
    assert_equal "$stderr" "bellows-pipeline: error: $D/bad.conf:$(grep -n '^curate_array' "$D/bad.conf" | cut -d: -f1): curate_array = 5: 5 array tasks but only 4 input files: use at most 4 tasks (--array=0-3)"

    run --separate-stderr "$PIPELINE"
    assert_failure 2
    assert_equal "$stderr" "bellows-pipeline: error: no CONFIG (usage: pipeline.sh CONFIG [--dry-run])"
    run --separate-stderr "$PIPELINE" "$CONF" --dryrun
    assert_failure 2
    assert_equal "$stderr" "bellows-pipeline: error: unknown option '--dryrun' (usage: pipeline.sh CONFIG [--dry-run])"
    assert_equal "$(squeue -h | wc -l)" "$before"
    [[ ! -e $W ]] || fail "a refused config made $W"
}

@test "pipeline.sh: 11 jobs (curation as an array of 2 and a merge), each waiting for exactly the stages it reads; all COMPLETED in order; every output" {
    # Held at submission (an sbatch option for every job), so that SLURM shows each job's
    # dependencies before any has run.
    write_config "$D/held.conf" "sbatch_args = --hold"
    pipeline "$D/held.conf"
    assert_success
    local -A id
    local s
    for s in curate curate_merge tokenize tokenize_sft tokenize_pref pretrain lora dpo export_hf export_gguf; do
        id[$s]=$(stage_job "$s")
    done
    assert_line "curate         submitted: job ${id[curate]}, array 0-1"
    assert_line "curate_merge   submitted: job ${id[curate_merge]}, after curate (${id[curate]})"
    assert_line "dpo            submitted: job ${id[dpo]}, after pretrain (${id[pretrain]}), lora (${id[lora]}), tokenize_pref (${id[tokenize_pref]})"
    local ids
    ids=$(IFS=, && echo "${JOBS[*]}")
    assert_line "follow: squeue -j $ids -o '%.10i %.24j %.10T %.10M %.30E %R'"
    assert_equal "${#lines[@]}" 12

    # What SLURM recorded: the dependencies (an array is waited for as a whole: ID_*), the job
    # names and the comments that let a later run find them.
    dependency() { field "${id[$1]}" Dependency; }
    assert_equal "$(dependency curate)" "(null)"
    assert_equal "$(dependency curate_merge)" "afterok:${id[curate]}_*(unfulfilled)"
    assert_equal "$(dependency tokenize)" "afterok:${id[curate_merge]}(unfulfilled)"
    assert_equal "$(dependency tokenize_sft)" "afterok:${id[tokenize]}(unfulfilled)"
    assert_equal "$(dependency tokenize_pref)" "afterok:${id[tokenize]}(unfulfilled)"
    assert_equal "$(dependency pretrain)" "afterok:${id[tokenize]}(unfulfilled)"
    assert_equal "$(dependency lora)" "afterok:${id[pretrain]}(unfulfilled),afterok:${id[tokenize_sft]}(unfulfilled)"
    assert_equal "$(dependency dpo)" "afterok:${id[pretrain]}(unfulfilled),afterok:${id[lora]}(unfulfilled),afterok:${id[tokenize_pref]}(unfulfilled)"
    assert_equal "$(dependency export_hf)" "afterok:${id[pretrain]}(unfulfilled),afterok:${id[dpo]}(unfulfilled)"
    assert_equal "$(dependency export_gguf)" "afterok:${id[pretrain]}(unfulfilled),afterok:${id[dpo]}(unfulfilled)"
    assert_equal "$(field "${id[lora]}" JobName)" pl-lora
    assert_equal "$(field "${id[lora]}" Comment)" "bellows-pipeline:$W:lora"
    assert_equal "$(field "${id[lora]}" Partition)" bellows

    # Run again while they wait: every stage is already queued, nothing is submitted twice.
    pipeline "$CONF"
    assert_success
    assert_line "curate         already queued: job ${id[curate]} (from an earlier run; not submitted again)"
    assert_line "export_gguf    already queued: job ${id[export_gguf]} (from an earlier run; not submitted again)"
    refute_line --partial "submitted: job"
    assert_equal "$(grep -c 'already queued' <<<"$output")" 10

    timeout 10 scontrol release "$ids" || fail "scontrol release $ids failed"
    wait_all "${JOBS[@]}"
    assert_equal "$(grep -c ' JobState=COMPLETED ' <<<"${INFO[${id[curate]}]}")" 2 # both array tasks

    # Each job started after every job it waited for had ended (scontrol's times, 1 s resolution).
    started_after() {
        local d
        for d in "${@:2}"; do
            while IFS= read -r end; do
                (($(epoch "$(field "${id[$1]}" StartTime)") >= $(epoch "$end"))) ||
                    fail "$1 started $(field "${id[$1]}" StartTime), before $d ended $end"
            done < <(sed -n 's/.* EndTime=\([^ ]*\).*/\1/p' <<<"${INFO[${id[$d]}]}")
        done
    }
    started_after curate_merge curate
    started_after tokenize curate_merge
    started_after tokenize_sft tokenize
    started_after tokenize_pref tokenize
    started_after pretrain tokenize
    started_after lora pretrain tokenize_sft
    started_after dpo pretrain lora tokenize_pref
    started_after export_hf pretrain dpo
    started_after export_gguf pretrain dpo

    # The outputs: the parts and the merged curation (its report counts the copies removed across
    # the parts), the shards with the trained tokenizer, the three runs at their final steps, the
    # exports; the job logs in work/logs.
    [[ -f $W/curate-parts/part-00000/report.json && -f $W/curate-parts/part-00001/report.json ]] || fail "parts missing"
    run "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); s = r["stages"]; print(s["input"]["docs_in"], s["exact"]["docs_in"] - s["exact"]["docs_out"], s["fuzzy"]["docs_in"] - s["fuzzy"]["docs_out"])' \
        "$W/curated/report.json"
    assert_output "45 2 3"
    [[ -f $W/tokens/tokenizer.json && -f $W/tokens/report.json && -n $(compgen -G "$W/tokens/valid-*.h5") ]] || fail "tokens incomplete"
    [[ -f $W/sft-tokens/report.json && -f $W/pref-tokens/report.json ]] || fail "SFT or preference shards missing"
    assert_equal "$(cat "$W/pretrain/checkpoints/latest")" step-00000030
    assert_equal "$(cat "$W/lora/checkpoints/latest")" step-00000010
    assert_equal "$(cat "$W/dpo/checkpoints/latest")" step-00000010
    [[ -f $W/pretrain/checkpoints/step-00000030/model.h5 ]] || fail "no pretrain model.h5"
    [[ -f $W/lora/checkpoints/step-00000010/adapter.h5 && -f $W/dpo/checkpoints/step-00000010/adapter.h5 ]] ||
        fail "no lora or dpo adapter"
    [[ -f $W/export/hf/config.json && -f $W/export/hf/model.safetensors && -f $W/export/hf/tokenizer.json ]] ||
        fail "HF export incomplete: $(ls "$W/export/hf")"
    assert_equal "$(head -c 4 "$W/export/model.gguf")" GGUF
    run grep -h 'OK: finished' "$W"/logs/*.out
    assert_equal "${#lines[@]}" 11
    # dpo continued lora's adapter (its starting state the reference); the exports merged dpo's.
    run cat "$W/logs/dpo-${id[dpo]}.out"
    assert_line --partial " info: initialised from $W/lora/checkpoints/step-00000010/adapter.h5 "
    assert_line --partial " info: dpo: loss sigmoid, beta 0.100000; reference: the base with the starting adapter frozen"
    run cat "$W/logs/export_gguf-${id[export_gguf]}.out"
    assert_line --partial " info: gguf export to $W/export/model.gguf with $W/dpo/checkpoints/step-00000010/adapter.h5 merged "
}

@test "pipeline.sh run again on the finished pipeline: every stage skipped, nothing submitted" {
    [[ -f $W/export/model.gguf ]] || skip "needs the finished pipeline of the test before"
    local before
    before=$(squeue -h | wc -l)
    pipeline "$CONF"
    assert_success
    assert_equal "$(grep -c '^[a-z_]* *skipped: complete (' <<<"$output")" 10
    assert_line "curate         skipped: complete (merged: $W/curated/report.json)"
    assert_line "pretrain       skipped: complete ($W/pretrain/checkpoints/latest = step-00000030)"
    assert_line "export_gguf    skipped: complete ($W/export/model.gguf)"
    assert_line "nothing to do: every stage is complete (outputs under $W)"
    refute_line --partial submitted
    assert_equal "$(squeue -h | wc -l)" "$before"
}

@test "pipeline.sh after the dpo run is deleted: dpo and the two exports (--overwrite) submitted again, nothing else; COMPLETED" {
    [[ -f $W/export/model.gguf ]] || skip "needs the finished pipeline of the tests before"
    rm -rf "$W/dpo"
    local old_gguf
    old_gguf=$(stat -c %i "$W/export/model.gguf")
    pipeline "$CONF"
    assert_success
    local dpo hf gguf
    dpo=$(stage_job dpo)
    hf=$(stage_job export_hf)
    gguf=$(stage_job export_gguf)
    assert_line "dpo            submitted: job $dpo"
    assert_line "export_hf      submitted: job $hf, after dpo ($dpo), --overwrite"
    assert_line "export_gguf    submitted: job $gguf, after dpo ($dpo), --overwrite"
    assert_equal "$(grep -c 'submitted: job' <<<"$output")" 3
    assert_equal "$(grep -c 'skipped: complete' <<<"$output")" 7
    assert_equal "$(field "$hf" Dependency)" "afterok:$dpo(unfulfilled)"
    wait_all "$dpo" "$hf" "$gguf"
    assert_equal "$(cat "$W/dpo/checkpoints/latest")" step-00000010
    [[ $(stat -c %i "$W/export/model.gguf") != "$old_gguf" ]] || fail "the GGUF export was not written again"
}

@test "pipeline.sh after a stage failed: the jobs that can never run are cancelled and submitted again with the fixed stage" {
    [[ -f $W/export/model.gguf ]] || skip "needs the finished pipeline of the tests before"
    rm -rf "$W/dpo"
    # dpo with a bad option: it fails (exit 2), the exports wait for ever.
    write_config "$D/broken.conf"
    sed -i 's/^dpo_args = .*/dpo_args = --loss nope/' "$D/broken.conf"
    pipeline "$D/broken.conf"
    assert_success
    local dpo hf gguf deadline=$((SECONDS + JOB_TIMEOUT))
    dpo=$(stage_job dpo)
    hf=$(stage_job export_hf)
    gguf=$(stage_job export_gguf)
    until [[ $(squeue -h -j "$hf,$gguf" -o %r 2>/dev/null | sort -u) == DependencyNeverSatisfied ]]; do
        ((SECONDS < deadline)) || fail "the exports are not DependencyNeverSatisfied: $(squeue -j "$hf,$gguf" 2>&1)"
        sleep 0.5
    done
    assert_equal "$(field "$dpo" JobState) $(field "$dpo" ExitCode)" "FAILED 2:0"

    pipeline "$CONF" --dry-run
    assert_success
    assert_line "scancel $hf  # export_hf: can never run (DependencyNeverSatisfied)"
    pipeline "$CONF"
    assert_success
    assert_line "export_hf      cancelled job $hf (could never run: DependencyNeverSatisfied)"
    assert_line "export_gguf    cancelled job $gguf (could never run: DependencyNeverSatisfied)"
    local dpo2 hf2 gguf2
    dpo2=$(stage_job dpo)
    hf2=$(stage_job export_hf)
    gguf2=$(stage_job export_gguf)
    assert_line "export_gguf    submitted: job $gguf2, after dpo ($dpo2), --overwrite"
    assert_equal "$(field "$hf" JobState)" CANCELLED
    wait_all "$dpo2" "$hf2" "$gguf2"
}

@test "pipeline.sh after the curated output is deleted: refused (exit 2), the pretrain run would be stale; nothing submitted" {
    [[ -f $W/curated/report.json ]] || skip "needs the finished pipeline of the tests before"
    mv "$W/curated" "$W/curated.away"
    local before
    before=$(squeue -h | wc -l)
    pipeline "$CONF"
    mv "$W/curated.away" "$W/curated"
    assert_failure 2
    assert_equal "$stderr" "bellows-pipeline: error: stage pretrain must run again because tokenize runs again, but $W/pretrain holds a run trained on the old tokenize output: move it away or delete it (its --resume auto would continue the old run)"
    assert_equal "$(squeue -h | wc -l)" "$before"
}

@test "pipeline.sh installed (PREFIX/bin/bellows-pipeline) finds PREFIX's templates and tools; a partly done array resubmits only its missing tasks" {
    [[ -f $W/curate-parts/part-00000/report.json ]] || skip "needs the finished pipeline of the tests before"
    # PREFIX as `make install` lays it out (the tools linked from BELLOWS_BIN).
    local prefix=$BATS_TEST_TMPDIR/prefix t
    mkdir -p "$prefix/bin" "$prefix/share/bellows/sbatch"
    install -m 644 "$REPO_ROOT"/sbatch/*.sbatch "$prefix/share/bellows/sbatch/"
    install -m 755 "$REPO_ROOT/sbatch/pipeline.sh" "$prefix/share/bellows/sbatch/"
    ln -s ../share/bellows/sbatch/pipeline.sh "$prefix/bin/bellows-pipeline"
    for t in "$BELLOWS_BIN"/*; do ln -s "$t" "$prefix/bin/"; done
    # A second work directory holding the first part of the same split, and a config without `bin`.
    mkdir -p "$D/work2/curate-parts"
    cp -r "$W/curate-parts/part-00000" "$W/curate-parts/split.txt" "$D/work2/curate-parts/"
    write_config "$D/installed.conf"
    sed -i -e 's/^workdir = .*/workdir = work2/' -e '/^bin = /d' "$D/installed.conf"

    run --separate-stderr env -u BELLOWS_BIN PATH=/usr/bin:/bin "$prefix/bin/bellows-pipeline" "$D/installed.conf" --dry-run
    assert_success
    local s=$prefix/share/bellows/sbatch
    assert_line --regexp "^curate=.* --export=ALL,BELLOWS_CURATE_PARTS=2 --array=1 $s/curate-array.sbatch $D/corpus/ -o $D/work2/curate-parts "
    assert_line --regexp "^curate_merge=.* --dependency=afterok:\\\$curate $s/curate-array.sbatch --merge "
    assert_line --regexp "^export_gguf=.* --export=ALL --dependency=afterok:\\\$pretrain:\\\$dpo $s/convert.sbatch "
    refute_line --partial BELLOWS_BIN=
    [[ ! -e $D/work2/logs ]] || fail "--dry-run made $D/work2/logs"

    # The same from the tree, where no tools are beside it and none are on PATH: refused.
    run --separate-stderr env -u BELLOWS_BIN PATH=/usr/bin:/bin "$PIPELINE" "$D/installed.conf" --dry-run
    assert_failure 2
    assert_equal "$stderr" "bellows-pipeline: error: the bellows tools are not found: set 'bin = DIR' in $D/installed.conf (or BELLOWS_BIN, or PATH)"

    # Parts of another split (another K, corpus or curate_args) are not mixed with this one's.
    sed -i 's/^curate_args = .*/curate_args = --export-jsonl --langs en/' "$D/installed.conf"
    run --separate-stderr env -u BELLOWS_BIN PATH=/usr/bin:/bin "$prefix/bin/bellows-pipeline" "$D/installed.conf" --dry-run
    assert_failure 2
    assert_equal "$stderr" "bellows-pipeline: error: $D/work2/curate-parts holds the parts of another split (parts=2 corpus=$D/corpus/ args=--export-jsonl); delete it to split again as: parts=2 corpus=$D/corpus/ args=--export-jsonl --langs en"
}

@test "curate-array.sbatch: the array of 2 and its merge keep the very documents one curate.sbatch job keeps" {
    [[ -f $W/curated/kept.jsonl.zst ]] || skip "needs the finished pipeline of the tests before"
    submit_and_wait --ntasks=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        --output="$BATS_TEST_TMPDIR/curate-%j.out" \
        "$REPO_ROOT/sbatch/curate.sbatch" "$D/corpus/" -o single --export-jsonl
    [[ $JOB_STATE == COMPLETED ]] || fail "the single curate job ended $JOB_STATE: $(cat "$BATS_TEST_TMPDIR/curate-$JOBID.out")"
    # Ids, texts, languages and their scores, sources: line for line, in the same order.
    assert_equal "$(kept "$W/curated" | wc -l)" 40
    assert_equal "$(kept "$W/curated")" "$(kept single)"
    # The work was shared: the parts removed the exact copies within them, the merge those across
    # them and every near copy (fuzzy dedup runs once, over all the documents).
    run "$PY" - "$W/curate-parts" "$W/curated" single <<'PY'
import json, sys
def removed(d, stage):
    s = json.load(open(d + "/report.json"))["stages"].get(stage)
    return s["docs_in"] - s["docs_out"] if s else 0
parts = [sys.argv[1] + "/part-0000%d" % i for i in range(2)]
for stage in "exact", "fuzzy":
    print("%s: parts %d + merge %d, one job %d" % (stage, sum(removed(p, stage) for p in parts),
                                                 removed(sys.argv[2], stage), removed(sys.argv[3], stage)))
PY
    assert_success
    assert_output "exact: parts 1 + merge 2, one job 3
fuzzy: parts 0 + merge 3, one job 3"
}
