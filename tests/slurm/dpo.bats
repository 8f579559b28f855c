#!/usr/bin/env bats
# bats file_tags=slurm
#
# sbatch/dpo.sbatch on the single-node test cluster of tests/slurm/: dpo.sbatch runs
# pretrain.sbatch's logic with BELLOWS_TRAIN_TOOL=dpo-align (set by dpo.sbatch whatever the
# submitting environment holds). A DPO job on a new adapter must finish with adapter checkpoints
# and the very losses of a local dpo-align run; on 4 tasks (--tp 2 --dp 2) within 1e-5 relative of
# the local single-process run, with the adapter (the reference: the base with the adapters off)
# and with every weight (the reference: a frozen copy); a full-model job with --precompute-ref
# stopped by SIGUSR1 must checkpoint, requeue itself, read the reference log-probabilities back
# and end with the losses of an uninterrupted run; pretraining shards as --data must end FAILED
# with dpo-align's message and exit 2. Also: no arguments (the usage line in the header's output
# file), the installed layout, and dpo.sbatch outside SLURM.
#
# The cluster must already be running. Same environment as lora.bats (tests/slurm/helpers.bash):
#   BELLOWS_SLURM_STATE  the STATE_DIR given to tests/slurm/start-cluster.sh
#   BELLOWS_BIN          directory holding the built dpo-align, pretrain and tokenize-pack
#   BELLOWS_SLURM_JOB_TIMEOUT  seconds one job may take, queued + running (120)
#
#   tests/slurm/start-cluster.sh /tmp/bellows-slurm
#   BELLOWS_SLURM_STATE=/tmp/bellows-slurm BELLOWS_BIN=$PWD/build/bin bats tests/slurm/dpo.bats
#   tests/slurm/stop-cluster.sh /tmp/bellows-slurm
#
# Every job gets --cpus-per-task=1, so the script passes --threads 1, and the local runs use
# --threads 1 too (the same arithmetic).

bats_require_minimum_version 1.5.0

setup_file() {
    # For every test: token shards (a small corpus, a 300-token BPE learned from it), the policy
    # (the tiny model pretrained 100 steps on them) and preference shards packed with its
    # tokenizer from generated pairs (whatever the prompt, one fixed chosen answer; a random
    # rejected one). (Without BELLOWS_BIN, setup reports what is missing.)
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
random.seed(11)
with open("pairs.jsonl", "w") as f:
    for i in range(200):
        p = " ".join(random.choice(words) for _ in range(random.randint(3, 8)))
        r = " " + " ".join(random.choice(words) for _ in range(random.randint(3, 7)))
        f.write(json.dumps({"prompt": p, "chosen": " waits while the scheduler trains shards", "rejected": r}) + "\n")
PY
    "$BELLOWS_BIN/tokenize-pack" --train-vocab-size 300 --mode pretrain --seq-len 64 --valid-fraction 0.1 \
        --progress off corpus.jsonl -o tok 2>setup.log || return 0
    "$BELLOWS_BIN/pretrain" --data tok --model tiny --micro-batch 8 --seq-len 64 --threads 1 --steps 100 \
        --lr 3e-3 --log-every 1000 --progress off -o base 2>>setup.log || return 0
    "$BELLOWS_BIN/tokenize-pack" --tokenizer base/tokenizer/tokenizer.json --mode preference --seq-len 64 \
        --progress off pairs.jsonl -o pref 2>>setup.log
}

setup() {
    load helpers # slurm_setup, slurm_teardown, submit_and_wait, job_field
    load train-helpers # local_run, submit, wait_job, losses, assert_losses_close, stopped_step, ...
    TRAIN_TOOL=dpo-align
    OUT_PREFIX=dpo
    slurm_setup dpo-align
    local t
    for t in tokenize-pack pretrain; do
        [[ -x $BELLOWS_BIN/$t ]] || fail "no executable $BELLOWS_BIN/$t"
    done
    [[ -f $BATS_FILE_TMPDIR/base/checkpoints/latest && -f $BATS_FILE_TMPDIR/pref/report.json ]] ||
        fail "setup_file made no policy or preference shards: $(cat "$BATS_FILE_TMPDIR/setup.log" 2>&1)"
    PY=/usr/bin/python3
    [[ -x $PY ]] || PY=$(command -v python3) || fail "python3 not found"
    ln -s "$BATS_FILE_TMPDIR/tok" tok
    ln -s "$BATS_FILE_TMPDIR/base" base
    ln -s "$BATS_FILE_TMPDIR/pref" pref
    SCRIPT=$REPO_ROOT/sbatch/dpo.sbatch
    # The policy, data and batch of every run here: 8 pairs a step in micro-batches of 2 (so that
    # 4 tasks as tp 2 x dp 2 take the same global batch).
    COMMON=(--policy base --data pref --seq-len 64 --micro-batch 2 --global-batch 8 --warmup-steps 5)
    # A new rank-4 adapter (the reference: the base with the adapters off).
    LORA=("${COMMON[@]}" --new-lora --rank 4 --lr 1e-3)
    # Every weight (the reference: a frozen copy of the policy).
    FULL=("${COMMON[@]}" --lr 1e-4)
    # A run long enough to be signalled while it trains (4 micro-batches a step, a few ms each):
    # every weight, the reference's log-probabilities computed once before the first step.
    LONG=("${FULL[@]}" --precompute-ref --steps 300 --save-every 50 --log-every 25)
    # For the jobs of several tasks: MPI ranks yield the cores while they wait (see pretrain.bats).
    MPI_ENV=OMPI_MCA_mpi_yield_when_idle=1
}

