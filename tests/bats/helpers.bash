# Shared set-up for the Bats suite. The Makefile (tests/run-all.sh) exports BUILD and VENV.
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BIN=$REPO_ROOT/${BUILD:-build}/bin
TESTBIN=$REPO_ROOT/${BUILD:-build}/tests
MPIRUN=$REPO_ROOT/tests/mpirun.sh

# Every tool in build/bin, so each new tool is covered by the generic CLI tests at once.
all_tools() {
    local t
    for t in "$BIN"/*; do [[ -x $t ]] && basename "$t"; done
}

need_venv() {
    [[ -n ${VENV:-} && -x $VENV/bin/python ]] || fail "VENV is not set to a built virtualenv (make venv)"
}
