#!/usr/bin/env bats
# pretrain: determinism, exact resume after kill -9 and after SIGTERM, checkpoints, evaluation,
# --init-from, --dry-run, and its errors. Numerics against PyTorch: pretrain_reference.bats.

setup_file() {
    load helpers
    export SHARED=$BATS_FILE_TMPDIR
    make_pretrain_shards "$SHARED" 5
}

setup() {
    load helpers
    D=$BATS_TEST_TMPDIR
    TRAIN=(train)
}

# pretrain on the shared shards with this file's defaults; a test's own --seq-len, --lr,
# --warmup-steps or --global-batch replaces the default.
train() {
    local extra=()
    [[ " $* " == *" --seq-len "* ]] || extra+=(--seq-len 64)
    [[ " $* " == *" --lr "* ]] || extra+=(--lr 3e-3)
    [[ " $* " == *" --warmup-steps "* ]] || extra+=(--warmup-steps 2)
    [[ " $* " == *" --global-batch "* ]] || extra+=(--global-batch 8)
    # exec: callers run this in a subshell (run, &), and a signal must reach pretrain itself.
    exec "$BIN/pretrain" --data "$SHARED/tok" --model tiny --micro-batch 4 --threads 1 "${extra[@]}" "$@"
}

@test "two runs with the same seed give bit-identical losses; the loss goes down" {
    run "${TRAIN[@]}" --steps 12 -o "$D/a"
    assert_success
    run "${TRAIN[@]}" --steps 12 -o "$D/b"
    assert_success
    assert_equal "$(losses "$D/a/metrics.jsonl")" "$(losses "$D/b/metrics.jsonl")"
    assert_equal "$(losses "$D/a/metrics.jsonl" | wc -l)" 12
    first=$(losses "$D/a/metrics.jsonl" | head -1 | cut -d' ' -f2)
    last=$(losses "$D/a/metrics.jsonl" | tail -1 | cut -d' ' -f2)
    python3 -c "import sys; assert $last < $first - 0.5, ($first, $last)"
    # Every step record carries what the issue asks for.
    run python3 -c "
import json
r = [json.loads(l) for l in open('$D/a/metrics.jsonl') if '\"step\"' in l][0]
for k in ('loss', 'lr', 'grad_norm', 'tokens_per_s', 'flops_per_s', 'mfu'): assert k in r, k
for k in ('compute', 'communication', 'data'): assert k in r['time_s'], k
print('ok')"
    assert_output ok
    assert_file_exists "$D/a/tokenizer/tokenizer.json"
    assert_file_exists "$D/a/config.json"
}

@test "kill -9 in the middle, --resume auto: the remaining losses equal an uninterrupted run's" {
    run "${TRAIN[@]}" --steps 150 --save-every 10 -o "$D/full"
    assert_success
    "${TRAIN[@]}" --steps 150 --save-every 10 -o "$D/killed" 2>"$D/killed.log" &
    pid=$!
    for _ in $(seq 1200); do [[ -d $D/killed/checkpoints/step-00000020 ]] && break; sleep 0.01; done
    kill -9 $pid
    wait $pid || true
    [[ $(cat "$D/killed/checkpoints/latest") != step-00000150 ]] || fail "the run finished before it was killed"
    run "${TRAIN[@]}" --steps 150 --save-every 10 -o "$D/killed" --resume auto
    assert_success
    assert_output --partial "resumed from"
    assert_equal "$(losses "$D/killed/metrics.jsonl")" "$(losses "$D/full/metrics.jsonl")"
    # Only the newest 3 checkpoints are kept, and no temporary directory is left behind.
    assert_equal "$(ls "$D/killed/checkpoints" | grep -c '^step-')" 3
    run bash -c "ls -a '$D/killed/checkpoints' | grep partial"
    assert_failure
}

