#!/usr/bin/env bats
# bats file_tags=slurm
#
# sbatch/pretrain.sbatch on the single-node test cluster of tests/slurm/: a pretrain job must
# finish with the checkpoints and the very losses of a local run; a job stopped with SIGUSR1 (what
# --signal=B:USR1@T sends before the time limit) must checkpoint and exit 75, and continue from
# that checkpoint when resubmitted — or by itself when requeued — with the losses of an
# uninterrupted run; bad input must end FAILED with pretrain's message in the output. The same
# with 4 tasks (--tp 2 --pp 2, through srun+PMIx or mpirun): the grid in the log, checkpoint parts
# from every rank, losses within 1e-5 relative of a local single-process run (the ranks sum in
# another order, so the last bits differ).
#
# The cluster must already be running. Same environment as smoke.bats (tests/slurm/helpers.bash):
#   BELLOWS_SLURM_STATE  the STATE_DIR given to tests/slurm/start-cluster.sh
#   BELLOWS_BIN          directory holding the built pretrain and tokenize-pack
#   BELLOWS_SLURM_JOB_TIMEOUT  seconds one job may take, queued + running (120)
#
#   tests/slurm/start-cluster.sh /tmp/bellows-slurm
#   BELLOWS_SLURM_STATE=/tmp/bellows-slurm BELLOWS_BIN=$PWD/build/bin bats tests/slurm/pretrain.bats
#   tests/slurm/stop-cluster.sh /tmp/bellows-slurm
#
# Every job gets --cpus-per-task=1, so the script passes --threads 1, and the local runs use
# --threads 1 too (the same arithmetic; and 1 thread is fast on a busy 2-core machine).

bats_require_minimum_version 1.5.0

setup_file() {
    # Token shards for every test: a small corpus and a 300-token BPE learned from it. (Without
    # BELLOWS_BIN, setup reports what is missing.)
    [[ -x ${BELLOWS_BIN:-}/tokenize-pack ]] || return 0
    cd "$BATS_FILE_TMPDIR" || return 1
    python3 - <<'PY' || return 1
import json, random
random.seed(5)
words = ("the cluster trains a model on shards while the scheduler waits and the loss goes down "
         "tokens flow from curated documents into packed samples every step").split()
with open("corpus.jsonl", "w") as f:
    for i in range(300):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(random.randint(20, 200)))}) + "\n")
PY
    "$BELLOWS_BIN/tokenize-pack" --train-vocab-size 300 --mode pretrain --seq-len 64 --valid-fraction 0.1 \
        --progress off corpus.jsonl -o tok 2>tok.log
}

setup() {
    load helpers # slurm_setup, slurm_teardown, submit_and_wait, job_field
    load train-helpers # local_run, submit, wait_job, losses, assert_losses_close, stopped_step, ...
    TRAIN_TOOL=pretrain
    OUT_PREFIX=pretrain
    slurm_setup pretrain
    [[ -x $BELLOWS_BIN/tokenize-pack ]] || fail "no executable $BELLOWS_BIN/tokenize-pack"
    [[ -f $BATS_FILE_TMPDIR/tok/train-r00000-00000.h5 ]] ||
        fail "setup_file made no token shards: $(cat "$BATS_FILE_TMPDIR/tok.log" 2>&1)"
    PY=/usr/bin/python3
    [[ -x $PY ]] || PY=$(command -v python3) || fail "python3 not found"
    ln -s "$BATS_FILE_TMPDIR/tok" tok
    SCRIPT=$REPO_ROOT/sbatch/pretrain.sbatch
    # The model and batch of every run here.
    MODEL=(--data tok --model tiny --seq-len 64 --micro-batch 4)
    # A run long enough to be signalled while it trains (4 micro-batches a step, a few ms each).
    LONG=("${MODEL[@]}" --global-batch 16 --steps 300 --save-every 50 --log-every 25)
    # For the jobs of several tasks: MPI ranks yield the cores while they wait (see below).
    MPI_ENV=OMPI_MCA_mpi_yield_when_idle=1
}

teardown() {
    slurm_teardown
}

