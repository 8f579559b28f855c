#!/usr/bin/env bats
# bats file_tags=slurm
#
# sbatch/lora.sbatch on the single-node test cluster of tests/slurm/: lora.sbatch runs
# pretrain.sbatch's logic with BELLOWS_TRAIN_TOOL=lora-tune. A LoRA job must finish with adapter
# checkpoints and the very losses of a local lora-tune run; on 4 tasks (--tp 2 --dp 2, srun+PMIx)
# losses within 1e-5 relative of the local single-process run; a job stopped with SIGUSR1 (what
# --signal=B:USR1@T sends before the time limit) must checkpoint and requeue itself — or, with
# BELLOWS_REQUEUE=0, end with exit 75 and a resubmit hint naming lora.sbatch — and end with the
# losses of an uninterrupted run; bad input must end FAILED with lora-tune's message and exit 2.
# Also: the installed layout (PREFIX/share/bellows/sbatch/lora.sbatch finds PREFIX/bin/lora-tune),
# the job name and default output file of lora.sbatch's header, and lora.sbatch run outside
# SLURM.
#
# The cluster must already be running. Same environment as pretrain.bats (tests/slurm/helpers.bash):
#   BELLOWS_SLURM_STATE  the STATE_DIR given to tests/slurm/start-cluster.sh
#   BELLOWS_BIN          directory holding the built lora-tune, pretrain and tokenize-pack
#   BELLOWS_SLURM_JOB_TIMEOUT  seconds one job may take, queued + running (120)
#
#   tests/slurm/start-cluster.sh /tmp/bellows-slurm
#   BELLOWS_SLURM_STATE=/tmp/bellows-slurm BELLOWS_BIN=$PWD/build/bin bats tests/slurm/lora.bats
#   tests/slurm/stop-cluster.sh /tmp/bellows-slurm
#
# Every job gets --cpus-per-task=1, so the script passes --threads 1, and the local runs use
# --threads 1 too (the same arithmetic; and 1 thread is fast on a busy 2-core machine).

bats_require_minimum_version 1.5.0

setup_file() {
    # For every test: token shards (a small corpus, a 300-token BPE learned from it), the base (the
    # tiny model pretrained 100 steps on them) and SFT shards packed with the base's tokenizer from
    # generated prompt/response pairs (whatever the prompt, one fixed answer). (Without
    # BELLOWS_BIN, setup reports what is missing.)
    [[ -x ${BELLOWS_BIN:-}/tokenize-pack && -x $BELLOWS_BIN/pretrain ]] || return 0
    cd "$BATS_FILE_TMPDIR" || return 1
    python3 - <<'PY' || return 1
import json, random
words = ("the cluster trains a model on shards while the scheduler waits and the loss goes down "
         "tokens flow from curated documents into packed samples every step").split()
random.seed(5)
with open("corpus.jsonl", "w") as f:
    for i in range(300):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(random.randint(20, 200)))}) + "\n")
random.seed(7)
with open("task.jsonl", "w") as f:
    for i in range(300):
        p = " ".join(random.choice(words) for _ in range(random.randint(3, 8)))
        f.write(json.dumps({"prompt": p, "response": " waits while the scheduler trains shards"}) + "\n")
PY
    "$BELLOWS_BIN/tokenize-pack" --train-vocab-size 300 --mode pretrain --seq-len 64 --valid-fraction 0.1 \
        --progress off corpus.jsonl -o tok 2>setup.log || return 0
    "$BELLOWS_BIN/pretrain" --data tok --model tiny --micro-batch 8 --seq-len 64 --threads 1 --steps 100 \
        --lr 3e-3 --log-every 1000 --progress off -o base 2>>setup.log || return 0
    "$BELLOWS_BIN/tokenize-pack" --tokenizer base/tokenizer/tokenizer.json --mode sft --seq-len 64 --progress off \
        task.jsonl -o sft 2>>setup.log
}

