# What the training-tool suites (pretrain.bats, lora.bats) share: running the tool locally for the
# reference losses, submitting its sbatch template, waiting for and signalling the job, reading its
# losses and verdict. The loading file sets TRAIN_TOOL (pretrain | lora-tune: the executable and its
# log prefix, bellows-TOOL:) and OUT_PREFIX (the job output files' prefix in the test's directory).

# losses METRICS — "step loss" per line, the last record of each step (a resumed run logs again
# the steps after its checkpoint), losses as Python's repr (all digits).
losses() {
    "$PY" - "$1" <<'PY'
import json, sys
last = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "step":
        last[r["step"]] = r["loss"]
for s in sorted(last):
    print(s, repr(last[s]))
PY
}

# assert_losses_close GOT EXPECTED N — GOT and EXPECTED ("step loss" lines, as `losses` prints
# them) both have the steps 1..N, and every step's losses agree within 1e-5 relative. For runs on
# several ranks, whose sums are rounded differently from one process's (string equality would not
# do); on failure the worst steps are printed.
assert_losses_close() {
    run "$PY" -c '
import sys
def read(text):
    d = {}
    for line in text.splitlines():
        step, loss = line.split()
        d[int(step)] = float(loss)
    return d
got, exp, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
want = set(range(1, n + 1))
if set(got) != want or set(exp) != want:
    sys.exit("steps differ: got %d steps (missing %s), expected %d steps (missing %s), want 1..%d"
             % (len(got), sorted(want - set(got))[:10], len(exp), sorted(want - set(exp))[:10], n))
rel = sorted((((abs(got[s] - exp[s]) / abs(exp[s])) if got[s] == got[s] else float("inf"), s) for s in want), reverse=True)
print("%d steps, max relative difference %.3g at step %d" % (n, rel[0][0], rel[0][1]))
bad = [(r, s) for r, s in rel if not r <= 1e-5]
if bad:
    for r, s in bad[:10]:
        print("step %d: got %r expected %r (relative %.3g)" % (s, got[s], exp[s], r))
    sys.exit("%d of %d steps differ by more than 1e-5 relative" % (len(bad), n))
' "$1" "$2" "$3"
    assert_success
    echo "# losses: $output" >&3
}

# local_run RUNDIR ARGS... — the training tool here, one thread, into RUNDIR.
local_run() {
    local dir=$1
    shift
    run --separate-stderr "$BELLOWS_BIN/$TRAIN_TOOL" "$@" -o "$dir" --threads 1 --progress off
    assert_success
}

# reference_losses — the losses of an uninterrupted local run of LONG (made once per file).
reference_losses() {
    local ref=$BATS_FILE_TMPDIR/reference
    if [[ ! -s $ref.losses ]]; then
        local_run "$ref" "${LONG[@]}"
        losses "$ref/metrics.jsonl" >"$ref.losses"
    fi
    cat "$ref.losses"
}

# submit SBATCH_ARGS... — submit without waiting; sets JOBID and OUTFILE (--output is added).
submit() {
    local out
    out=$(timeout 30 sbatch --parsable --output="$BATS_TEST_TMPDIR/$OUT_PREFIX-%j.out" "$@" 2>&1) ||
        fail "sbatch $* failed: $out"
    JOBID=${out%%;*}
    [[ $JOBID =~ ^[0-9]+$ ]] || fail "sbatch gave no job id: $out"
    OUTFILE=$BATS_TEST_TMPDIR/$OUT_PREFIX-$JOBID.out
}

# submit_and_wait_out SBATCH_ARGS... — submit_and_wait (tests/slurm/helpers.bash) with the output in
# this test's directory; sets OUTFILE too.
submit_and_wait_out() {
    submit_and_wait --output="$BATS_TEST_TMPDIR/$OUT_PREFIX-%j.out" "$@"
    OUTFILE=$BATS_TEST_TMPDIR/$OUT_PREFIX-$JOBID.out
}

# wait_job CONDITION — poll scontrol until CONDITION (a bash expression over JOB_STATE and
# JOB_INFO) holds, at most JOB_TIMEOUT s; fails when the job ends first.
wait_job() {
    local deadline=$((SECONDS + JOB_TIMEOUT))
    while :; do
        JOB_INFO=$(timeout 10 scontrol show job -o "$JOBID" 2>&1 || true)
        JOB_STATE=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$JOB_INFO")
        eval "$1" && return 0
        ! final_state || fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode) before '$1'"
        ((SECONDS < deadline)) || fail "job $JOBID: '$1' not reached after ${JOB_TIMEOUT}s (state ${JOB_STATE:-unknown})"
        sleep 0.2
    done
}

final_state() {
    case $JOB_STATE in
    PENDING | CONFIGURING | RUNNING | COMPLETING | SUSPENDED | REQUEUED | RESIZING | STAGE_OUT | "") return 1 ;;
    esac
}

# signal_when_training — once the job's run/metrics.jsonl has 3 steps, send SIGUSR1 to the batch
# shell only (what #SBATCH --signal=B:USR1@T does).
signal_when_training() {
    local deadline=$((SECONDS + JOB_TIMEOUT))
    until [[ -f run/metrics.jsonl ]] && (($(grep -c '"event":"step"' run/metrics.jsonl) >= 3)); do
        JOB_INFO=$(timeout 10 scontrol show job -o "$JOBID" 2>&1 || true)
        JOB_STATE=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$JOB_INFO")
        ! final_state || fail "job $JOBID ended $JOB_STATE before it trained 3 steps"
        ((SECONDS < deadline)) || fail "job $JOBID: no 3 steps in run/metrics.jsonl after ${JOB_TIMEOUT}s"
        sleep 0.05
    done
    timeout 10 scancel --batch --signal=USR1 "$JOBID" || fail "scancel --batch --signal=USR1 $JOBID failed"
}

# start_requeued_now — start the requeued (PENDING) job now instead of after SLURM's hold of about 2
# minutes (its BeginTime). Not within the second of the requeue: slurmd revoked the job's
# credential then, and a start in the same second (credential times have 1 s resolution) ends the
# job at once, FAILED ExitCode=1:0 without output ("Killing non-startable batch JobId=N: Job
# credential revoked" in slurmctld's log).
start_requeued_now() {
    sleep 2
    timeout 10 scontrol update JobId="$JOBID" StartTime=now || fail "scontrol update JobId=$JOBID StartTime=now failed"
}

# stopped_step — N of the job output's "STOPPED at step N" line (fails without one).
stopped_step() {
    local n
    n=$(sed -n "s/^bellows-$TRAIN_TOOL: STOPPED at step \([0-9]*\), .*/\1/p" "$OUTFILE" | head -n 1)
    [[ -n $n ]] || fail "no STOPPED line in $OUTFILE"
    echo "$n"
}