# check_parts CKPT — CKPT has model.h5 and one part file from each of the 4 ranks.
check_parts() {
    [[ -f $1/model.h5 ]] || fail "no $1/model.h5"
    run ls "$1/parts"
    assert_output "rank-00000.h5
rank-00001.h5
rank-00002.h5
rank-00003.h5"
}

# check_grid — the job output has rank 0's grid lines for 4 ranks, --tp 2 --pp 2, on the job's node.
check_grid() {
    local node
    node=$(job_field NodeList)
    [[ -n $node && $node != "(null)" ]] || fail "no NodeList for job $JOBID"
    run cat "$OUTFILE"
    assert_line --regexp ' info: grid: 4 ranks = tp 2 x dp 1 x pp 2 '
    assert_line --regexp " info:   tp groups: \[0@$node 1@$node\] \[2@$node 3@$node\]$"
    assert_line --regexp " info:   pp groups: \[0@$node 2@$node\] \[1@$node 3@$node\]$"
    assert_line --regexp ' info:   pipeline stages: 0: .*; 1: .*'
}

@test "pretrain.sbatch: COMPLETED, --threads and --resume auto added, checkpoints, the same losses as a local run" {
    # A BELLOWS_TRAIN_TOOL left in the submitting environment does not make it another tool.
    submit_and_wait_out --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_TRAIN_TOOL=dpo-align" \
        "$SCRIPT" "${MODEL[@]}" --steps 20 --save-every 5 -o run
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"

    run cat "$OUTFILE"
    assert_line --partial "bellows-pretrain: job $JOBID on "
    assert_line --partial ", 1 task, 1 cpus, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line "bellows-pretrain: running: $BELLOWS_BIN/pretrain ${MODEL[*]} --steps 20 --save-every 5 -o run --threads 1 --resume auto"
    # (pretrain with parallelism adds " (N ... on this rank)" after the parameters, on one rank too.)
    assert_line --regexp ' info: model: [0-9]+ parameters( \([^)]*\))?; backend cpu \(1 threads, '
    assert_line --regexp ' info: step 20/20 loss [0-9.]+ '
    refute_line --partial "resumed from"
    run grep -c '^bellows-pretrain: OK: finished step 20 in [0-9]*s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000020$' "$OUTFILE"
    assert_output 1

    # The newest 3 checkpoints (every 5 steps), `latest` naming the last.
    assert_equal "$(cat run/checkpoints/latest)" step-00000020
    run ls run/checkpoints
    assert_output "latest
step-00000010
step-00000015
step-00000020"
    [[ -f run/checkpoints/step-00000020/model.h5 ]] || fail "no run/checkpoints/step-00000020/model.h5"

    # The same losses, bit for bit, as pretrain run here with the same arguments and threads.
    local_run local "${MODEL[@]}" --steps 20 --save-every 5
    assert_equal "$(losses run/metrics.jsonl | wc -l)" 20
    assert_equal "$(losses run/metrics.jsonl)" "$(losses local/metrics.jsonl)"
}