setup() {
    load helpers # slurm_setup, slurm_teardown, submit_and_wait, job_field
    load train-helpers # local_run, submit, wait_job, losses, assert_losses_close, stopped_step, ...
    TRAIN_TOOL=lora-tune
    OUT_PREFIX=lora
    slurm_setup lora-tune
    local t
    for t in tokenize-pack pretrain; do
        [[ -x $BELLOWS_BIN/$t ]] || fail "no executable $BELLOWS_BIN/$t"
    done
    [[ -f $BATS_FILE_TMPDIR/base/checkpoints/latest && -f $BATS_FILE_TMPDIR/sft/report.json ]] ||
        fail "setup_file made no base or SFT shards: $(cat "$BATS_FILE_TMPDIR/setup.log" 2>&1)"
    PY=/usr/bin/python3
    [[ -x $PY ]] || PY=$(command -v python3) || fail "python3 not found"
    ln -s "$BATS_FILE_TMPDIR/tok" tok
    ln -s "$BATS_FILE_TMPDIR/base" base
    ln -s "$BATS_FILE_TMPDIR/sft" sft
    SCRIPT=$REPO_ROOT/sbatch/lora.sbatch
    # The base, data, adapters and batch of every run here (dropout on: its masks do not depend on
    # the layout, so a 4-task run still matches one process). lr 3e-3: the loss still falls (1.27 to
    # 0.74 in 300 steps), and the ranks' rounding stays near 1e-7 relative over 300 steps; at 1e-2
    # it grows past 1e-5 after about 60 steps, on 4 ranks from the start as much as after a resume.
    TUNE=(--base base --data sft --seq-len 64 --micro-batch 4 --global-batch 8 --rank 4 --dropout 0.1 --lr 3e-3
        --warmup-steps 5)
    # A run long enough to be signalled while it trains (2 micro-batches a step, a few ms each).
    LONG=("${TUNE[@]}" --steps 300 --save-every 50 --log-every 25)
    # For the jobs of several tasks: MPI ranks yield the cores while they wait (see pretrain.bats).
    MPI_ENV=OMPI_MCA_mpi_yield_when_idle=1
}

teardown() {
    slurm_teardown
}

# submit_and_wait_header_out SBATCH_ARGS... — submit_and_wait with the output file the script's
# header names (bellows-lora-%j.out in the submit directory, this test's); sets OUTFILE.
submit_and_wait_header_out() {
    submit_and_wait "$@"
    OUTFILE=$BATS_TEST_TMPDIR/bellows-lora-$JOBID.out
}

# check_adapter_ckpt CKPT — CKPT holds the adapter (adapter.h5), not a model or rank parts.
check_adapter_ckpt() {
    [[ -f $1/adapter.h5 ]] || fail "no $1/adapter.h5"
    [[ ! -e $1/model.h5 && ! -e $1/parts ]] || fail "$1 holds model.h5 or parts/: not an adapter-only checkpoint"
}

@test "lora.sbatch: COMPLETED, --threads and --resume auto added, adapter checkpoints, the same losses as a local lora-tune run" {
    submit_and_wait_out --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        "$SCRIPT" "${TUNE[@]}" --steps 20 --save-every 5 -o run
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    assert_equal "$(job_field JobName)" bellows-lora

    run cat "$OUTFILE"
    assert_line --partial "bellows-lora-tune: job $JOBID on "
    assert_line --partial ", 1 task, 1 cpus, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line "bellows-lora-tune: running: $BELLOWS_BIN/lora-tune ${TUNE[*]} --steps 20 --save-every 5 -o run --threads 1 --resume auto"
    assert_line --regexp ' info: base base/checkpoints/step-00000100 \(fingerprint [0-9a-f]+\), frozen; LoRA rank 4, '
    assert_line --regexp ' info: step 20/20 loss [0-9.]+ '
    refute_line --partial "resumed from"
    refute_line --partial "bellows-pretrain"
    run grep -c '^bellows-lora-tune: OK: finished step 20 in [0-9]*s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000020$' "$OUTFILE"
    assert_output 1

    # The newest 3 checkpoints (every 5 steps), `latest` naming the last; adapters only.
    assert_equal "$(cat run/checkpoints/latest)" step-00000020
    run ls run/checkpoints
    assert_output "latest
step-00000010
step-00000015
step-00000020"
    check_adapter_ckpt run/checkpoints/step-00000020

    # The same losses, bit for bit, as lora-tune run here with the same arguments and threads.
    local_run local "${TUNE[@]}" --steps 20 --save-every 5
    assert_equal "$(losses run/metrics.jsonl | wc -l)" 20
    assert_equal "$(losses run/metrics.jsonl)" "$(losses local/metrics.jsonl)"
}

