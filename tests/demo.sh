#!/bin/bash
# `make demo`: the main job end to end, with the tools that exist so far. Each tool issue
# extends this script.
#
#   1. curate-dedup on a real corpus every Debian machine has: the copyright files and
#      changelogs under /usr/share/doc (full of duplicated licence texts and maintainer e-mail
#      addresses), on 2 MPI ranks;
#   2. shard-inspect on what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$PWD/$BUILD/bin
OUT=${DEMO_DIR:-$PWD/$BUILD/demo}
rm -rf "$OUT" && mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The build"
"$BIN/curate-dedup" --version | head -6

step "curate-dedup: /usr/share/doc copyright files and changelogs, 2 MPI ranks"
# Copyright files and changelogs are not prose: with the web-text quality rules on, most of them
# would be dropped at that stage (run it without --disable quality to see which rules fire).
# The demo switches the rules off to show what the other stages do with licence texts.
tests/mpirun.sh -np 2 "$BIN/curate-dedup" --input-format text --include copyright --include 'changelog*' \
    /usr/share/doc -o "$OUT/curated" --disable quality --on-bad-record skip --verify-jaccard --export-jsonl

step "What was removed, and why (removed.jsonl.zst: one line per document)"
zstdcat "$OUT/curated/removed.jsonl.zst" | python3 -c '
import collections, json, sys
rows = [json.loads(l) for l in sys.stdin]
by = collections.Counter((r["stage"], r["reason"]) for r in rows)
for (stage, reason), n in by.most_common(8):
    print(f"  {n:6d}  {stage:8s} {reason}")
dups = [r for r in rows if r["reason"] == "fuzzy_dup"][:3]
for r in dups:
    print("  e.g. " + r["id"] + "\n       near-duplicate of " + r["kept_id"])
'

step "report.json (excerpt)"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r[k] for k in ("documents", "pii", "exact_dedup", "fuzzy_dedup", "lsh", "peak_rss_mb_max_rank", "seconds")}, indent=2))
' "$OUT/curated/report.json"

step "The output shards: kind, provenance, datasets, zstd + Fletcher32 (shard-inspect)"
"$BIN/shard-inspect" "$OUT/curated" | head -16
"$BIN/shard-inspect" --verify --progress off "$OUT/curated" >/dev/null

step "Done. Output in $OUT/curated"
echo "Next tools (open issues): tokenize-pack, pretrain, ckpt-convert, lora-tune, dpo-align."
