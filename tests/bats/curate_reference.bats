#!/usr/bin/env bats
# curate-dedup's fuzzy dedup against references: datasketch (PyPI) on the same shingles and
# parameters, and brute-force Jaccard on a corpus with planted near-duplicates (issue 3).

setup() { load helpers; need_venv; }

# A minhash-dump that lies: the real one's JSON, edited by the Python snippet $1.
lying_dump() {
    cat > "$BATS_TEST_TMPDIR/lying-dump" <<EOF
#!/bin/bash
set -o pipefail
"$TESTBIN/minhash-dump" "\$@" | "$VENV/bin/python" -c 'import json, sys
d = json.load(sys.stdin)
$1
print(json.dumps(d))'
EOF
    chmod +x "$BATS_TEST_TMPDIR/lying-dump"
}

# at_least LABEL METRIC MIN: the line "LABEL: METRIC X ..." exists and X >= MIN.
at_least() {
    local v
    v=$(sed -nE "s/^$1: $2 ([0-9.]+) .*/\\1/p" <<< "$output")
    [[ -n $v ]] || fail "no line '$1: $2 ...' in: $output"
    awk -v v="$v" -v m="$3" 'BEGIN { exit !(v >= m) }' || fail "$1: $2 $v < $3"
}

@test "MinHash-LSH agrees with datasketch: shingles, hashes, signatures, candidate pairs, (b, r)" {
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_datasketch.py" "$TESTBIN/minhash-dump" "$BATS_TEST_TMPDIR"
    assert_success
    assert_line --regexp '^ok optimal params: 20 .* identical to datasketch _optimal_param'
    assert_line --regexp '^ok signatures: [0-9]+ documents x 128 permutations bit-identical to datasketch \(word:5\)$'
    assert_line --regexp '^ok signatures: [0-9]+ documents x 256 permutations bit-identical to datasketch \(char:24\)$'
    assert_equal "$(grep -c '^ok shingles: ' <<< "$output")" 2
    assert_equal "$(grep -c '^ok hashes: ' <<< "$output")" 2
    assert_equal "$(grep -c '^ok candidate pairs: .* identical to datasketch MinHashLSH$' <<< "$output")" 6
}

@test "the datasketch check is not vacuous: a changed signature value is caught" {
    lying_dump 'd["docs"][5]["signature"][7] ^= 1'
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_datasketch.py" "$BATS_TEST_TMPDIR/lying-dump" "$BATS_TEST_TMPDIR"
    assert_failure
    assert_output --partial "doc 5: signature differs at permutation 7"
}

@test "the datasketch check is not vacuous: a missing candidate pair is caught" {
    lying_dump 'd["candidate_pairs"] = d["candidate_pairs"][1:]'
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_datasketch.py" "$BATS_TEST_TMPDIR/lying-dump" "$BATS_TEST_TMPDIR"
    assert_failure
    assert_output --partial "candidate pairs differ"
}

@test "fuzzy dedup vs brute-force Jaccard: recall >= 0.95 above t+0.05, precision >= 0.95 (verified), 1 = 2 ranks" {
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_fuzzy_ground_truth.py" "$BIN/curate-dedup" "$MPIRUN" "$BATS_TEST_TMPDIR"
    echo "$output"  # all the numbers, shown when an assertion below fails
    for ranks in "1 rank" "2 ranks"; do
        at_least "no-verify $ranks" recall 0.95
        at_least "verify $ranks" recall 0.95
        at_least "verify $ranks" precision 0.95
        assert_line --regexp "^no-verify $ranks: precision [0-9.]+ "
    done
    assert_line --regexp '^ok no-verify: 1 and 2 ranks give identical removals and kept ids \([0-9]+ removed\)$'
    assert_line --regexp '^ok verify: 1 and 2 ranks give identical removals and kept ids \([0-9]+ removed\)$'
    assert_success
}