@test "SIGTERM: the step finishes, a checkpoint is saved, exit 75; the resumed run matches" {
    run "${TRAIN[@]}" --steps 40 -o "$D/full"
    assert_success
    "${TRAIN[@]}" --steps 40 -o "$D/term" 2>"$D/term.log" &
    pid=$!
    for _ in $(seq 600); do [[ -s $D/term/metrics.jsonl ]] && grep -q '"step":3' "$D/term/metrics.jsonl" && break; sleep 0.05; done
    kill -TERM $pid
    status=0
    wait $pid || status=$?
    assert_equal "$status" 75
    grep -q "checkpointing at step" "$D/term.log"
    stopped=$(cat "$D/term/checkpoints/latest")
    [[ $stopped != step-00000040 ]] || fail "the run finished before SIGTERM"
    run "${TRAIN[@]}" --steps 40 -o "$D/term" --resume auto
    assert_success
    assert_equal "$(losses "$D/term/metrics.jsonl")" "$(losses "$D/full/metrics.jsonl")"
}

@test "a corrupt newest checkpoint is skipped with a warning; the older one is used" {
    run "${TRAIN[@]}" --steps 6 --save-every 3 -o "$D/r"
    assert_success
    truncate -s 2000 "$D/r/checkpoints/step-00000006/model.h5"
    run "${TRAIN[@]}" --steps 8 --save-every 3 -o "$D/r" --resume auto
    assert_success
    assert_output --partial "skipping checkpoint $D/r/checkpoints/step-00000006"
    assert_output --partial "resumed from $D/r/checkpoints/step-00000003"
}

@test "validation loss is logged; --init-from starts at step 0 from the weights; --dry-run plans an 8B model" {
    run "${TRAIN[@]}" --steps 4 --eval-every 2 -o "$D/e"
    assert_success
    assert_output --partial "validation loss"
    assert_equal "$(grep -c '"event":"eval"' "$D/e/metrics.jsonl")" 2
    run "${TRAIN[@]}" --steps 2 --init-from "$D/e" -o "$D/i"
    assert_success
    assert_output --partial "initialised from"
    assert_equal "$(losses "$D/i/metrics.jsonl" | wc -l)" 2
    run "$BIN/pretrain" --model llama3-8b --seq-len 8192 --micro-batch 1 --global-batch 512 --dry-run
    assert_success
    assert_output --partial "8030261248 parameters"
    assert_output --partial "accumulation steps"
}

@test "bad input: clear one-line errors with the right exit codes, nothing lost" {
    run "${TRAIN[@]}" --steps 2 --seq-len 100 -o "$D/x"
    assert_failure 2
    assert_output --partial "--seq-len 100 is longer than the shards' samples (64 tokens)"
    run "${TRAIN[@]}" --steps 2 --global-batch 6 -o "$D/x"
    assert_failure 2
    assert_output --partial "--global-batch 6 is not a multiple of --micro-batch 4"
    run "$BIN/pretrain" --data "$SHARED/tok" --seq-len 64 --steps 2 --model gpt-9 -o "$D/x"
    assert_failure 2
    assert_output --partial "unknown preset 'gpt-9'"
    run "${TRAIN[@]}" --steps 2 -o "$D/ok"
    assert_success
    run "${TRAIN[@]}" --steps 2 -o "$D/ok"
    assert_failure 2
    assert_output --partial "already holds checkpoints"
    # Shards of another tokenizer against a run's checkpoint.
    run "$BIN/pretrain" --data "$SHARED/tok-other" --model tiny --seq-len 64 --micro-batch 4 --global-batch 8 --steps 4 -o "$D/ok" --resume auto
    assert_failure 2
    assert_output --partial "made with tokenizer"
    assert_file_exists "$D/ok/checkpoints/step-00000002/model.h5"
    run "$BIN/pretrain" --data "$D/nothing" --steps 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "does not exist"
}

@test "a non-finite loss stops with the step and the last good checkpoint; --skip-nonfinite goes on" {
    run "${TRAIN[@]}" --steps 3 --save-every 1 --lr 1e30 --warmup-steps 0 --grad-clip 0 -o "$D/nan"
    assert_failure 1
    assert_output --regexp "step [0-9]+: the loss or gradient is not finite"
    assert_output --partial "Last good checkpoint: $D/nan/checkpoints/step-0000000"
    run "${TRAIN[@]}" --steps 3 --lr 1e30 --warmup-steps 0 --grad-clip 0 --skip-nonfinite -o "$D/skip"
    assert_success
    assert_output --partial "update skipped"
}