teardown() {
    slurm_teardown
}

# check_adapter_ckpt CKPT — CKPT holds the adapter (adapter.h5), not a model or rank parts.
check_adapter_ckpt() {
    [[ -f $1/adapter.h5 ]] || fail "no $1/adapter.h5"
    [[ ! -e $1/model.h5 && ! -e $1/parts ]] || fail "$1 holds model.h5 or parts/: not an adapter-only checkpoint"
}

@test "dpo.sbatch: COMPLETED, dpo-align whatever BELLOWS_TRAIN_TOOL the environment holds, adapter checkpoints, the same losses as a local run" {
    # BELLOWS_TRAIN_TOOL=lora-tune left in the submitting environment (sbatch passes it on).
    submit_and_wait_out --cpus-per-task=1 --time=00:05:00 \
        --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_TRAIN_TOOL=lora-tune" \
        "$SCRIPT" "${LORA[@]}" --steps 20 --save-every 5 -o run
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    assert_equal "$(job_field JobName)" bellows-dpo

    run cat "$OUTFILE"
    assert_line --partial "bellows-dpo-align: job $JOBID on "
    assert_line --partial ", 1 task, 1 cpus, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line "bellows-dpo-align: running: $BELLOWS_BIN/dpo-align ${LORA[*]} --steps 20 --save-every 5 -o run --threads 1 --resume auto"
    assert_line --regexp ' info: base base/checkpoints/step-00000100 \(fingerprint [0-9a-f]+\), frozen; LoRA rank 4, '
    assert_line --regexp ' info: dpo: loss sigmoid, beta 0\.100000; reference: the base with the adapters off$'
    assert_line --regexp ' info: step 20/20 loss [0-9.]+ .* rewards beta\*dlogp chosen '
    refute_line --partial "bellows-lora-tune"
    refute_line --partial "resumed from"
    run grep -c '^bellows-dpo-align: OK: finished step 20 in [0-9]*s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000020$' "$OUTFILE"
    assert_output 1

    assert_equal "$(cat run/checkpoints/latest)" step-00000020
    check_adapter_ckpt run/checkpoints/step-00000020

    # The same losses, bit for bit, as dpo-align run here with the same arguments and threads.
    local_run local "${LORA[@]}" --steps 20 --save-every 5
    assert_equal "$(losses run/metrics.jsonl | wc -l)" 20
    assert_equal "$(losses run/metrics.jsonl)" "$(losses local/metrics.jsonl)"
}

