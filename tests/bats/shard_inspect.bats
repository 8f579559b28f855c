#!/usr/bin/env bats
# shard-inspect on real files written by libshared, good and damaged.

setup() {
    load helpers
    SAMPLES=$BATS_TEST_TMPDIR/samples
    mkdir -p "$SAMPLES"
    "$TESTBIN/write-sample-shards" "$SAMPLES" 11
}

@test "describes every kind with provenance, shapes and filters" {
    run "$BIN/shard-inspect" "$SAMPLES"
    assert_success
    for kind in docs tokens_pretrain tokens_sft tokens_preference checkpoint lora_adapter; do
        assert_line --regexp "^$SAMPLES/$kind.h5: $kind v1, written by sample-shards"
    done
    assert_line --regexp '^  text_data +uint8 +\[[0-9]+\] +chunks \[1048576\] +zstd\(3\)\+fletcher32'
    assert_line --regexp '^  tokens +uint32 +\[300, 128\]'
}

@test "--verify reads every chunk of every file" {
    run --separate-stderr "$BIN/shard-inspect" --verify --progress off "$SAMPLES"
    assert_success
    [[ $stderr == *"$(n_kinds) of $(n_kinds) files verified"* ]] || fail "stderr: $stderr"
}

@test "--json gives one parseable object per file" {
    need_venv
    run "$BIN/shard-inspect" --json "$SAMPLES/docs.h5" "$SAMPLES/checkpoint.h5"
    assert_success
    run "$VENV/bin/python" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert [r["schema"] for r in rows] == ["docs", "checkpoint"], rows
d = {x["name"]: x for x in rows[0]["datasets"]}
assert d["text_offsets"]["shape"] == [rows[0]["attributes"]["num_docs"] + 1]
assert d["text_data"]["filters"] == ["zstd(3)", "fletcher32"]
print("ok")' <<< "$output"
    assert_success
    assert_output ok
}

@test "a flipped byte in a chunk fails --verify with exit 1 naming file and dataset; other files still pass" {
    need_venv
    "$VENV/bin/python" - "$SAMPLES/tokens_pretrain.h5" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    info = f["tokens"].id.get_chunk_info(0)
off = info.byte_offset + info.size // 2
with open(path, "r+b") as fh:
    fh.seek(off); b = fh.read(1); fh.seek(off); fh.write(bytes([b[0] ^ 0xFF]))
PY
    run --separate-stderr "$BIN/shard-inspect" --verify --progress off "$SAMPLES"
    assert_equal "$status" 1
    [[ $stderr == *"$SAMPLES/tokens_pretrain.h5: dataset 'tokens': cannot read rows"* ]] || fail "stderr: $stderr"
    [[ $stderr == *"$(($(n_kinds) - 1)) of $(n_kinds) files verified, 1 failed"* ]] || fail "stderr: $stderr"
    assert_output --partial "$SAMPLES/docs.h5: docs v1"
}

@test "files that are not ours, truncated or missing: clear errors and documented exit codes" {
    echo "hello" > "$BATS_TEST_TMPDIR/notes.h5"
    run --separate-stderr "$BIN/shard-inspect" "$BATS_TEST_TMPDIR/notes.h5"
    assert_equal "$status" 1
    assert_equal "$stderr" "shard-inspect: $BATS_TEST_TMPDIR/notes.h5: not an HDF5 file"

    head -c 20000 "$SAMPLES/docs.h5" > "$BATS_TEST_TMPDIR/cut.h5"
    run --separate-stderr "$BIN/shard-inspect" --verify "$BATS_TEST_TMPDIR/cut.h5"
    assert_equal "$status" 1
    [[ $stderr == "shard-inspect: $BATS_TEST_TMPDIR/cut.h5: "* ]] || fail "stderr: $stderr"

    run --separate-stderr "$BIN/shard-inspect" "$BATS_TEST_TMPDIR/absent.h5"
    assert_equal "$status" 2
    assert_equal "$stderr" "shard-inspect: input '$BATS_TEST_TMPDIR/absent.h5' does not exist"

    mkdir "$BATS_TEST_TMPDIR/empty"
    run --separate-stderr "$BIN/shard-inspect" "$BATS_TEST_TMPDIR/empty"
    assert_equal "$status" 2
    [[ $stderr == *"contains no .h5 file"* ]] || fail "stderr: $stderr"

    run --separate-stderr "$BIN/shard-inspect"
    assert_equal "$status" 2
    [[ $stderr == *"no input"* ]] || fail "stderr: $stderr"
}

@test "--schema prints the embedded schema; unknown kinds are a usage error" {
    run "$BIN/shard-inspect" --schema tokens_sft
    assert_success
    diff <(echo "$output") "$REPO_ROOT/schemas/tokens_sft.json"
    run --separate-stderr "$BIN/shard-inspect" --schema nope
    assert_equal "$status" 2
}

@test "under mpirun -np 4 the files are shared out and reported once, in input order" {
    run --separate-stderr "$MPIRUN" -np 4 "$BIN/shard-inspect" --verify --progress off "$SAMPLES"
    assert_success
    assert_equal "$(grep -c ': .* v1, written by' <<< "$output")" "$(n_kinds)"
    run --separate-stderr "$BIN/shard-inspect" --verify --progress off "$SAMPLES"
    single=$output
    run --separate-stderr "$MPIRUN" -np 4 "$BIN/shard-inspect" --verify --progress off "$SAMPLES"
    diff <(echo "$single") <(echo "$output")
}
