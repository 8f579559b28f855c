#!/usr/bin/env bats
# bats file_tags=slurm
#
# sbatch/convert.sbatch on the test cluster of tests/slurm/: a GGUF and an HF export of a model
# pretrained here come out COMPLETED and identical to the same conversions run locally; an
# import of that export comes back; a job with bad input ends FAILED with ckpt-convert's exit
# code and message in its output and leaves no output. Environment as in tokenize.bats.

bats_require_minimum_version 1.5.0

setup_file() {
    [[ -x ${BELLOWS_BIN:-}/pretrain ]] || return 0
    cd "$BATS_FILE_TMPDIR" || return 1
    python3 - <<'PY' || return 1
import json, random
random.seed(9)
words = "the cluster converts a model for serving while the scheduler waits".split()
with open("corpus.jsonl", "w") as f:
    for i in range(200):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(random.randint(20, 120)))}) + "\n")
PY
    "$BELLOWS_BIN/tokenize-pack" --train-vocab-size 280 --mode pretrain --seq-len 64 --progress off corpus.jsonl -o tok 2>tok.log &&
        "$BELLOWS_BIN/pretrain" --data tok --model tiny --seq-len 64 --micro-batch 4 --steps 5 --progress off -o run 2>run.log
}

setup() {
    load helpers # slurm_setup, slurm_teardown, submit_and_wait, job_field
    slurm_setup ckpt-convert
    [[ -f $BATS_FILE_TMPDIR/run/checkpoints/latest ]] || fail "setup_file trained no model: $(cat "$BATS_FILE_TMPDIR"/*.log 2>&1)"
    ln -s "$BATS_FILE_TMPDIR/run" run
    SCRIPT=$REPO_ROOT/sbatch/convert.sbatch
}

teardown() {
    slurm_teardown
}

job() {
    submit_and_wait --time=00:05:00 --output="$BATS_TEST_TMPDIR/convert-%j.out" --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" "$SCRIPT" "$@"
    OUTFILE=$BATS_TEST_TMPDIR/convert-$JOBID.out
}

@test "convert.sbatch: gguf and hf exports COMPLETED, byte-identical to local runs; the hf export imports back" {
    job --from run --to gguf --dtype q8_0 -o model.gguf
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] || fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode)"
    run cat "$OUTFILE"
    assert_line --partial "bellows-convert: job $JOBID on "
    assert_line "bellows-convert: running: $BELLOWS_BIN/ckpt-convert --from run --to gguf --dtype q8_0 -o model.gguf"
    assert_line --regexp ' info: gguf export to model\.gguf: 21 tensors, read .* MB/s\)$'
    assert_line --regexp '^bellows-convert: OK: finished in [0-9]+s$'
    "$BELLOWS_BIN/ckpt-convert" --progress off --from run --to gguf --dtype q8_0 -o local.gguf 2>/dev/null
    cmp model.gguf local.gguf

    job --from run --to hf -o hf
    [[ $JOB_STATE == COMPLETED ]] || fail "job $JOBID ended $JOB_STATE"
    "$BELLOWS_BIN/ckpt-convert" --progress off --from run --to hf -o local-hf 2>/dev/null
    cmp hf/model.safetensors local-hf/model.safetensors
    cmp hf/tokenizer.json local-hf/tokenizer.json

    job --from-hf hf -o back
    [[ $JOB_STATE == COMPLETED ]] || fail "job $JOBID ended $JOB_STATE"
    [[ -f back/checkpoints/step-00000000/model.h5 && -f back/tokenizer/tokenizer.json ]] || fail "no imported run"
}

@test "convert.sbatch with bad input: FAILED with ExitCode 1, the reason in the output, no output left" {
    mkdir broken
    cp "$REPO_ROOT/tests/slurm/convert.bats" broken/config.json  # not JSON
    job --from-hf broken -o never
    [[ $JOB_STATE == FAILED ]] || fail "job $JOBID ended $JOB_STATE"
    run cat "$OUTFILE"
    assert_line --regexp "^ckpt-convert: .*broken/config.json"
    assert_line --partial "bellows-convert: FAILED: ckpt-convert exit status"
    [[ ! -e never ]] || fail "an output was left"
    job
    [[ $JOB_STATE == FAILED && $(job_field ExitCode) == 2:0 ]] || fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode)"
}