@test "pretrain.sbatch preempted: SIGUSR1 to the batch shell, checkpoint, ExitCode=75:0; resubmitted, it resumes and matches an uninterrupted run" {
    submit --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_REQUEUE=0" \
        "$SCRIPT" "${LONG[@]}" -o run
    signal_when_training
    wait_job final_state
    [[ $JOB_STATE == FAILED && $(job_field ExitCode) == 75:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected FAILED ExitCode=75:0"

    # The script passed the signal on; pretrain finished its step, saved a checkpoint and stopped.
    local n ckpt first=$OUTFILE
    n=$(stopped_step)
    ((n >= 3 && n < 300)) || fail "stopped at step $n, expected between 3 and 299"
    ckpt=run/checkpoints/$(printf 'step-%08d' "$n")
    run cat "$OUTFILE"
    assert_line --regexp '^bellows-pretrain: SIGUSR1 received .*: passing it on to pretrain '
    assert_line --regexp " warn: signal 10 received: checkpointing at step $n and stopping$"
    assert_line --regexp " info: saved checkpoint $ckpt$"
    refute_line --partial "SIGTERM received"
    assert_line "bellows-pretrain: STOPPED at step $n, checkpoint $ckpt; not requeued (BELLOWS_REQUEUE=0); resubmit to continue: sbatch $SCRIPT ${LONG[*]} -o run (with the same sbatch options)"
    assert_equal "$(cat run/checkpoints/latest)" "${ckpt##*/}"
    [[ -f $ckpt/model.h5 ]] || fail "no $ckpt/model.h5"

    # The same command again continues from that checkpoint and finishes.
    submit_and_wait_out --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_REQUEUE=0" \
        "$SCRIPT" "${LONG[@]}" -o run
    [[ $first != "$OUTFILE" ]] || fail "the resubmitted job wrote to the first job's output"
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    run cat "$OUTFILE"
    assert_line --regexp " info: resumed from $ckpt at step $n$"
    assert_line --regexp '^bellows-pretrain: OK: finished step 300 in [0-9]+s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000300$'

    # Every step's loss (its last record) equals that of an uninterrupted run.
    assert_equal "$(losses run/metrics.jsonl | wc -l)" 300
    assert_equal "$(losses run/metrics.jsonl)" "$(reference_losses)"
}

@test "pretrain.sbatch requeues itself after SIGUSR1: the same job continues from the checkpoint and matches an uninterrupted run" {
    submit --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" "$SCRIPT" "${LONG[@]}" -o run
    signal_when_training
    # Requeued: pending again, one restart. SLURM holds a requeued job back for about 2 minutes
    # (its BeginTime); start it now.
    # shellcheck disable=SC2016  # evaluated by wait_job
    wait_job '[[ $JOB_STATE == PENDING && $(job_field Restarts) == 1 ]]'
    start_requeued_now
    wait_job final_state
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 && $(job_field Restarts) == 1 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode) Restarts=$(job_field Restarts), expected COMPLETED ExitCode=0:0 Restarts=1"

    # Both runs of the job in its one output (--open-mode=append).
    local n ckpt
    n=$(stopped_step)
    ((n >= 3 && n < 300)) || fail "stopped at step $n, expected between 3 and 299"
    ckpt=run/checkpoints/$(printf 'step-%08d' "$n")
    run cat "$OUTFILE"
    assert_line --partial ", 1 task, 1 cpus, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line "bellows-pretrain: STOPPED at step $n, checkpoint $ckpt; requeued as job $JOBID: it continues from the checkpoint when it runs again (BELLOWS_REQUEUE=0 to stop instead)"
    assert_line --partial ", 1 task, 1 cpus, restart 1, in $BATS_TEST_TMPDIR, "
    assert_line --regexp " info: resumed from $ckpt at step $n$"
    run grep -c '^bellows-pretrain: OK: finished step 300 in [0-9]*s; ' "$OUTFILE"
    assert_output 1
    # Each start's own log, named by the job and SLURM_RESTART_COUNT.
    run ls run/logs
    assert_output "pretrain-job$JOBID-restart0.log
pretrain-job$JOBID-restart1.log"
    run cat "run/logs/pretrain-job$JOBID-restart0.log"
    assert_line --regexp " warn: signal 10 received: checkpointing at step $n and stopping$"
    refute_line --partial "resumed from"
    run cat "run/logs/pretrain-job$JOBID-restart1.log"
    assert_line --regexp " info: resumed from $ckpt at step $n$"
    assert_line --regexp ' info: step 300/300 loss '

    assert_equal "$(losses run/metrics.jsonl | wc -l)" 300
    assert_equal "$(losses run/metrics.jsonl)" "$(reference_losses)"
}

@test "pretrain.sbatch with --seq-len longer than the shards: FAILED with ExitCode=2:0 and pretrain's message once" {
    submit_and_wait_out --cpus-per-task=1 --time=00:01:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        "$SCRIPT" --data tok --model tiny --seq-len 128 --micro-batch 4 --steps 5 -o run
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 2:0
    run grep -c "^pretrain: --seq-len 128 is longer than the shards' samples (64 tokens) in tok$" "$OUTFILE"
    assert_output 1
    run grep -c '^bellows-pretrain: FAILED: pretrain exit status 2 after [0-9]*s (.*the line above from pretrain says why)$' "$OUTFILE"
    assert_output 1
    [[ ! -e run ]] || fail "run directory 'run' exists after a usage error"
}

@test "pretrain.sbatch without arguments: FAILED with ExitCode=2:0 and the usage line" {
    submit_and_wait_out --time=00:01:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" "$SCRIPT"
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 2:0
    run cat "$OUTFILE"
    assert_output "bellows-pretrain: error: no arguments; usage: sbatch pretrain.sbatch --data TOKENS --model PRESET --steps N -o RUNDIR [pretrain options]"
}

# --- several tasks: tensor and pipeline parallelism -----------------------------------------------
# 4 tasks of 1 cpu (the cluster's 4 CPUs); the template picks srun --mpi=pmix here (the cluster has
# the pmix plugin) unless BELLOWS_LAUNCHER says otherwise. The cluster's 4 CPUs are 2 cores, and
# neither launcher knows it: Open MPI's ranks would spin while they wait for each other, taking the
# cores from the ranks they wait for (300 steps: 30 s on an idle machine, past the 120 s job timeout
# beside a compiler). OMPI_MCA_mpi_yield_when_idle=1, what tests/mpirun.sh's --oversubscribe turns
# on, makes them yield instead (5 s); it changes no result. (MPI_ENV, set in setup.)

@test "pretrain.sbatch on 4 tasks, --tp 2 --pp 2: COMPLETED, the grid in the log, parts from every rank, losses within 1e-5 of a local run" {
    local args=("${MODEL[@]}" --global-batch 16 --steps 20 --save-every 10 --tp 2 --pp 2)
    submit_and_wait_out --ntasks=4 --cpus-per-task=1 --time=00:10:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,$MPI_ENV" \
        "$SCRIPT" "${args[@]}" -o run
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"

    run cat "$OUTFILE"
    assert_line --partial ", 4 tasks on 1 nodes, 1 cpus per task, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line --regexp '^bellows-pretrain: running: (srun --mpi=pmix --ntasks=4 |mpirun -np 4 )'
    assert_line --partial " $BELLOWS_BIN/pretrain ${args[*]} -o run --threads 1 --resume auto"
    assert_line --regexp ' info: model: [0-9]+ parameters \([^)]*on this rank\); backend cpu \(1 threads, '
    assert_line --regexp ' info: step 20/20 loss [0-9.]+ '
    refute_line --partial "resumed from"
    check_grid
    run grep -c '^bellows-pretrain: OK: finished step 20 in [0-9]*s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000020$' "$OUTFILE"
    assert_output 1

    assert_equal "$(cat run/checkpoints/latest)" step-00000020
    check_parts run/checkpoints/step-00000020

    # The losses of one process with one thread, up to the rounding of the ranks' sums.
    local_run local "${MODEL[@]}" --global-batch 16 --steps 20 --save-every 10
    assert_losses_close "$(losses run/metrics.jsonl)" "$(losses local/metrics.jsonl)" 20
}

@test "pretrain.sbatch on 4 tasks preempted: SIGUSR1 reaches every rank through the launcher, checkpoint, requeued; the same job resumes and matches an uninterrupted run" {
    local args=("${LONG[@]}" --tp 2 --pp 2)
    submit --ntasks=4 --cpus-per-task=1 --time=00:10:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,$MPI_ENV" "$SCRIPT" "${args[@]}" -o run
    signal_when_training
    # shellcheck disable=SC2016  # evaluated by wait_job
    wait_job '[[ $JOB_STATE == PENDING && $(job_field Restarts) == 1 ]]'

    # Stopped: every rank wrote its part of the checkpoint of the step they all stopped at.
    local n ckpt
    n=$(stopped_step)
    ((n >= 3 && n < 300)) || fail "stopped at step $n, expected between 3 and 299"
    ckpt=run/checkpoints/$(printf 'step-%08d' "$n")
    assert_equal "$(cat run/checkpoints/latest)" "${ckpt##*/}"
    check_parts "$ckpt"
    run cat "$OUTFILE"
    assert_line --regexp '^bellows-pretrain: SIGUSR1 received .*: passing it on to (srun|mpirun), which passes it on to every rank '
    assert_line --regexp " warn: signal 10 received: checkpointing at step $n and stopping$"
    assert_line --regexp " info: saved checkpoint $ckpt$"
    assert_line --regexp " info: stopped at step $n; "
    refute_line --partial "SIGTERM received"
    assert_line "bellows-pretrain: STOPPED at step $n, checkpoint $ckpt; requeued as job $JOBID: it continues from the checkpoint when it runs again (BELLOWS_REQUEUE=0 to stop instead)"

    # SLURM holds a requeued job back for about 2 minutes (its BeginTime); start it now.
    start_requeued_now
    wait_job final_state
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 && $(job_field Restarts) == 1 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode) Restarts=$(job_field Restarts), expected COMPLETED ExitCode=0:0 Restarts=1"
    run cat "$OUTFILE"
    assert_line --partial ", 4 tasks on 1 nodes, 1 cpus per task, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line --partial ", 4 tasks on 1 nodes, 1 cpus per task, restart 1, in $BATS_TEST_TMPDIR, "
    assert_line --regexp " info: resumed from $ckpt at step $n$"
    run grep -c '^bellows-pretrain: OK: finished step 300 in [0-9]*s; ' "$OUTFILE"
    assert_output 1
    run grep -c ' info: grid: 4 ranks = tp 2 x dp 1 x pp 2 ' "$OUTFILE"
    assert_output 2
    check_parts run/checkpoints/step-00000300

    assert_losses_close "$(losses run/metrics.jsonl)" "$(reference_losses)" 300
}