@test "lora.sbatch on 4 tasks, --tp 2 --dp 2: COMPLETED, the grid in the log, one adapter file, losses within 1e-5 of a local run" {
    local args=("${TUNE[@]}" --steps 20 --save-every 10 --tp 2 --dp 2)
    submit_and_wait_out --ntasks=4 --cpus-per-task=1 --time=00:10:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,$MPI_ENV" \
        "$SCRIPT" "${args[@]}" -o run
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"

    local node
    node=$(job_field NodeList)
    run cat "$OUTFILE"
    assert_line --partial ", 4 tasks on 1 nodes, 1 cpus per task, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line --regexp '^bellows-lora-tune: running: (srun --mpi=pmix --ntasks=4 |mpirun -np 4 )'
    assert_line --partial " $BELLOWS_BIN/lora-tune ${args[*]} -o run --threads 1 --resume auto"
    assert_line --regexp ' info: grid: 4 ranks = tp 2 x dp 2 x pp 1 '
    assert_line --regexp " info:   tp groups: \[0@$node 1@$node\] \[2@$node 3@$node\]$"
    assert_line --regexp " info:   dp groups: \[0@$node 2@$node\] \[1@$node 3@$node\]$"
    assert_line --regexp ' info: base base/checkpoints/step-00000100 \(fingerprint [0-9a-f]+\), frozen; LoRA rank 4, '
    assert_line --regexp ' info: step 20/20 loss [0-9.]+ '
    run grep -c '^bellows-lora-tune: OK: finished step 20 in [0-9]*s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000020$' "$OUTFILE"
    assert_output 1

    # Rank 0 gathers the adapters and writes them alone.
    assert_equal "$(cat run/checkpoints/latest)" step-00000020
    check_adapter_ckpt run/checkpoints/step-00000020

    # The losses of one process with one thread, up to the rounding of the ranks' sums.
    local_run local "${TUNE[@]}" --steps 20 --save-every 10
    assert_losses_close "$(losses run/metrics.jsonl)" "$(losses local/metrics.jsonl)" 20
}

