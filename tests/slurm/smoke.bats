#!/usr/bin/env bats
# bats file_tags=slurm
#
# SLURM tests against the single-node test cluster of tests/slurm/:
# sbatch/smoke.sbatch must launch shard-inspect on 4 ranks, and a failing
# job must be reported as failed (so these tests cannot pass vacuously).
#
# The cluster must already be running. Required environment:
#   BELLOWS_SLURM_STATE  the STATE_DIR given to tests/slurm/start-cluster.sh
#                        (its env.sh is sourced for SLURM_CONF)
#   BELLOWS_BIN          directory holding the built shard-inspect
# Optional:
#   BELLOWS_SLURM_JOB_TIMEOUT  seconds one job may take, queued + running (120)
#
#   tests/slurm/start-cluster.sh /tmp/bellows-slurm
#   BELLOWS_SLURM_STATE=/tmp/bellows-slurm BELLOWS_BIN=$PWD/build/bin bats tests/slurm/smoke.bats
#   tests/slurm/stop-cluster.sh /tmp/bellows-slurm

setup() {
    load helpers # slurm_setup, slurm_teardown, submit_and_wait, job_field
    slurm_setup shard-inspect
}

teardown() {
    slurm_teardown
}

# check_smoke_output — the rank lines of $OUTFILE match the shard-inspect
# --version contract for a 4-rank job on this one-node cluster.
check_smoke_output() {
    local node line i=0
    local -a lines
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    [[ -f $OUTFILE ]] || fail "job output $OUTFILE missing"
    grep -q '^bellows-smoke: OK: 4 ranks answered' "$OUTFILE" || fail "no 'bellows-smoke: OK' verdict in $OUTFILE"
    node=$(job_field NodeList)
    [[ -n $node && $node != "(null)" ]] || fail "no NodeList for job $JOBID"

    mapfile -t lines < <(grep -E '^rank=' "$OUTFILE" || true)
    ((${#lines[@]} == 4)) || fail "expected exactly 4 rank lines in $OUTFILE, found ${#lines[@]}"
    local re='^rank=([0-9]+) size=([0-9]+) local_rank=([0-9]+) local_size=([0-9]+) node=([^ ]+) node_index=([0-9]+) num_nodes=([0-9]+) launcher=([a-z]+) slurm_job=([^ ]+) restart=([0-9]+)$'
    for line in "${lines[@]}"; do
        [[ $line =~ $re ]] || fail "rank line does not match the contract: '$line'"
        # Rank order 0,1,2,3 also means each rank exactly once.
        [[ ${BASH_REMATCH[1]} == "$i" ]] || fail "line $((i + 1)) should be rank=$i: '$line'"
        [[ ${BASH_REMATCH[2]} == 4 ]] || fail "size is not 4: '$line'"
        [[ ${BASH_REMATCH[3]} == "$i" ]] || fail "local_rank is not $i on a single node: '$line'"
        [[ ${BASH_REMATCH[4]} == 4 ]] || fail "local_size is not 4 on a single node: '$line'"
        [[ ${BASH_REMATCH[5]} == "$node" ]] || fail "node is not the SLURM node '$node': '$line'"
        [[ ${BASH_REMATCH[6]} == 0 && ${BASH_REMATCH[7]} == 1 ]] || fail "expected node_index=0 num_nodes=1: '$line'"
        [[ ${BASH_REMATCH[8]} == srun || ${BASH_REMATCH[8]} == mpirun ]] || fail "launcher is not srun or mpirun: '$line'"
        [[ ${BASH_REMATCH[9]} == "$JOBID" ]] || fail "slurm_job is not the job id $JOBID: '$line'"
        [[ ${BASH_REMATCH[10]} == 0 ]] || fail "restart is not 0: '$line'"
        i=$((i + 1))
    done
}

@test "smoke.sbatch runs shard-inspect --version on 4 ranks (launcher chosen by the template)" {
    submit_and_wait --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" "$REPO_ROOT/sbatch/smoke.sbatch"
    OUTFILE=$BATS_TEST_TMPDIR/bellows-smoke-$JOBID.out
    check_smoke_output
}

@test "smoke.sbatch runs shard-inspect --version on 4 ranks with BELLOWS_LAUNCHER=mpirun" {
    submit_and_wait --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_LAUNCHER=mpirun" "$REPO_ROOT/sbatch/smoke.sbatch"
    OUTFILE=$BATS_TEST_TMPDIR/bellows-smoke-$JOBID.out
    check_smoke_output
    run grep -c '^bellows-smoke: running: mpirun ' "$OUTFILE"
    assert_output 1
}

@test "a job that exits 3 is reported FAILED with ExitCode=3:0" {
    printf '#!/bin/bash\necho about to fail\nexit 3\n' >fail.sbatch
    submit_and_wait --job-name=bellows-fail --ntasks=1 --time=00:01:00 \
        --output="$BATS_TEST_TMPDIR/fail-%j.out" fail.sbatch
    OUTFILE=$BATS_TEST_TMPDIR/fail-$JOBID.out
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 3:0
    run timeout 10 scontrol show job "$JOBID"
    assert_success
    assert_output --partial "ExitCode=3:0"
    assert_output --partial "JobState=FAILED"
    run cat "$OUTFILE"
    assert_output "about to fail"
}
