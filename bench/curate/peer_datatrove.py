#!/usr/bin/env python3
"""datatrove's counterpart of `curate-dedup --disable langid --pii-types email,ipv4`, on one core.

What runs (datatrove's own blocks, in the order of its FineWeb recipe, defaults unless noted):
  phase 1  JsonlReader -> GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter
           -> FineWebQualityFilter -> PIIFormatter -> JsonlWriter(filtered) -> ExactDedupSignature
  phase 2  ExactFindDedups
  phase 3  JsonlReader(filtered) -> ExactDedupFilter -> JsonlWriter(exact) -> MinhashDedupSignature
  phase 4  MinhashDedupBuckets   (datatrove needs tasks = a multiple of num_buckets here: it runs
                                  num_buckets tasks one after the other, workers=1)
  phase 5  MinhashDedupCluster
  phase 6  JsonlReader(exact) -> MinhashDedupFilter -> JsonlWriter(final)
Every executor is a LocalPipelineExecutor with workers=1 (tasks in this process, one at a time) and
tasks=1 except phase 4. Intermediate and final JSONL are written uncompressed (compression=None), the
cheapest setting datatrove offers. Language ID is left out (its LanguageFilter downloads fastText
lid.176.bin at run time, which cannot be fetched here; curate-dedup runs with --disable langid too).

MinHash parameters follow curate-dedup's: word 5-grams (datatrove's: simplify_text + its English word
tokenizer), --bands B --rows R from curate-dedup's report (num_buckets=B, hashes_per_bucket=R),
32-bit hashes (HashConfig(precision=32), xxhash), seed 1.

Writes --result JSON: seconds per phase, docs in/out per phase, and datatrove's stats.
"""

import argparse
import json
import os
import sys
import time


def text_of(doc) -> str:  # ExactDedupConfig.content_getter: the whole (filtered, redacted) text
    return doc.text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="JSONL corpus")
    ap.add_argument("--work", required=True, help="empty directory for datatrove's files")
    ap.add_argument("--bands", type=int, required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--result", required=True)
    a = ap.parse_args()

    t_import = time.perf_counter()
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.exact_dedup import (ExactDedupConfig, ExactDedupFilter, ExactDedupSignature,
                                                      ExactFindDedups)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    import_s = time.perf_counter() - t_import

    w = os.path.abspath(a.work)
    in_dir, in_file = os.path.split(os.path.abspath(a.input))
    mh = MinhashConfig(n_grams=a.ngram, num_buckets=a.bands, hashes_per_bucket=a.rows, seed=a.seed,
                       hash_config=HashConfig(precision=32, hash_fc="xxhash"))
    ex = ExactDedupConfig(content_getter=text_of)

    def reader(folder, pattern=None):
        return JsonlReader(folder, glob_pattern=pattern, compression=None, text_key="text", id_key="id")

    def writer(folder):
        return JsonlWriter(folder, compression=None, output_filename="${rank}.jsonl")

    phases = [
        ("filter_pii_exactsig", 1, [
            reader(in_dir, in_file),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            C4QualityFilter(),
            FineWebQualityFilter(),
            PIIFormatter(),
            writer(f"{w}/filtered"),
            ExactDedupSignature(output_folder=f"{w}/exact_sigs", config=ex),
        ]),
        ("exact_find", 1, [ExactFindDedups(data_folder=f"{w}/exact_sigs", output_folder=f"{w}/exact_dups",
                                           config=ex)]),
        ("exact_filter_minhash_sig", 1, [
            reader(f"{w}/filtered"),
            ExactDedupFilter(data_folder=f"{w}/exact_dups", config=ex),
            writer(f"{w}/exact"),
            MinhashDedupSignature(output_folder=f"{w}/mh_sigs", config=mh),
        ]),
        ("minhash_buckets", a.bands, [MinhashDedupBuckets(input_folder=f"{w}/mh_sigs",
                                                          output_folder=f"{w}/mh_buckets", config=mh)]),
        ("minhash_cluster", 1, [MinhashDedupCluster(input_folder=f"{w}/mh_buckets",
                                                    output_folder=f"{w}/mh_remove", config=mh)]),
        ("minhash_filter", 1, [
            reader(f"{w}/exact"),
            MinhashDedupFilter(input_folder=f"{w}/mh_remove"),
            writer(f"{w}/final"),
        ]),
    ]
    result = {"import_seconds": import_s, "phases": [], "minhash": {"bands": a.bands, "rows": a.rows,
              "num_hashes": a.bands * a.rows, "n_grams": a.ngram, "hash": "xxhash xxh32, 32-bit"}}
    t_all = time.perf_counter()
    for name, tasks, pipeline in phases:
        t0 = time.perf_counter()
        ex_ = LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=f"{w}/logs/{name}",
                                    skip_completed=False)
        stats = ex_.run()
        dt = time.perf_counter() - t0
        entry = {"name": name, "tasks": tasks, "seconds": dt}
        try:
            entry["stats"] = json.loads(stats.to_json()) if hasattr(stats, "to_json") else str(stats)
        except Exception as e:  # stats are informative only
            entry["stats"] = f"unavailable: {e}"
        result["phases"].append(entry)
        print(f"peer_datatrove: {name}: {dt:.2f} s", file=sys.stderr, flush=True)
    result["seconds_pipeline"] = time.perf_counter() - t_all

    def count_lines(folder):
        n = 0
        if os.path.isdir(folder):
            for f in sorted(os.listdir(folder)):
                if f.endswith(".jsonl"):
                    with open(os.path.join(folder, f), "rb") as fh:
                        n += sum(1 for _ in fh)
        return n

    with open(a.input, "rb") as fh:
        result["docs_in"] = sum(1 for _ in fh)
    result["docs_after_filters"] = count_lines(f"{w}/filtered")
    result["docs_after_exact"] = count_lines(f"{w}/exact")
    result["docs_out"] = count_lines(f"{w}/final")
    with open(a.result, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
