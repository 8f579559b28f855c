#!/usr/bin/env bats
# Foreign readers: h5py + hdf5plugin from PyPI read every kind of file we write, bit for bit.

setup() { load helpers; need_venv; }

@test "h5py + hdf5plugin read every sample file exactly (and cannot without the zstd plugin)" {
    "$TESTBIN/write-sample-shards" "$BATS_TEST_TMPDIR" 5
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_h5py_reads.py" "$BATS_TEST_TMPDIR"
    assert_success
    assert_equal "$(grep -c '^ok ' <<< "$output")" "$(n_kinds)"
}

@test "the checker is not vacuous: a changed value is caught" {
    "$TESTBIN/write-sample-shards" "$BATS_TEST_TMPDIR" 5
    "$VENV/bin/python" - "$BATS_TEST_TMPDIR/lora_adapter.expected.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
name = sorted(d["datasets"])[0]
d["datasets"][name]["values"][3] += 1.0
json.dump(d, open(p, "w"))
PY
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_h5py_reads.py" "$BATS_TEST_TMPDIR"
    assert_failure
    assert_output --partial "lora_adapter.h5: lora/"
    assert_output --partial "element 3"
}
