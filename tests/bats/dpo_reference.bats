#!/usr/bin/env bats
# dpo-align's objective end to end through our hand-written Llama against PyTorch with TRL's DPO
# formulas. tests/helpers/dpo-golden builds the small GQA test model, writes four preference pairs
# of other prompt and response lengths (one without a prompt, one filling its row) to a
# tokens_preference shard, reads them back through PreferenceData (chosen row 2i, rejected 2i + 1,
# prompt and padding masked), and runs a step of two micro-batches exactly as the trainer does:
# the reference's forward (pipeline_forward) -> row_logps; the policy's forward with grad_scale 1
# -> row_logps -> dpo_micro_batch -> scale_logit_grads -> backward (pipeline_train). Policies:
# LoRA adapters against the base with the adapters off (--new-lora), LoRA against a frozen
# reference adapter of other values (--lora), and every weight against a frozen copy of the
# unperturbed weights. Cases: sigmoid with label smoothing 0 and 0.1, ipo (per-token mean
# log-probabilities), hinge (beta 0.1, and beta 2 where some pairs are past the margin), each with
# sft_weight 0 and 0.5 (RPO's NLL on the chosen tokens). tests/python/check_dpo_golden.py
# lays the pairs out as TRL does, runs check_llama_golden.py's PyTorch Llama (and peft's LoRA
# layer) in float64 with autograd, and requires the objective and every trainable tensor's
# gradient within 1e-5 relative, the row log-probabilities, rewards and DpoStats' sums likewise
# (rewards against beta x the log-probabilities they are differences of), and PreferenceData's
# rows equal to TRL's. Measured (x86-64, AVX2): loss <= 1.7e-6, gradients <= 7e-7, log-probs
# <= 4e-8. Torch is required: without it the check fails, it does not skip.

setup() {
    load helpers
    need_venv
    GOLDEN=$TESTBIN/dpo-golden
    CHECK=$REPO_ROOT/tests/python/check_dpo_golden.py
    [[ -x $GOLDEN ]] || fail "$GOLDEN is not built (make builds every tests/helpers/*.cpp)"
}

# golden POLICY: the helper's output for POLICY in $BATS_TEST_TMPDIR/POLICY, which must succeed.
golden() {
    run "$GOLDEN" "$BATS_TEST_TMPDIR/$1" --policy "$1"
    assert_success
    assert_output --partial "10 cases"
    assert_output --partial "written to $BATS_TEST_TMPDIR/$1"
}

# check DIR ARGS...: the PyTorch check, its output shown on failure.
check() {
    run "$VENV/bin/python" "$CHECK" "$@"
    echo "$output"
}

# Every case passes, with its hinge cases (beta 2) having pairs on both sides of the margin.
assert_all_cases_ok() {
    assert_success
    refute_line --partial FAIL
    assert_equal "$(grep -c '^ok [a-z]' <<< "$output")" 10
    assert_line --regexp '^ok hinge-beta2: hinge, beta 2, .*, [1-3] of 4 pairs inside the margin; '
    assert_line --regexp "^ok: $1, 10 cases, 4 pairs in 2 micro-batches; worst relative errors: loss .*, grads .* \(tolerance 1e-05\)$"
}

@test "dpo golden: LoRA policy against the base with its adapters off: loss, rewards and every A/B gradient match TRL's formulas within 1e-5" {
    golden lora-base
    assert_file_not_exists "$BATS_TEST_TMPDIR/lora-base/ref_lora"
    assert_file_exists "$BATS_TEST_TMPDIR/lora-base/cases/ipo-sft0.5/grads/lora/model.layers.1.mlp.down_proj/B.npy"
    check "$BATS_TEST_TMPDIR/lora-base"
    assert_all_cases_ok lora-base
}

@test "dpo golden: LoRA policy against a frozen reference adapter matches; checked as if the reference were the bare base it fails" {
    golden lora-ref
    assert_file_exists "$BATS_TEST_TMPDIR/lora-ref/ref_lora/model.layers.0.self_attn.q_proj/A.npy"
    check "$BATS_TEST_TMPDIR/lora-ref"
    assert_all_cases_ok lora-ref
    # Our reference pass really runs the reference adapter: recomputed without it, the reference
    # log-probabilities (and so the losses) disagree.
    sed -i 's/"lora-ref"/"lora-base"/' "$BATS_TEST_TMPDIR/lora-ref/policy.json"
    check "$BATS_TEST_TMPDIR/lora-ref"
    assert_failure 1
    assert_line --regexp '^FAIL sigmoid: pair 0 reference_chosen logp \(ours .*\): relative error '
    assert_line --regexp '^FAILED: lora-base, 10 cases, '
}

@test "dpo golden: every weight trained against a frozen copy of the starting weights matches within 1e-5" {
    golden full
    assert_file_exists "$BATS_TEST_TMPDIR/full/policy_params/model.embed_tokens.weight.npy"
    assert_file_exists "$BATS_TEST_TMPDIR/full/cases/sigmoid/grads/params/lm_head.weight.npy"
    check "$BATS_TEST_TMPDIR/full"
    assert_all_cases_ok full
}

@test "dpo golden: a gradient off by 2e-5 fails the check, which names that tensor only" {
    local name=lora/model.layers.0.self_attn.v_proj/A
    golden lora-base
    check "$BATS_TEST_TMPDIR/lora-base" --corrupt-grad "ipo:$name:1.00002"
    assert_failure 1
    assert_line --regexp "^FAIL ipo: grad ${name//./\\.}: relative error (1\.99[0-9]|2\.0[01][0-9])e-05 > 1e-05$"
    assert_equal "$(grep -c '^FAIL ' <<< "$output")" 1
    assert_line --regexp '^FAILED ipo: '
    assert_equal "$(grep -c '^ok [a-z]' <<< "$output")" 9
}

@test "dpo golden: the label smoothing matters: ours with 0.1 checked as if it were 0 fails that case's loss and gradients" {
    golden full
    local r=$BATS_TEST_TMPDIR/full/cases/sigmoid-ls0.1/result.json
    assert_file_contains "$r" '"label_smoothing": 0.1'
    sed -i 's/"label_smoothing": 0.1/"label_smoothing": 0.0/' "$r"
    check "$BATS_TEST_TMPDIR/full"
    assert_failure 1
    assert_line --regexp '^FAIL sigmoid-ls0\.1: loss: relative error '
    assert_line --regexp '^FAIL sigmoid-ls0\.1: grad params/lm_head\.weight: relative error '
    assert_line --regexp '^FAILED sigmoid-ls0\.1: '
    assert_equal "$(grep -c '^ok [a-z]' <<< "$output")" 9
}
