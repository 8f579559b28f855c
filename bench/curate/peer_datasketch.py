#!/usr/bin/env python3
"""datasketch's counterpart of curate-dedup's MinHash stage (and its LSH), on one core.

Loads the corpus first (JSON parsing is not timed: curate-dedup's minhash_all_ranks excludes it too),
then times, per variant:
  minhash  shingling + shingle hashing + MinHash, the same work as curate-dedup's minhash_all_ranks
           (which is: word 5-gram shingles, their 32-bit hashes, 128 permutations, the band keys).
           Shingles as libshared/text/minhash.hpp makes them: words are maximal runs of ASCII letters
           and digits and of bytes >= 0x80, ASCII-lowercased, a shingle is 5 words joined by one space,
           a document of fewer than 5 words is one shingle (none if it has no word). datasketch's fast
           path: MinHash.generator (one permutation set for all documents, copied) + update_batch.
  lsh      (once, on the default variant's MinHashes) MinHashLSH(num_perm=128, params=(B, R)): insert
           every document, then query every document, then union-find over the candidate pairs to count
           the documents a dedup would remove (one kept per connected component). curate-dedup's
           counterpart is seconds_by_phase.dedup_all_ranks (bucket keys -> pairs -> union-find).
Variants (--variants, comma-separated):
  default  MinHash() as datasketch ships it: hashfunc sha1_hash32, scheme "affine32" (datasketch >= 2.0)
  xxh32    hashfunc=xxhash.xxh32_intdigest (a C function: the cheapest 32-bit hash callable from Python)
  legacy   scheme="legacy" (the (a*h+b) mod 2^61-1 scheme curate-dedup reproduces) with hashfunc =
           low 32 bits of XXH3-64, i.e. bit-for-bit curate-dedup's shingle hash (slower; not run by default)
"""

import argparse
import json
import re
import resource
import sys
import time

WORD = re.compile(rb"[0-9A-Za-z\x80-\xff]+")


def shingles(text_bytes, n):
    words = WORD.findall(text_bytes.lower())  # bytes.lower() lowercases ASCII only, as ours does
    if not words:
        return []
    if len(words) < n:
        return [b" ".join(words)]
    return [b" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--bands", type=int, required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", default="default,xxh32")
    ap.add_argument("--no-lsh", action="store_true")
    ap.add_argument("--result", required=True)
    a = ap.parse_args()

    import datasketch
    import numpy as np
    import xxhash
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    texts, ids, nbytes = [], [], 0
    with open(a.input, "rb") as f:
        for line in f:
            nbytes += len(line)
            d = json.loads(line)
            texts.append(d["text"].encode("utf-8"))
            ids.append(d["id"])
    load_s = time.perf_counter() - t0

    def xxh3_low32(b):
        return xxhash.xxh3_64_intdigest(b) & 0xFFFFFFFF

    variants = {
        "default": dict(),
        "xxh32": dict(hashfunc=xxhash.xxh32_intdigest),
        "legacy": dict(hashfunc=xxh3_low32, scheme="legacy"),
    }
    result = {"datasketch_version": datasketch.__version__, "numpy_version": np.__version__,
              "input_bytes": nbytes, "docs": len(texts), "load_seconds": load_s,
              "num_perm": a.num_perm, "bands": a.bands, "rows": a.rows, "ngram": a.ngram, "variants": {}}
    sigs_for_lsh = None
    for name in a.variants.split(","):
        kw = dict(num_perm=a.num_perm, seed=a.seed, **variants[name])
        t0 = time.perf_counter()
        c0 = time.process_time()
        sigs = list(MinHash.generator((shingles(t, a.ngram) for t in texts), **kw))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        m0 = MinHash(**kw)
        result["variants"][name] = {
            "seconds": dt, "cpu_seconds": dc, "scheme": m0.scheme,
            "hashfunc": getattr(m0.hashfunc, "__module__", "") + "." + getattr(m0.hashfunc, "__name__", "?"),
            "docs_per_s": len(texts) / dt, "mb_per_s": nbytes / 1e6 / dt}
        print(f"peer_datasketch: minhash[{name}]: {dt:.2f} s ({nbytes / 1e6 / dt:.2f} MB/s)", file=sys.stderr,
              flush=True)
        if sigs_for_lsh is None:
            sigs_for_lsh = sigs
        else:
            del sigs

    if not a.no_lsh:
        t0 = time.perf_counter()
        lsh = MinHashLSH(num_perm=a.num_perm, params=(a.bands, a.rows))
        for i, m in enumerate(sigs_for_lsh):
            lsh.insert(i, m, check_duplication=False)
        parent = list(range(len(sigs_for_lsh)))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        pairs = 0
        for i, m in enumerate(sigs_for_lsh):
            for j in lsh.query(m):
                if j > i:
                    pairs += 1
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
        removed = sum(1 for i in range(len(parent)) if find(i) != i)
        dt = time.perf_counter() - t0
        result["lsh"] = {"seconds": dt, "candidate_pairs": pairs, "removed": removed,
                         "what": "MinHashLSH insert all + query all + union-find (on the first variant's MinHashes)"}
        print(f"peer_datasketch: lsh: {dt:.2f} s, {pairs} candidate pairs, {removed} would be removed",
              file=sys.stderr, flush=True)
    result["peak_rss_mb_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(a.result, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
