# Shared set-up for the Bats suite. The Makefile (tests/run-all.sh) exports BUILD and VENV.
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
# BUILD may be relative to the repository (the default, build) or absolute.
BUILD_DIR=${BUILD:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$REPO_ROOT/$BUILD_DIR
BIN=$BUILD_DIR/bin
TESTBIN=$BUILD_DIR/tests
MPIRUN=$REPO_ROOT/tests/mpirun.sh

# Every tool in build/bin, so each new tool is covered by the generic CLI tests at once.
all_tools() {
    local t
    for t in "$BIN"/*; do [[ -x $t ]] && basename "$t"; done
}

need_venv() {
    [[ -n ${VENV:-} && -x $VENV/bin/python ]] || fail "VENV is not set to a built virtualenv (make venv)"
}