@test "lora.sbatch requeues itself after SIGUSR1: adapter checkpoint, the same job continues and matches an uninterrupted run" {
    submit --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" "$SCRIPT" "${LONG[@]}" -o run
    signal_when_training
    # Requeued: pending again, one restart. SLURM holds a requeued job back for about 2 minutes
    # (its BeginTime); start it now.
    # shellcheck disable=SC2016  # evaluated by wait_job
    wait_job '[[ $JOB_STATE == PENDING && $(job_field Restarts) == 1 ]]'

    local n ckpt
    n=$(stopped_step)
    ((n >= 3 && n < 300)) || fail "stopped at step $n, expected between 3 and 299"
    ckpt=run/checkpoints/$(printf 'step-%08d' "$n")
    assert_equal "$(cat run/checkpoints/latest)" "${ckpt##*/}"
    check_adapter_ckpt "$ckpt"

    start_requeued_now
    wait_job final_state
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 && $(job_field Restarts) == 1 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode) Restarts=$(job_field Restarts), expected COMPLETED ExitCode=0:0 Restarts=1"

    # Both runs of the job in its one output (--open-mode=append).
    run cat "$OUTFILE"
    assert_line --partial ", 1 task, 1 cpus, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line --regexp '^bellows-lora-tune: SIGUSR1 received .*: passing it on to lora-tune \(it finishes the step, saves a checkpoint and stops\)$'
    assert_line --regexp " warn: signal 10 received: checkpointing at step $n and stopping$"
    assert_line --regexp " info: saved checkpoint $ckpt$"
    refute_line --partial "SIGTERM received"
    assert_line "bellows-lora-tune: STOPPED at step $n, checkpoint $ckpt; requeued as job $JOBID: it continues from the checkpoint when it runs again (BELLOWS_REQUEUE=0 to stop instead)"
    assert_line --partial ", 1 task, 1 cpus, restart 1, in $BATS_TEST_TMPDIR, "
    assert_line --regexp " info: resumed from $ckpt at step $n$"
    run grep -c '^bellows-lora-tune: OK: finished step 300 in [0-9]*s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000300$' "$OUTFILE"
    assert_output 1

    assert_equal "$(losses run/metrics.jsonl | wc -l)" 300
    assert_equal "$(losses run/metrics.jsonl)" "$(reference_losses)"
}

