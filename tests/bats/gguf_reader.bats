#!/usr/bin/env bats
# GGUF against llama.cpp's own Python package (gguf-py, in the hf venv): our reader dequantises
# every supported type bit-identically to gguf.quants, and gguf.GGUFReader reads what our writer
# writes (metadata of every type, F32/F16/BF16/Q8_0 tensors, default and custom alignment).

setup() { load helpers; }

check() {
    "${HF_VENV:?HF_VENV is not set to the hf virtualenv (make hf-venv)}/bin/python" \
        "$REPO_ROOT/tests/python/check_gguf_dequant.py" --bin "$TESTBIN/gguf-tensors" --dir "$BATS_TEST_TMPDIR/work" "$@"
}

@test "gguf-py's files read bit-identically, and gguf-py reads ours" {
    run check
    assert_success
    assert_output --partial "all checks passed"
    # Every type was compared: nine dequantised types (Q6_K twice) and both sample alignments.
    local t
    for t in F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q4_K Q5_K Q6_K; do
        assert_output --partial "ok dequant $t "
    done
    assert_equal "$(grep -c '^ok dequant ' <<< "$output")" 11
    assert_equal "$(grep -c 'bytes equal numpy/gguf.quants' <<< "$output")" 10
    assert_equal "$(grep -c '^FAIL' <<< "$output")" 0
}

@test "the checker is not vacuous: one flipped bit in our output or in our file is caught" {
    run check --corrupt-ours w.q5_k
    assert_failure
    assert_output --partial "FAIL dequant Q5_K w.q5_k: element 0"
    run check --corrupt-sample
    assert_failure
    assert_output --partial "FAIL [align 32] sample.q8_0_4d: bytes differ"
}

@test "gguf-tensors refuses a damaged file with one line naming it" {
    "$TESTBIN/gguf-tensors" --write-sample "$BATS_TEST_TMPDIR/s.gguf"
    head -c 100 "$BATS_TEST_TMPDIR/s.gguf" > "$BATS_TEST_TMPDIR/cut.gguf"
    run "$TESTBIN/gguf-tensors" "$BATS_TEST_TMPDIR/cut.gguf" "$BATS_TEST_TMPDIR/out"
    assert_failure 1
    assert_output --regexp "^gguf-tensors: .*/cut.gguf: header: [0-9]+ metadata entries cannot fit"
    assert_equal "${#lines[@]}" 1
}
