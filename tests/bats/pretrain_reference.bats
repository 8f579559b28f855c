#!/usr/bin/env bats
# Our hand-written Llama (libshared/nn, forward and backward without autograd) against PyTorch:
# tests/helpers/llama-golden runs a small GQA model on a packed batch (two documents in one row,
# one ignored target) and writes parameters, logits, loss, gradients and 10 AdamW losses;
# tests/python/check_llama_golden.py recomputes them with HF's LlamaForCausalLM written in
# PyTorch and requires every one within 1e-4 relative. Torch is required: without it the check
# fails, it does not skip.

setup() {
    load helpers
    need_venv
    GOLDEN=$TESTBIN/llama-golden
    CHECK=$REPO_ROOT/tests/python/check_llama_golden.py
    [[ -x $GOLDEN ]] || fail "$GOLDEN is not built (make builds every tests/helpers/*.cpp)"
}

# llama-golden OUTDIR ARGS..., which must succeed.
golden() {
    run "$GOLDEN" "$@"
    assert_success
    assert_output --partial "written to $1"
}

@test "llama golden: untied, plain RoPE: logits, loss, every gradient and 10 AdamW losses match PyTorch" {
    golden "$BATS_TEST_TMPDIR/g"
    run "$VENV/bin/python" "$CHECK" "$BATS_TEST_TMPDIR/g"
    echo "$output"
    assert_success
    refute_line --partial FAIL
    # 21 tensors: embedding, 9 per layer x 2, final norm, lm_head.
    assert_line --regexp '^ok: 21 tensors, .* worst relative errors: logits .*, loss .*, grads .*, adamw losses '
}

@test "llama golden: tied embeddings and Llama 3 rope_scaling match PyTorch" {
    golden "$BATS_TEST_TMPDIR/g" --tied --rope-scaling
    assert_file_contains "$BATS_TEST_TMPDIR/g/config.json" '"rope_type": "llama3"'
    assert_file_contains "$BATS_TEST_TMPDIR/g/config.json" '"tie_word_embeddings": true'
    run "$VENV/bin/python" "$CHECK" "$BATS_TEST_TMPDIR/g"
    echo "$output"
    assert_success
    refute_line --partial FAIL
    assert_line --regexp '^ok: 20 tensors, '  # no lm_head.weight: the embedding serves
}

@test "llama golden: a gradient off by 0.1% fails the check, which names that tensor only" {
    local name=model.layers.1.self_attn.k_proj.weight
    golden "$BATS_TEST_TMPDIR/g"
    run "$VENV/bin/python" "$CHECK" "$BATS_TEST_TMPDIR/g" --corrupt-grad "$name"
    echo "$output"
    assert_failure 1
    assert_line --regexp "^FAIL grad $name: relative error 1\.0[0-9]*e-03 > 0\.0001$"
    assert_equal "$(grep -c '^FAIL ' <<< "$output")" 1
    assert_line --regexp "^FAILED: 21 tensors, .* grads 1\.00e-03 \($name\)"
}