@test "dpo.sbatch on 4 tasks, --tp 2 --dp 2: a new adapter and every weight (frozen reference copy), losses within 1e-5 of a local run" {
    local node kind one args
    for kind in lora full; do
        if [[ $kind == lora ]]; then
            one=("${LORA[@]}" --steps 20 --save-every 10)
        else
            one=("${FULL[@]}" --steps 20 --save-every 10)
        fi
        args=("${one[@]}" --tp 2 --dp 2)
        submit_and_wait_out --ntasks=4 --cpus-per-task=1 --time=00:10:00 \
            --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,$MPI_ENV" "$SCRIPT" "${args[@]}" -o "run-$kind"
        [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
            fail "$kind: job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
        node=$(job_field NodeList)
        run cat "$OUTFILE"
        assert_line --partial ", 4 tasks on 1 nodes, 1 cpus per task, restart 0, in $BATS_TEST_TMPDIR, "
        assert_line --regexp '^bellows-dpo-align: running: (srun --mpi=pmix --ntasks=4 |mpirun -np 4 )'
        assert_line --partial " $BELLOWS_BIN/dpo-align ${args[*]} -o run-$kind --threads 1 --resume auto"
        assert_line --regexp ' info: grid: 4 ranks = tp 2 x dp 2 x pp 1 '
        assert_line --regexp " info:   tp groups: \[0@$node 1@$node\] \[2@$node 3@$node\]$"
        run grep -c "^bellows-dpo-align: OK: finished step 20 in [0-9]*s; metrics: run-$kind/metrics\.jsonl, newest checkpoint: run-$kind/checkpoints/step-00000020\$" "$OUTFILE"
        assert_output 1
        if [[ $kind == lora ]]; then
            check_adapter_ckpt run-lora/checkpoints/step-00000020
        else
            grep -q ' info: dpo: loss sigmoid, beta 0\.100000; reference: a frozen copy of the policy' "$OUTFILE" ||
                fail "no frozen-copy reference line in $OUTFILE"
            [[ -f run-full/checkpoints/step-00000020/model.h5 && -d run-full/checkpoints/step-00000020/parts ]] ||
                fail "run-full/checkpoints/step-00000020 holds no model.h5 with rank parts"
        fi

        # One process, one thread, up to the rounding of the ranks' sums.
        local_run "local-$kind" "${one[@]}"
        assert_losses_close "$(losses "run-$kind/metrics.jsonl")" "$(losses "local-$kind/metrics.jsonl")" 20
    done
}

@test "dpo.sbatch, every weight with --precompute-ref, requeues itself after SIGUSR1: model checkpoint, the log-probabilities read back, the losses of an uninterrupted run" {
    submit --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" "$SCRIPT" "${LONG[@]}" -o run
    signal_when_training
    # Requeued: pending again, one restart; start it now instead of after SLURM's hold.
    # shellcheck disable=SC2016  # evaluated by wait_job
    wait_job '[[ $JOB_STATE == PENDING && $(job_field Restarts) == 1 ]]'

    local n ckpt
    n=$(stopped_step)
    ((n >= 3 && n < 300)) || fail "stopped at step $n, expected between 3 and 299"
    ckpt=run/checkpoints/$(printf 'step-%08d' "$n")
    assert_equal "$(cat run/checkpoints/latest)" "${ckpt##*/}"
    [[ -f $ckpt/model.h5 && ! -e $ckpt/adapter.h5 ]] || fail "$ckpt holds no model.h5 (or an adapter)"
    [[ -f run/reference/logps-train.h5 ]] || fail "no run/reference/logps-train.h5"

    start_requeued_now
    wait_job final_state
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 && $(job_field Restarts) == 1 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode) Restarts=$(job_field Restarts), expected COMPLETED ExitCode=0:0 Restarts=1"

    # Both runs of the job in its one output (--open-mode=append).
    run cat "$OUTFILE"
    assert_line --partial ", 1 task, 1 cpus, restart 0, in $BATS_TEST_TMPDIR, "
    assert_line --regexp ' info: reference log-probabilities of 200 train pairs computed in .* and kept in run/reference/logps-train\.h5$'
    assert_line --regexp '^bellows-dpo-align: SIGUSR1 received .*: passing it on to dpo-align \(it finishes the step, saves a checkpoint and stops\)$'
    assert_line --regexp " warn: signal 10 received: checkpointing at step $n and stopping$"
    assert_line --regexp " info: saved checkpoint $ckpt$"
    refute_line --partial "SIGTERM received"
    assert_line "bellows-dpo-align: STOPPED at step $n, checkpoint $ckpt; requeued as job $JOBID: it continues from the checkpoint when it runs again (BELLOWS_REQUEUE=0 to stop instead)"
    assert_line --partial ", 1 task, 1 cpus, restart 1, in $BATS_TEST_TMPDIR, "
    assert_line --regexp " info: resumed from $ckpt at step $n$"
    assert_line --regexp ' info: reference log-probabilities of the train pairs from run/reference/logps-train\.h5$'
    refute_line --partial "recomputing run/reference"
    run grep -c '^bellows-dpo-align: OK: finished step 300 in [0-9]*s; metrics: run/metrics\.jsonl, newest checkpoint: run/checkpoints/step-00000300$' "$OUTFILE"
    assert_output 1

    assert_equal "$(losses run/metrics.jsonl | wc -l)" 300
    assert_equal "$(losses run/metrics.jsonl)" "$(reference_losses)"
}

