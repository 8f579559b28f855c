#!/bin/bash
# Runs every test suite and ends with one line "tests: N passed, M failed".
#   unit tests (GoogleTest), the same under ASan/UBSan, MPI unit tests on 4 ranks,
#   the Bats suite, and the SLURM Bats tests on a real local cluster started here.
# Usage: tests/run-all.sh [--bats-only]      (BUILD and VENV come from the Makefile)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD VENV=${VENV:-} HF_VENV=${HF_VENV:-}
passed=0 failed=0
declare -a failures=()

note() { printf '\n== %s (%s)\n' "$*" "$(date -u +%T)"; }  # the time: where a slow run spent it

# gtest: count from its summary lines.
run_gtest() {
    local name=$1; shift
    note "$name"
    local log; log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local p f
    p=$(grep -aoE '\[  PASSED  \] [0-9]+ test' "$log" | tail -1 | grep -oE '[0-9]+' || true)
    f=$(grep -aoE '\[  FAILED  \] [0-9]+ tests?, listed below' "$log" | tail -1 | grep -oE '[0-9]+' || true)
    p=${p:-0} f=${f:-0}
    if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi  # crashed before its summary
    passed=$((passed + p)) failed=$((failed + f))
    ((f == 0)) || failures+=("$name")
    rm -f "$log"
}

# Bats in TAP mode: count ok / not ok.
run_bats() {
    local name=$1; shift
    note "$name"
    local log; log=$(mktemp)
    bats --tap "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local p f
    p=$(grep -acE '^ok ' "$log" || true)
    f=$(grep -acE '^not ok ' "$log" || true)
    if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
    passed=$((passed + p)) failed=$((failed + f))
    ((f == 0)) || failures+=("$name")
    rm -f "$log"
}

if [[ ${1:-} != --bats-only ]]; then
    run_gtest "unit tests" "$BUILD/tests/unit_tests" --gtest_color=no
    run_gtest "unit tests under ASan/UBSan" env ASAN_OPTIONS=detect_leaks=1 \
        LSAN_OPTIONS=suppressions=tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 "$BUILD/tests/unit_tests_asan" --gtest_color=no
    run_gtest "MPI unit tests (4 ranks)" timeout 300 tests/mpirun.sh -np 4 "$BUILD/tests/mpi_tests" --gtest_color=no
fi

run_bats "Bats suite" tests/bats

# The SLURM tests get a real cluster of their own, stopped whatever happens.
state=$(mktemp -d /tmp/bellows-slurm.XXXXXX)
note "starting a local SLURM cluster in $state"
if tests/slurm/start-cluster.sh "$state"; then
    trap 'tests/slurm/stop-cluster.sh "$state" >/dev/null 2>&1; rm -rf "$state"' EXIT
    BELLOWS_SLURM_STATE=$state BELLOWS_BIN=$PWD/$BUILD/bin run_bats "SLURM Bats tests" tests/slurm
    tests/slurm/stop-cluster.sh "$state"
else
    failed=$((failed + 1)); failures+=("SLURM cluster start")
fi

# Then two nodes (network and UTS namespaces on this machine) for the placement tests.
state2=$(mktemp -d /tmp/bellows-slurm2.XXXXXX)
note "starting a two-node SLURM cluster in $state2"
if tests/slurm/start-cluster.sh --nodes 2 "$state2"; then
    trap 'tests/slurm/stop-cluster.sh "$state2" >/dev/null 2>&1; rm -rf "$state" "$state2"' EXIT
    BELLOWS_SLURM_STATE=$state2 BELLOWS_BIN=$PWD/$BUILD/bin run_bats "two-node SLURM Bats tests" tests/slurm/multinode
    tests/slurm/stop-cluster.sh "$state2"
else
    failed=$((failed + 1)); failures+=("two-node SLURM cluster start")
fi

echo
((${#failures[@]} == 0)) || echo "failing suites: ${failures[*]}"
echo "tests: $passed passed, $failed failed"
((failed == 0))