@test "lora.sbatch with BELLOWS_REQUEUE=0 after SIGUSR1: ExitCode=75:0, a resubmit hint naming lora.sbatch; resubmitted on 4 tasks (--tp 2 --dp 2) it resumes and matches an uninterrupted run" {
    submit --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_REQUEUE=0" \
        "$SCRIPT" "${LONG[@]}" -o run
    signal_when_training
    wait_job final_state
    [[ $JOB_STATE == FAILED && $(job_field ExitCode) == 75:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected FAILED ExitCode=75:0"

    local n ckpt first=$OUTFILE
    n=$(stopped_step)
    ((n >= 3 && n < 300)) || fail "stopped at step $n, expected between 3 and 299"
    ckpt=run/checkpoints/$(printf 'step-%08d' "$n")
    run cat "$OUTFILE"
    assert_line --regexp " warn: signal 10 received: checkpointing at step $n and stopping$"
    assert_line --regexp " info: saved checkpoint $ckpt$"
    assert_line "bellows-lora-tune: STOPPED at step $n, checkpoint $ckpt; not requeued (BELLOWS_REQUEUE=0); resubmit to continue: sbatch $SCRIPT ${LONG[*]} -o run (with the same sbatch options)"
    assert_equal "$(cat run/checkpoints/latest)" "${ckpt##*/}"
    check_adapter_ckpt "$ckpt"

    # The adapter one process saved, read into a tensor- and data-parallel layout.
    submit_and_wait_out --ntasks=4 --cpus-per-task=1 --time=00:10:00 \
        --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_REQUEUE=0,$MPI_ENV" "$SCRIPT" "${LONG[@]}" --tp 2 --dp 2 -o run
    [[ $first != "$OUTFILE" ]] || fail "the resubmitted job wrote to the first job's output"
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    run cat "$OUTFILE"
    assert_line --regexp ' info: grid: 4 ranks = tp 2 x dp 2 x pp 1 '
    assert_line --regexp " info: resumed from $ckpt at step $n$"
    assert_line --regexp '^bellows-lora-tune: OK: finished step 300 in [0-9]+s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000300$'
    check_adapter_ckpt run/checkpoints/step-00000300

    assert_losses_close "$(losses run/metrics.jsonl)" "$(reference_losses)" 300
}

@test "lora.sbatch given pretraining shards as --data: FAILED with ExitCode=2:0 and lora-tune's message once" {
    submit_and_wait_out --cpus-per-task=1 --time=00:01:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        "$SCRIPT" --base base --data tok --seq-len 64 --steps 5 -o run
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 2:0
    run grep -c '^lora-tune: tok/train-r00000-00000\.h5: tokens_pretrain shards, but SFT needs tokens_sft (tokenize-pack --mode sft)$' "$OUTFILE"
    assert_output 1
    run grep -c '^bellows-lora-tune: FAILED: lora-tune exit status 2 after [0-9]*s (.*the line above from lora-tune says why)$' "$OUTFILE"
    assert_output 1
    [[ ! -e run ]] || fail "run directory 'run' exists after a usage error"
}

@test "lora.sbatch without arguments: FAILED with ExitCode=2:0 and the usage line, in bellows-lora-JOBID.out" {
    # No --output: the header's bellows-lora-%j.out in the submit directory.
    submit_and_wait_header_out --time=00:01:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" "$SCRIPT"
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 2:0
    assert_equal "$(job_field JobName)" bellows-lora
    run cat "$OUTFILE"
    assert_output "bellows-lora-tune: error: no arguments; usage: sbatch lora.sbatch --base CKPT --data SFT_SHARDS --steps N -o RUNDIR [lora-tune options]"
}

@test "lora.sbatch installed as PREFIX/share/bellows/sbatch/lora.sbatch: PREFIX/bin/lora-tune without BELLOWS_BIN" {
    local prefix=$BATS_TEST_TMPDIR/prefix
    mkdir -p "$prefix/bin" "$prefix/share/bellows/sbatch"
    install -m 644 "$REPO_ROOT/sbatch/lora.sbatch" "$REPO_ROOT/sbatch/pretrain.sbatch" "$prefix/share/bellows/sbatch/"
    ln -s "$BELLOWS_BIN/lora-tune" "$prefix/bin/lora-tune"
    submit_and_wait_out --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=" \
        "$prefix/share/bellows/sbatch/lora.sbatch" "${TUNE[@]}" --steps 3 -o run
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    run cat "$OUTFILE"
    assert_line "bellows-lora-tune: running: $prefix/bin/lora-tune ${TUNE[*]} --steps 3 -o run --threads 1 --resume auto"
    assert_line --regexp '^bellows-lora-tune: OK: finished step 3 in [0-9]+s; '
    check_adapter_ckpt run/checkpoints/step-00000003
}

@test "lora.sbatch outside SLURM (bash lora.sbatch ...): runs lora-tune; copied away from pretrain.sbatch it says so, exit 2" {
    # $0 locates pretrain.sbatch when no SLURM job is around.
    run --separate-stderr env -u SLURM_JOB_ID BELLOWS_BIN="$BELLOWS_BIN" SLURM_CPUS_PER_TASK=1 \
        bash "$SCRIPT" "${TUNE[@]}" --steps 3 -o run
    assert_success
    assert_line "bellows-lora-tune: running: $BELLOWS_BIN/lora-tune ${TUNE[*]} --steps 3 -o run --threads 1 --resume auto"
    assert_line --regexp '^bellows-lora-tune: OK: finished step 3 in [0-9]+s; '
    check_adapter_ckpt run/checkpoints/step-00000003

    # Alone (and no installed bellows to fall back on: not beside BELLOWS_BIN, no lora-tune on the
    # PATH): a clear error before anything runs.
    mkdir alone
    cp "$SCRIPT" alone/
    run --separate-stderr env -u SLURM_JOB_ID PATH=/usr/bin:/bin BELLOWS_BIN="$BELLOWS_BIN" bash alone/lora.sbatch "${TUNE[@]}" --steps 3 -o run2
    assert_failure 2
    assert_equal "$output" ""
    # shellcheck disable=SC2154  # stderr: set by run --separate-stderr
    [[ $stderr == "bellows-lora-tune: error: pretrain.sbatch not found (looked for alone/pretrain.sbatch $BELLOWS_BIN/../share/bellows/sbatch/pretrain.sbatch);"* ]] ||
        fail "unexpected message: $stderr"
    [[ ! -e run2 ]] || fail "run2 exists"
}
