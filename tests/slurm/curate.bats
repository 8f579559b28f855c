#!/usr/bin/env bats
# bats file_tags=slurm
#
# sbatch/curate.sbatch on the single-node test cluster of tests/slurm/: curate-dedup on 2 tasks
# must produce a complete output identical in its kept documents and audit trail to a local
# single-process run on the same corpus, and a job with bad input must end FAILED with the reason
# in its output and no output directory.
#
# The cluster must already be running. Same environment as smoke.bats (tests/slurm/helpers.bash):
#   BELLOWS_SLURM_STATE  the STATE_DIR given to tests/slurm/start-cluster.sh
#   BELLOWS_BIN          directory holding the built curate-dedup and shard-inspect
#   BELLOWS_SLURM_JOB_TIMEOUT  seconds one job may take, queued + running (120)
#
#   tests/slurm/start-cluster.sh /tmp/bellows-slurm
#   BELLOWS_SLURM_STATE=/tmp/bellows-slurm BELLOWS_BIN=$PWD/build/bin bats tests/slurm/curate.bats
#   tests/slurm/stop-cluster.sh /tmp/bellows-slurm

bats_require_minimum_version 1.5.0

setup() {
    load helpers # slurm_setup, slurm_teardown, submit_and_wait, job_field
    slurm_setup curate-dedup
    [[ -x $BELLOWS_BIN/shard-inspect ]] || fail "no executable $BELLOWS_BIN/shard-inspect"
    PY=/usr/bin/python3
    [[ -x $PY ]] || PY=$(command -v python3) || fail "python3 not found"
    # A corpus of 4 JSONL files with planted exact and near copies, PII and German documents.
    "$PY" "$REPO_ROOT/tests/helpers/make_corpus.py" parts --files 4 --docs 40 --exact 3 --near 3 \
        --pii 2 --german 2 --seed 5 --manifest manifest.json || fail "make_corpus.py failed"
}

teardown() {
    slurm_teardown
}

# ids OUTDIR — the ids of OUTDIR/kept.jsonl.zst (--export-jsonl), in order.
ids() {
    zstdcat "$1/kept.jsonl.zst" | "$PY" -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["id"])'
}

# report OUTDIR KEY — a top-level part of OUTDIR/report.json as compact JSON.
report() {
    "$PY" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]], sort_keys=True))' \
        "$1/report.json" "$2"
}

@test "curate.sbatch on 2 tasks: COMPLETED, complete output, the same documents as a local run" {
    submit_and_wait --ntasks=2 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        --output="$BATS_TEST_TMPDIR/curate-%j.out" \
        "$REPO_ROOT/sbatch/curate.sbatch" parts -o out --export-jsonl
    OUTFILE=$BATS_TEST_TMPDIR/curate-$JOBID.out
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"

    # The job output: the script's lines, curate-dedup's log, progress and summary.
    run cat "$OUTFILE"
    assert_line --partial "bellows-curate: job $JOBID on "
    assert_line --partial ", 2 tasks, in $BATS_TEST_TMPDIR, "
    assert_line --regexp '^bellows-curate: running: (srun --mpi=pmix --ntasks=2|mpirun -np 2( --allow-run-as-root)?) '
    assert_line --partial " $BELLOWS_BIN/curate-dedup parts -o out --export-jsonl"
    assert_line --regexp '^[0-9T:-]+Z info: curate-dedup: 4 input files on 2 rank\(s\)'
    assert_line --regexp '^[0-9T:-]+Z progress: curate: .* done$'
    assert_line "curate-dedup: 48 documents in, 40 out (out)"
    run grep -c '^bellows-curate: OK: finished in [0-9]*s; report: out/report.json, audit trail: out/removed.jsonl.zst$' "$OUTFILE"
    assert_output 1

    # A complete output: one shard per rank, verified; report and audit trail; nothing partial.
    run ls -A out
    assert_output "docs-r00000-00000.h5
docs-r00001-00000.h5
kept.jsonl.zst
removed.jsonl.zst
report.json"
    [[ -z $(compgen -G ".out.partial.*") ]] || fail "partial output left: $(compgen -G '.out.partial.*')"
    run "$BELLOWS_BIN/shard-inspect" --verify out/docs-r00000-00000.h5 out/docs-r00001-00000.h5
    assert_success
    assert_equal "$(grep -c 'all chunks verified' <<<"$output")" 2
    assert_equal "$(report out ranks)" 2
    assert_equal "$(report out documents | "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(d["in"], d["out"])')" "48 40"

    # The same result as one process here.
    run --separate-stderr "$BELLOWS_BIN/curate-dedup" parts -o local --export-jsonl --progress off
    assert_success
    assert_equal "$(report local ranks)" 1
    assert_equal "$(ids out | wc -l)" 40
    assert_equal "$(ids out)" "$(ids local)"
    cmp <(zstdcat out/removed.jsonl.zst) <(zstdcat local/removed.jsonl.zst) ||
        fail "removed.jsonl.zst differs between the 2-task job and the local run"
    local part
    for part in documents pii languages exact_dedup fuzzy_dedup; do
        assert_equal "$(report out "$part")" "$(report local "$part")"
    done
}