@test "dpo.sbatch given pretraining shards as --data: FAILED with ExitCode=2:0 and dpo-align's message once" {
    submit_and_wait_out --cpus-per-task=1 --time=00:01:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        "$SCRIPT" --policy base --new-lora --data tok --seq-len 64 --steps 5 -o run
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 2:0
    run grep -c "^dpo-align: 'tok' holds no tokens_preference shards (tok/train-r00000-00000\.h5 holds tokens_pretrain shards): tokenize-pack --mode preference writes them" "$OUTFILE"
    assert_output 1
    run grep -c '^bellows-dpo-align: FAILED: dpo-align exit status 2 after [0-9]*s (.*the line above from dpo-align says why)$' "$OUTFILE"
    assert_output 1
    [[ ! -e run ]] || fail "run directory 'run' exists after a usage error"
}

@test "dpo.sbatch without arguments: FAILED with ExitCode=2:0 and the usage line, in bellows-dpo-JOBID.out" {
    # No --output: the header's bellows-dpo-%j.out in the submit directory.
    submit_and_wait --time=00:01:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" "$SCRIPT"
    OUTFILE=$BATS_TEST_TMPDIR/bellows-dpo-$JOBID.out
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 2:0
    assert_equal "$(job_field JobName)" bellows-dpo
    run cat "$OUTFILE"
    assert_output "bellows-dpo-align: error: no arguments; usage: sbatch dpo.sbatch --policy CKPT [--lora ADAPTER | --new-lora] --data PREF_SHARDS --steps N -o RUNDIR [dpo-align options]"
}

@test "dpo.sbatch installed as PREFIX/share/bellows/sbatch/dpo.sbatch: PREFIX/bin/dpo-align without BELLOWS_BIN" {
    local prefix=$BATS_TEST_TMPDIR/prefix
    mkdir -p "$prefix/bin" "$prefix/share/bellows/sbatch"
    install -m 644 "$REPO_ROOT/sbatch/dpo.sbatch" "$REPO_ROOT/sbatch/pretrain.sbatch" "$prefix/share/bellows/sbatch/"
    ln -s "$BELLOWS_BIN/dpo-align" "$prefix/bin/dpo-align"
    submit_and_wait_out --cpus-per-task=1 --time=00:05:00 --export="ALL,BELLOWS_BIN=" \
        "$prefix/share/bellows/sbatch/dpo.sbatch" "${LORA[@]}" --steps 3 -o run
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    run cat "$OUTFILE"
    assert_line "bellows-dpo-align: running: $prefix/bin/dpo-align ${LORA[*]} --steps 3 -o run --threads 1 --resume auto"
    assert_line --regexp '^bellows-dpo-align: OK: finished step 3 in [0-9]+s; '
    check_adapter_ckpt run/checkpoints/step-00000003
}

@test "dpo.sbatch outside SLURM (bash dpo.sbatch ...): runs dpo-align even with BELLOWS_TRAIN_TOOL=pretrain set; copied away from pretrain.sbatch it says so, exit 2" {
    # $0 locates pretrain.sbatch when no SLURM job is around.
    run --separate-stderr env -u SLURM_JOB_ID BELLOWS_BIN="$BELLOWS_BIN" BELLOWS_TRAIN_TOOL=pretrain SLURM_CPUS_PER_TASK=1 \
        bash "$SCRIPT" "${LORA[@]}" --steps 3 -o run
    assert_success
    assert_line "bellows-dpo-align: running: $BELLOWS_BIN/dpo-align ${LORA[*]} --steps 3 -o run --threads 1 --resume auto"
    assert_line --regexp '^bellows-dpo-align: OK: finished step 3 in [0-9]+s; '
    check_adapter_ckpt run/checkpoints/step-00000003

    # Alone (and no installed bellows to fall back on): a clear error before anything runs.
    mkdir alone
    cp "$SCRIPT" alone/
    run --separate-stderr env -u SLURM_JOB_ID PATH=/usr/bin:/bin BELLOWS_BIN="$BELLOWS_BIN" bash alone/dpo.sbatch "${LORA[@]}" --steps 3 -o run2
    assert_failure 2
    assert_equal "$output" ""
    # shellcheck disable=SC2154  # stderr: set by run --separate-stderr
    [[ $stderr == "bellows-dpo-align: error: pretrain.sbatch not found (looked for alone/pretrain.sbatch $BELLOWS_BIN/../share/bellows/sbatch/pretrain.sbatch);"* ]] ||
        fail "unexpected message: $stderr"
    [[ ! -e run2 ]] || fail "run2 exists"
}
