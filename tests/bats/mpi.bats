#!/usr/bin/env bats
# The same binary under mpirun: placement, and a failing rank taking the job down.

setup() { load helpers; }

@test "--version under mpirun -np 4: one line per rank, in order, printed once" {
    run --separate-stderr "$MPIRUN" -np 4 "$BIN/shard-inspect" --version
    assert_success
    assert_equal "$(grep -c '^shard-inspect (bellows)' <<< "$output")" 1
    for r in 0 1 2 3; do
        assert_line --regexp "^rank=$r size=4 local_rank=$r local_size=4 node=$(hostname -s) node_index=0 num_nodes=1 launcher=mpirun slurm_job=- restart=0$"
    done
}

@test "one failing rank stops the whole job: its message once, exit code 1, no hang" {
    SECONDS=0
    run --separate-stderr timeout 60 "$MPIRUN" -np 4 "$TESTBIN/fail-on-rank" --fail-rank 2
    assert_equal "$status" 1
    (( SECONDS < 30 )) || fail "took ${SECONDS}s"
    assert_equal "$(grep -c 'planted failure' <<< "$stderr")" 1
    [[ $stderr == *"fail-on-rank: rank 2: input.jsonl:17: planted failure on this rank"* ]] || fail "stderr: $stderr"
}

@test "rank 0 failing works the same way" {
    run --separate-stderr timeout 60 "$MPIRUN" -np 4 "$TESTBIN/fail-on-rank" --fail-rank 0
    assert_equal "$status" 1
    assert_equal "$(grep -c 'planted failure' <<< "$stderr")" 1
}

@test "usage errors under mpirun are printed once (by rank 0), exit 2" {
    run --separate-stderr timeout 60 "$MPIRUN" -np 4 "$BIN/shard-inspect" --bogus
    assert_equal "$status" 2
    assert_equal "$(grep -c "unrecognised option '--bogus'" <<< "$stderr")" 1
}
