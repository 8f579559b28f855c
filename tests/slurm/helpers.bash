# Shared by the SLURM Bats files (load helpers): checks that the test cluster answers, submits a
# job and waits for its final state, and prints diagnostics for a failed test.
#
# Environment (see tests/slurm/README.md):
#   BELLOWS_SLURM_STATE        the STATE_DIR given to tests/slurm/start-cluster.sh (its env.sh is
#                              sourced for SLURM_CONF)
#   BELLOWS_BIN                directory holding the built tools
#   BELLOWS_SLURM_JOB_TIMEOUT  seconds one job may take, queued + running (default 120)

# slurm_setup TOOL — fail (not skip) unless the cluster answers and $BELLOWS_BIN/TOOL exists; sets
# REPO_ROOT, JOB_TIMEOUT, clears JOBID, JOB_STATE, JOB_INFO, OUTFILE; cd to $BATS_TEST_TMPDIR.
slurm_setup() {
    local tool=$1
    bats_load_library bats-support
    bats_load_library bats-assert

    [[ -n ${BELLOWS_SLURM_STATE:-} ]] ||
        fail "BELLOWS_SLURM_STATE is not set (the STATE_DIR of tests/slurm/start-cluster.sh)"
    [[ -r $BELLOWS_SLURM_STATE/env.sh ]] ||
        fail "$BELLOWS_SLURM_STATE/env.sh missing: is the test cluster running? (tests/slurm/start-cluster.sh $BELLOWS_SLURM_STATE)"
    # shellcheck source=/dev/null
    . "$BELLOWS_SLURM_STATE/env.sh"
    [[ -n ${BELLOWS_BIN:-} ]] || fail "BELLOWS_BIN is not set (directory holding $tool)"
    [[ -x $BELLOWS_BIN/$tool ]] || fail "no executable $BELLOWS_BIN/$tool"
    timeout 10 sinfo -h -o %a >/dev/null 2>&1 ||
        fail "SLURM_CONF=$SLURM_CONF: slurmctld does not answer (sinfo failed)"

    # shellcheck disable=SC2034  # REPO_ROOT is for the test files
    REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    JOB_TIMEOUT=${BELLOWS_SLURM_JOB_TIMEOUT:-120}
    JOBID=
    JOB_STATE=
    JOB_INFO=
    OUTFILE=
    cd "$BATS_TEST_TMPDIR" || fail "cannot cd to $BATS_TEST_TMPDIR"
}

# slurm_teardown — cancel the test's job if it is still there (e.g. after a timeout); after a
# failed test, print the job output, scontrol show job and sinfo.
slurm_teardown() {
    [[ -n ${JOBID:-} ]] || return 0
    # Never leave a job behind (e.g. after a timeout).
    if timeout 10 squeue -h -j "$JOBID" -o %A 2>/dev/null | grep -q .; then
        timeout 10 scancel "$JOBID" || true
    fi
    if [[ ${BATS_TEST_COMPLETED:-} != 1 ]]; then
        {
            echo "===== diagnostics for job $JOBID ====="
            if [[ -n ${OUTFILE:-} && -f $OUTFILE ]]; then
                echo "--- job output $OUTFILE:"
                cat "$OUTFILE"
            else
                echo "--- job output ${OUTFILE:-(unknown)}: missing"
            fi
            echo "--- scontrol show job $JOBID:"
            timeout 10 scontrol show job "$JOBID" 2>&1 || true
            echo "--- sinfo:"
            timeout 10 sinfo -N -l 2>&1 || true
        } >&2
    fi
}

# submit_and_wait SBATCH_ARGS... — submit, then poll until the job reaches a
# final state, at most $JOB_TIMEOUT s (the job is cancelled past that).
# Sets JOBID, JOB_STATE (e.g. COMPLETED, FAILED) and JOB_INFO (scontrol -o).
submit_and_wait() {
    local out deadline
    out=$(timeout 30 sbatch --parsable "$@" 2>&1) || fail "sbatch $* failed: $out"
    JOBID=${out%%;*}
    [[ $JOBID =~ ^[0-9]+$ ]] || fail "sbatch gave no job id: $out"
    deadline=$((SECONDS + JOB_TIMEOUT))
    while :; do
        JOB_INFO=$(timeout 10 scontrol show job -o "$JOBID" 2>&1 || true)
        JOB_STATE=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$JOB_INFO")
        case $JOB_STATE in
        PENDING | CONFIGURING | RUNNING | COMPLETING | SUSPENDED | REQUEUED | RESIZING | STAGE_OUT | "") ;;
        *) return 0 ;;
        esac
        if ((SECONDS >= deadline)); then
            timeout 10 scancel "$JOBID" || true
            fail "job $JOBID still '${JOB_STATE:-unknown}' after ${JOB_TIMEOUT}s; cancelled"
        fi
        sleep 0.5
    done
}

# job_field NAME — value of NAME=... in JOB_INFO.
job_field() {
    sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $JOB_INFO"
}
