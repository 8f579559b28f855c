#!/bin/bash
# `make demo`: the main job end to end, with the tools that exist so far.
#
# Today bellows has its foundation and shard-inspect; each tool issue extends this script
# (curate-dedup next: it will curate the texts under /usr/share/doc here).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$PWD/$BUILD/bin
OUT=${DEMO_DIR:-$PWD/$BUILD/demo}
rm -rf "$OUT" && mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The build"
"$BIN/shard-inspect" --version

step "One binary, four MPI ranks: where each rank runs (gathered and printed by rank 0)"
tests/mpirun.sh -np 4 "$BIN/shard-inspect" --version | grep '^rank='

step "Every file kind bellows passes between its tools (schemas/), written through libshared"
"$BUILD/tests/write-sample-shards" "$OUT" 1
rm -f "$OUT"/*.expected.json
"$BIN/shard-inspect" --schema list

step "shard-inspect: kind, provenance, datasets, chunking, zstd + Fletcher32, compression ratio"
"$BIN/shard-inspect" "$OUT/docs.h5" "$OUT/tokens_pretrain.h5"

step "Verify every chunk of every file, on 4 ranks"
tests/mpirun.sh -np 4 "$BIN/shard-inspect" --verify --progress off "$OUT" >/dev/null

step "Damage one byte on disk: the checksum catches it and names file and dataset"
python3 - "$OUT/docs.h5" <<'PY'
import sys
# Flip a byte in the middle of the file: it lands in compressed text chunks of this shard.
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(0, 2); n = f.tell(); f.seek(n // 2); b = f.read(1); f.seek(n // 2); f.write(bytes([b[0] ^ 0xFF]))
PY
set +e
"$BIN/shard-inspect" --verify --progress off "$OUT/docs.h5" >/dev/null
echo "exit code: $? (1 = bad input data)"
set -e

step "Done. Files are in $OUT"
echo "Next tools (open issues): curate-dedup, tokenize-pack, pretrain, ckpt-convert, lora-tune, dpo-align."
