#!/usr/bin/env bats
# dpo-align's preference losses (sigmoid with label smoothing, hinge, ipo), their gradients and
# rewards against a PyTorch implementation of TRL's DPOTrainer formulas (Debian's python3-torch).

setup() { load helpers; need_venv; }

@test "DPO losses, gradients and rewards equal TRL's formulas in PyTorch within 1e-5" {
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_dpo_loss.py" "$TESTBIN/dpo-loss"
    assert_success
    assert_output --partial "ok: "
}

@test "the check is not vacuous: a helper answering with another beta fails" {
    printf '#!/bin/bash\nsed "s/^\\(\\S*\\) \\(\\S*\\)/\\1 0.123/" | "%s"\n' "$TESTBIN/dpo-loss" > "$BATS_TEST_TMPDIR/wrong"
    chmod +x "$BATS_TEST_TMPDIR/wrong"
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_dpo_loss.py" "$BATS_TEST_TMPDIR/wrong"
    assert_failure 1
    assert_output --partial "FAIL "
}
