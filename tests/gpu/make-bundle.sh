#!/bin/bash
# make-bundle.sh BUILD OUT — pack the built tools and tests with the shared libraries they need
# into OUT/ (and OUT.tgz), so that they run on a GPU machine that has the NVIDIA driver, CUDA
# and Python but none of our Debian libraries (HDF5, Open MPI, OpenBLAS, Boost, zstd, ...).
#
#   OUT/bin/      the tools, stripped          OUT/tests/   unit tests and test helpers, stripped
#   OUT/lib/      every library ldd resolves for them, except the C library family (the
#                 machine's glibc is used: a newer one runs binaries built for Debian 12's) and
#                 the CUDA driver and toolkit libraries (the machine's own: libcuda comes with
#                 its driver; cuBLAS and NCCL are loaded from its CUDA/PyTorch install)
#   OUT/env.sh    sourced by the scripts: LD_LIBRARY_PATH=OUT/lib plus the machine's CUDA libraries
#   OUT/test-gpu.sh, OUT/schemas, OUT/VERSION, OUT/bench/gpu/ (issue 10's benchmark: bench/gpu/run.sh)
# The tools find nothing else at run time: schemas are built in, tokenizers are files.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: make-bundle.sh BUILD OUT" >&2; exit 2; }
build=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out" "$out.tgz"
mkdir -p "$out/bin" "$out/tests" "$out/lib"
for f in "$build"/bin/*; do [[ -x $f ]] && strip -o "$out/bin/$(basename "$f")" "$f"; done
for f in "$build"/tests/*; do
    [[ -x $f && $f != *_asan ]] || continue
    strip -o "$out/tests/$(basename "$f")" "$f"
done
# glibc's family and the loader stay the machine's; CUDA libraries are the machine's.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv|libutil|libcuda\.so|libnvidia|libcublas|libnccl|libcudart)'
declare -A seen=()
for f in "$out"/bin/* "$out"/tests/*; do
    while read -r name _ path _; do
        [[ $path == /* ]] || continue
        [[ $name =~ $skip ]] && continue
        [[ -n ${seen[$name]:-} ]] && continue
        seen[$name]=1
        cp -L "$path" "$out/lib/$name"
    done < <(ldd "$f")
done
missing=$(for f in "$out"/bin/* "$out"/tests/*; do ldd "$f" | grep 'not found' || true; done | sort -u)
[[ -z $missing ]] || { echo "make-bundle: unresolved libraries: $missing" >&2; exit 1; }
cp "$here/test-gpu.sh" "$here/bundle-env.sh" "$out/"
mkdir -p "$out/bench/gpu"
cp "$here/../../bench/gpu/"*.sh "$here/../../bench/gpu/"*.py "$out/bench/gpu/"
mv "$out/bundle-env.sh" "$out/env.sh"
(cd "$(dirname "$here")/.." && git describe --always --dirty 2>/dev/null || echo unknown) >"$out/VERSION"
tar -C "$(dirname "$out")" -czf "$out.tgz" "$(basename "$out")"
echo "make-bundle: $out ($(du -sh "$out" | cut -f1); $(ls "$out/lib" | wc -l) libraries) and $out.tgz ($(du -h "$out.tgz" | cut -f1))"
