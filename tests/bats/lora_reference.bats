#!/usr/bin/env bats
# LoRA in our hand-written Llama (libshared/nn/lora.hpp, LlamaModel with a LoraConfig) against
# PyTorch with HF peft's math: tests/helpers/llama-golden --lora R builds the small GQA model with
# adapters on a frozen base, gives every B non-zero values after init_lora (so that A's gradient
# is not 0), and writes the base, the adapters, logits, loss, the adapters' gradients, 10 AdamW
# losses (adapters only) and the base after those steps; tests/python/check_llama_golden.py
# wraps each targeted projection as peft's Linear LoRA layer does,
#   y = base(x) + lora_B(lora_A(dropout(x))) * scaling,
# with our counter-hash dropout masks, and requires logits, loss, every A and B gradient and the
# 10 losses within 1e-4 relative, and the base bit-identical after training. Torch is required:
# without it the check fails, it does not skip.

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

# check OUTDIR ARGS...: the PyTorch check, its output shown on failure.
check() {
    run "$VENV/bin/python" "$CHECK" "$@"
    echo "$output"
}

@test "lora golden: rank 4 on every projection, no dropout: logits, loss, A/B gradients and 10 AdamW losses match peft's math; the base stays bit-identical" {
    golden "$BATS_TEST_TMPDIR/g" --lora 4 --alpha 8
    assert_file_exists "$BATS_TEST_TMPDIR/g/lora/model.layers.0.self_attn.q_proj/A.npy"
    assert_file_exists "$BATS_TEST_TMPDIR/g/lora_grads/model.layers.1.mlp.down_proj/B.npy"
    assert_file_not_exists "$BATS_TEST_TMPDIR/g/grads"  # the frozen base has no gradient
    check "$BATS_TEST_TMPDIR/g"
    assert_success
    refute_line --partial FAIL
    # 2 layers x 7 projections x (A, B); the base: 21 tensors, untouched by the 10 steps.
    assert_line --regexp '^ok: LoRA rank 4 on q,k,v,o,gate,up,down, scale 2, dropout 0: 28 adapter tensors; base of 21 tensors bit-identical after 10 steps; .* worst relative errors: logits .*, loss .*, grads .*, adamw losses '
}

@test "lora golden: rank 2 on q,v with rsLoRA (alpha / sqrt(r)) and tied embeddings matches peft's math" {
    golden "$BATS_TEST_TMPDIR/g" --lora 2 --alpha 8 --rslora --targets v,q --tied
    assert_file_contains "$BATS_TEST_TMPDIR/g/config.json" '"tie_word_embeddings": true'
    assert_file_contains "$BATS_TEST_TMPDIR/g/lora.json" '"rslora": true'
    assert_file_not_exists "$BATS_TEST_TMPDIR/g/lora/model.layers.0.self_attn.k_proj/A.npy"
    check "$BATS_TEST_TMPDIR/g"
    assert_success
    refute_line --partial FAIL
    # 8 / sqrt(2), not 8 / 2; 2 layers x 2 projections x (A, B); no lm_head in the base.
    assert_line --regexp '^ok: LoRA rank 2 on q,v, scale 5\.65685 \(rslora\), dropout 0: 8 adapter tensors; base of 20 tensors bit-identical after 10 steps; '
}

@test "lora golden: dropout 0.1 with our hash masks (a new seed every step) matches; checked without the masks it fails" {
    golden "$BATS_TEST_TMPDIR/g" --lora 4 --alpha 8 --lora-dropout 0.1
    check "$BATS_TEST_TMPDIR/g"
    assert_success
    refute_line --partial FAIL
    assert_line --regexp '^ok: LoRA rank 4 on q,k,v,o,gate,up,down, scale 2, dropout 0\.1: 28 adapter tensors; base of 21 tensors bit-identical after 10 steps; '
    # The masks are really applied by our model: the same outputs recomputed as if the adapters
    # had no dropout disagree.
    cp -r "$BATS_TEST_TMPDIR/g" "$BATS_TEST_TMPDIR/nodrop"
    "$VENV/bin/python" - "$BATS_TEST_TMPDIR/nodrop/lora.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["dropout"] = 0.0
json.dump(j, open(sys.argv[1], "w"))
PY
    check "$BATS_TEST_TMPDIR/nodrop"
    assert_failure 1
    assert_line --regexp '^FAIL logits: relative error '
}

@test "lora golden: an A gradient off by 0.1% fails the check, which names that tensor only" {
    local name=lora/model.layers.1.self_attn.k_proj/A
    golden "$BATS_TEST_TMPDIR/g" --lora 4 --alpha 8
    check "$BATS_TEST_TMPDIR/g" --corrupt-grad "$name"
    assert_failure 1
    # 1e-3 give or take our own error (~1e-7): 9.99xe-04 or 1.00xe-03.
    assert_line --regexp "^FAIL grad ${name//./\\.}: relative error (9\.99[0-9]e-04|1\.00[0-9]e-03) > 0\.0001$"
    assert_equal "$(grep -c '^FAIL ' <<< "$output")" 1
    assert_line --regexp "^FAILED: LoRA rank 4 .* grads 1\.00e-03 \(${name//./\\.}\)"
}

@test "lora golden: a base weight one ulp off after training fails the bit-identity check, naming it" {
    local name=model.layers.0.mlp.up_proj.weight
    golden "$BATS_TEST_TMPDIR/g" --lora 4 --alpha 8
    "$VENV/bin/python" - "$BATS_TEST_TMPDIR/g/params_after/$name.npy" <<'PY'
import sys
import numpy as np
a = np.load(sys.argv[1])
a.flat[7] = np.nextafter(a.flat[7], np.float32(np.inf))
np.save(sys.argv[1], a)
PY
    check "$BATS_TEST_TMPDIR/g"
    assert_failure 1
    assert_line "FAIL base $name: changed during LoRA training (1 elements differ)"
    assert_equal "$(grep -c '^FAIL ' <<< "$output")" 1
    assert_line --regexp '^FAILED: LoRA rank 4 .* base of 21 tensors CHANGED after 10 steps; '
}
