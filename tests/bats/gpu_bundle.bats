#!/usr/bin/env bats
# make gpu-bundle packs the tools and tests with the shared libraries they need, for a GPU
# machine that has the driver and CUDA but none of our Debian libraries. Proven here the strict
# way: in a chroot that holds only the C library, the dynamic loader and the bundle, the tools
# start, train, and the unit tests run (the CUDA parts find no GPU here and say so).

setup() {
    load helpers
    [[ $(id -u) -eq 0 ]] || fail "needs root (chroot)"
    ROOT=$BATS_TEST_TMPDIR/root
}

teardown() {
    mountpoint -q "$ROOT/dev" 2>/dev/null && umount "$ROOT/dev" || true
}

@test "the GPU bundle runs in a root with nothing but glibc: tools, a training run, unit tests" {
    run "$REPO_ROOT/tests/gpu/make-bundle.sh" "$BUILD_DIR" "$BATS_TEST_TMPDIR/gpu-bundle"
    assert_success
    assert_output --regexp 'make-bundle: .* [0-9]+ libraries\) and .*gpu-bundle\.tgz'
    [[ -x $BATS_TEST_TMPDIR/gpu-bundle/test-gpu.sh && -f $BATS_TEST_TMPDIR/gpu-bundle/env.sh ]] || fail "scripts missing"
    [[ -x $BATS_TEST_TMPDIR/gpu-bundle/bench/gpu/run.sh && -f $BATS_TEST_TMPDIR/gpu-bundle/bench/gpu/torch_llama.py ]] ||
        fail "the GPU benchmark is missing"
    # No CUDA toolkit or driver library travels: the machine's own are used.
    run ls "$BATS_TEST_TMPDIR/gpu-bundle/lib"
    refute_output --regexp 'libcuda|libcublas|libnccl|libc\.so|ld-linux'
    assert_output --partial libhdf5
    assert_output --partial libopenblas

    mkdir -p "$ROOT/lib/x86_64-linux-gnu" "$ROOT/lib64" "$ROOT/tmp" "$ROOT/dev" "$ROOT/data"
    cp -L /lib64/ld-linux-x86-64.so.2 "$ROOT/lib64/"
    local l
    for l in libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2; do
        cp -L "/lib/x86_64-linux-gnu/$l" "$ROOT/lib/x86_64-linux-gnu/"
    done
    tar -C "$ROOT" -xzf "$BATS_TEST_TMPDIR/gpu-bundle.tgz"
    mount --bind /dev "$ROOT/dev"
    make_pretrain_shards "$BATS_TEST_TMPDIR" 5
    cp -a "$BATS_TEST_TMPDIR/tok" "$ROOT/data/"

    # Without the bundle's libraries nothing starts there: the chroot really lacks them.
    run -127 chroot "$ROOT" /gpu-bundle/bin/pretrain --version
    assert_output --partial "error while loading shared libraries"

    export LD_LIBRARY_PATH=/gpu-bundle/lib
    run chroot "$ROOT" /gpu-bundle/bin/pretrain --version
    assert_success
    assert_line --regexp '^cuda: on \(CUDA runtime [0-9.]+\)'
    assert_line --regexp '^hdf5: .*\(parallel\)'
    run chroot "$ROOT" /gpu-bundle/bin/pretrain --data /data/tok --model tiny --seq-len 64 --micro-batch 4 --steps 3 \
        --threads 1 -o /tmp/run
    assert_success
    assert_output --partial "saved checkpoint /tmp/run/checkpoints/step-00000003"
    run chroot "$ROOT" /gpu-bundle/tests/unit_tests --gtest_filter='*/NnOpsFast.*:DpoObjective.TokenWeights*' --gtest_color=no
    assert_success
    assert_output --partial "[  PASSED  ]"
    # The CUDA instances of the op suite skip, saying why (no GPU in a chroot of a GPU-less machine).
    assert_output --regexp '\[  SKIPPED \] Cuda/NnOpsFast\.AttentionLongRowsAndWideHeads'
    assert_output --partial "CUDA: no usable CUDA device"
}