@test "pretrain.sbatch on 4 tasks through mpirun: SIGUSR1, ExitCode=75:0; resubmitted with another layout (--pp 2, dp 2), it resumes and matches an uninterrupted run" {
    local args=("${LONG[@]}" --tp 2 --pp 2)
    submit --ntasks=4 --cpus-per-task=1 --time=00:10:00 \
        --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_REQUEUE=0,BELLOWS_LAUNCHER=mpirun,$MPI_ENV" "$SCRIPT" "${args[@]}" -o run
    signal_when_training
    wait_job final_state
    [[ $JOB_STATE == FAILED && $(job_field ExitCode) == 75:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected FAILED ExitCode=75:0"

    local n ckpt first=$OUTFILE
    n=$(stopped_step)
    ((n >= 3 && n < 300)) || fail "stopped at step $n, expected between 3 and 299"
    ckpt=run/checkpoints/$(printf 'step-%08d' "$n")
    run cat "$OUTFILE"
    assert_line --regexp '^bellows-pretrain: running: mpirun -np 4 '
    check_grid
    assert_line --regexp '^bellows-pretrain: SIGUSR1 received .*: passing it on to mpirun, which passes it on to every rank '
    assert_line --regexp " warn: signal 10 received: checkpointing at step $n and stopping$"
    assert_line --regexp " info: saved checkpoint $ckpt$"
    assert_line "bellows-pretrain: STOPPED at step $n, checkpoint $ckpt; not requeued (BELLOWS_REQUEUE=0); resubmit to continue: sbatch $SCRIPT ${args[*]} -o run (with the same sbatch options)"
    assert_equal "$(cat run/checkpoints/latest)" "${ckpt##*/}"
    check_parts "$ckpt"

    # Resubmitted on the same 4 tasks as 2 pipeline stages x 2 data-parallel replicas: the checkpoint
    # of the tp 2 x pp 2 layout is read into the new one.
    submit_and_wait_out --ntasks=4 --cpus-per-task=1 --time=00:10:00 \
        --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_REQUEUE=0,BELLOWS_LAUNCHER=mpirun,$MPI_ENV" \
        "$SCRIPT" "${LONG[@]}" --pp 2 -o run
    [[ $first != "$OUTFILE" ]] || fail "the resubmitted job wrote to the first job's output"
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    run cat "$OUTFILE"
    assert_line --regexp ' info: grid: 4 ranks = tp 1 x dp 2 x pp 2 '
    assert_line --regexp " info: resumed from $ckpt at step $n$"
    assert_line --regexp '^bellows-pretrain: OK: finished step 300 in [0-9]+s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000300$'

    assert_losses_close "$(losses run/metrics.jsonl)" "$(reference_losses)" 300
}
