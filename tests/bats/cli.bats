#!/usr/bin/env bats
# The contract every tool shares: --help, --version, usage errors, config files, exit codes.

setup() { load helpers; }

@test "build/bin holds the tools" {
    run all_tools
    assert_success
    assert_output --partial shard-inspect
}

@test "every tool: --help exits 0 with usage, options, examples and exit codes" {
    for t in $(all_tools); do
        run "$BIN/$t" --help
        assert_success
        assert_output --partial "Usage: $t"
        assert_output --partial "Common options"
        assert_output --partial "Examples:"
        assert_output --partial "Exit codes"
    done
}

@test "every tool: a bogus flag exits 2 with one line naming the flag" {
    for t in $(all_tools); do
        run --separate-stderr "$BIN/$t" --no-such-flag
        assert_equal "$status" 2
        assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
        [[ $stderr == "$t: "*"--no-such-flag"* ]] || fail "unexpected message: $stderr"
    done
}

@test "every tool: a bad value exits 2 naming the flag" {
    for t in $(all_tools); do
        run --separate-stderr "$BIN/$t" --log-level loud
        assert_equal "$status" 2
        [[ $stderr == *"--log-level"*"loud"* ]] || fail "unexpected message: $stderr"
        run --separate-stderr "$BIN/$t" --progress sometimes
        assert_equal "$status" 2
        [[ $stderr == *"--progress"* ]] || fail "unexpected message: $stderr"
    done
}

@test "every tool: --version names version, git revision, CUDA, MPI, HDF5 and this process" {
    for t in $(all_tools); do
        run "$BIN/$t" --version
        assert_success
        assert_line --regexp "^$t \(bellows\) [0-9]+\.[0-9]+\.[0-9]+$"
        assert_line --regexp '^git: [0-9a-f]+(\+dirty)?$|^git: unknown'
        assert_line --regexp '^cuda: (on|off)'
        assert_line --regexp '^mpi: '
        assert_line --regexp '^hdf5: .*parallel'
        assert_line --regexp "^rank=0 size=1 local_rank=0 local_size=1 node=$(hostname -s) .* launcher=single slurm_job=- restart=0$"
    done
}

@test "config file: values apply, the command line wins, errors name file and line" {
    cat > "$BATS_TEST_TMPDIR/c.ini" <<'INI'
# shared by several tools: only [shard-inspect] and top-level keys apply here
log-level = error
[curate-dedup]
langs = en
[shard-inspect]
schema = list
INI
    run "$BIN/shard-inspect" --config "$BATS_TEST_TMPDIR/c.ini"
    assert_success
    assert_line --partial "docs - Document shard"
    run "$BIN/shard-inspect" --config "$BATS_TEST_TMPDIR/c.ini" --schema docs
    assert_success
    assert_output --partial '"schema": "docs"'
    printf 'log-level = error\nbogus-key = 1\n' > "$BATS_TEST_TMPDIR/bad.ini"
    run --separate-stderr "$BIN/shard-inspect" --config "$BATS_TEST_TMPDIR/bad.ini" x.h5
    assert_equal "$status" 2
    [[ $stderr == *"bad.ini:2: unknown option 'bogus-key'"* ]] || fail "unexpected message: $stderr"
}

@test "srun with several tasks but no PMI is refused with the fix, not run N times" {
    run --separate-stderr env SLURM_JOB_ID=1 SLURM_STEP_ID=0 SLURM_PROCID=0 SLURM_STEP_NUM_TASKS=4 \
        "$BIN/shard-inspect" --version
    assert_equal "$status" 2
    [[ $stderr == *"--mpi=pmix"* ]] || fail "unexpected message: $stderr"
}