@test "curate.sbatch with BELLOWS_LAUNCHER=mpirun: COMPLETED, the same documents as a local run" {
    submit_and_wait --ntasks=2 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_LAUNCHER=mpirun" \
        --output="$BATS_TEST_TMPDIR/curate-%j.out" \
        "$REPO_ROOT/sbatch/curate.sbatch" parts --output=out --export-jsonl
    OUTFILE=$BATS_TEST_TMPDIR/curate-$JOBID.out
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    run grep -c '^bellows-curate: running: mpirun -np 2 ' "$OUTFILE"
    assert_output 1
    assert_equal "$(report out ranks)" 2
    "$BELLOWS_BIN/curate-dedup" parts -o local --export-jsonl --progress off --log-level warn 2>/dev/null
    assert_equal "$(ids out)" "$(ids local)"
    cmp <(zstdcat out/removed.jsonl.zst) <(zstdcat local/removed.jsonl.zst) ||
        fail "removed.jsonl.zst differs between the 2-task job and the local run"
    run grep -c '^bellows-curate: OK: finished in [0-9]*s; report: out/report.json' "$OUTFILE"
    assert_output 1
}

@test "curate.sbatch with a bad record: FAILED with ExitCode=1:0, the reason once in the output, no output directory" {
    # The last file: rank 1's of 2 (a failing rank other than 0).
    sed -i '3s/.*/{"id": "broken", "text": 12}/' parts/part-003.jsonl
    submit_and_wait --ntasks=2 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        --output="$BATS_TEST_TMPDIR/curate-%j.out" \
        "$REPO_ROOT/sbatch/curate.sbatch" parts -o out
    OUTFILE=$BATS_TEST_TMPDIR/curate-$JOBID.out
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 1:0
    assert_equal "$(grep -c 'parts/part-003.jsonl:3: text_not_a_string' "$OUTFILE")" 1
    run grep -E '^curate-dedup: rank 1: parts/part-003\.jsonl:3: text_not_a_string' "$OUTFILE"
    assert_success
    run grep -c '^bellows-curate: FAILED: curate-dedup exit status 1 ' "$OUTFILE"
    assert_output 1
    [[ ! -e out ]] || fail "output directory 'out' exists after a failed job"
    [[ -z $(compgen -G ".out.partial.*") ]] || fail "partial output left: $(compgen -G '.out.partial.*')"
}

@test "curate.sbatch without arguments: FAILED with ExitCode=2:0 and the usage line" {
    submit_and_wait --ntasks=1 --time=00:01:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        --output="$BATS_TEST_TMPDIR/curate-%j.out" "$REPO_ROOT/sbatch/curate.sbatch"
    OUTFILE=$BATS_TEST_TMPDIR/curate-$JOBID.out
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 2:0
    run cat "$OUTFILE"
    assert_output "bellows-curate: error: no arguments; usage: sbatch curate.sbatch INPUT... -o OUTDIR [curate-dedup options]"
}
