"""Reference check: libshared's MinHash-LSH (what curate-dedup runs) against datasketch (PyPI).

Generates a corpus with many near-duplicates (fixed seed), runs the C++ helper minhash-dump on it
(libshared's shingles, shingle hashes, permutations, signatures, band keys and optimal LSH
parameters) and recomputes everything with datasketch 1.x, fed the same shingles (UTF-8), the
same 32-bit shingle hash (low 32 bits of XXH3-64, from the xxhash package) and the same
permutations (a, b). Checks:
  shingles    an independent Python shingling (bellows_shingles.py) gives the same shingles
  hashes      xxhash.xxh3_64_intdigest(s) & 0xFFFFFFFF equals libshared's shingle_hash32 and
              its string-free shingle_hashes32 (which curate-dedup uses)
  signatures  datasketch MinHash.hashvalues are bit-identical to libshared's, every document
  pairs       MinHashLSH(params=(b, r)) insert + query gives exactly libshared's candidate
              pairs (documents sharing a band key), for several (b, r)
  params      datasketch.lsh._optimal_param(t, n, 0.5, 0.5) equals text::optimal_lsh_params for
              t = 0.50, 0.55, ..., 0.95 and n = 128, 256 (a mismatch prints both choices' errors)
Prints one 'ok ...' line per passed check; on any mismatch prints every one found to stderr and
exits 1.

usage: python check_datasketch.py MINHASH_DUMP [WORKDIR]
"""
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import xxhash
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _false_negative_probability, _false_positive_probability, _optimal_param

from bellows_shingles import parse_spec, shingles

SEED = 20240611
THRESHOLDS = [f"{0.5 + 0.05 * k:.2f}" for k in range(10)]
failures = []


def fail(msg):
    failures.append(msg)
    print("check_datasketch: " + msg, file=sys.stderr)


def hash32(b):
    return xxhash.xxh3_64_intdigest(b) & 0xFFFFFFFF


def make_corpus(rng):
    """Near-duplicate families: each base document plus variants with a few words replaced,
    deleted or inserted, and mixed case, punctuation, digits and non-ASCII words so that the
    shingling rules are exercised; plus a few short, empty and exact-copy documents."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    vocab += ["naïve", "Straße", "日本語", "café", "Ελλάδα", "x86_64", "v1.2.3", "2024", "ÆØÅ", "emoji😀ok"]
    seps = [" ", " ", " ", " ", ", ", ". ", "\n", " - ", "\t", "  ", "; ", " (", ") "]

    def token():  # a word with its case and the separator after it, fixed once per token
        w = rng.choice(vocab)
        w = w.upper() if rng.random() < 0.03 else w.capitalize() if rng.random() < 0.1 else w
        return w + rng.choice(seps)

    def render(tokens):
        return "".join(tokens).rstrip()

    docs = []
    for _ in range(40):
        base = [token() for _ in range(rng.randint(60, 250))]
        docs.append(render(base))
        for _ in range(rng.randint(3, 8)):
            v = list(base)
            for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 12, 20])):
                op, i = rng.random(), rng.randrange(len(v))
                if op < 0.6:
                    v[i] = token()
                elif op < 0.8 and len(v) > 10:
                    del v[i]
                else:
                    v.insert(i, token())
            docs.append(render(v))
    for _ in range(8):
        docs.append(render([token() for _ in range(rng.randint(1, 4))]))  # fewer than 5 words
    docs += ["", "   \n\t ", docs[3], docs[3].upper(), "... --- !!!"]
    rng.shuffle(docs)
    return docs


def run_dump(dump, path, spec, num_perm, bands, rows, param_perms=None):
    cmd = [dump, path, "--shingle", spec, "--num-perm", str(num_perm), "--seed", "1",
           "--bands", str(bands), "--rows", str(rows), "--thresholds", ",".join(THRESHOLDS)]
    if param_perms:
        cmd += ["--param-perms", param_perms]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def datasketch_pairs(sketches, num_perm, bands, rows):
    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    for i, m in enumerate(sketches):
        lsh.insert(i, m)
    pairs = set()
    for i, m in enumerate(sketches):
        for j in lsh.query(m):
            if j != i:
                pairs.add((min(i, j), max(i, j)))
    return pairs


def check_spec(dump, path, texts, spec, num_perm, lsh_settings):
    kind, n = parse_spec(spec)
    b0, r0 = lsh_settings[0]
    ours = run_dump(dump, path, spec, num_perm, b0, r0)
    if len(ours["docs"]) != len(texts):
        fail(f"{spec}: minhash-dump read {len(ours['docs'])} documents, expected {len(texts)}")
        return
    a = np.array([int(x) for x in ours["perm_a"]], dtype=np.uint64)
    b = np.array([int(x) for x in ours["perm_b"]], dtype=np.uint64)
    if [int(x) for x in a] != [int(x) for x in ours["perm_a"]] or len(a) != num_perm:
        fail(f"{spec}: permutations did not survive the round trip")

    sketches, bad_sh, bad_h, bad_sig = [], 0, 0, 0
    for i, (text, doc) in enumerate(zip(texts, ours["docs"])):
        sh = shingles(text, kind, n)
        if sh != [s.encode("utf-8") for s in doc["shingles"]]:
            bad_sh += 1
            if bad_sh <= 3:
                fail(f"{spec}: doc {i}: shingles differ: python {sh[:3]}... vs libshared {doc['shingles'][:3]}...")
        hv = [hash32(s) for s in sh]
        if hv != doc["hashes"] or hv != doc["fast_hashes"]:
            bad_h += 1
            if bad_h <= 3:
                fail(f"{spec}: doc {i}: shingle hashes differ: xxhash {hv[:3]} vs libshared {doc['hashes'][:3]}, "
                     f"string-free {doc['fast_hashes'][:3]}")
        m = MinHash(num_perm=num_perm, hashfunc=hash32, permutations=(a, b))
        if sh:
            m.update_batch(sh)
        sketches.append(m)
        got = np.array(doc["signature"], dtype=np.uint64)
        if not np.array_equal(m.hashvalues, got):
            bad_sig += 1
            if bad_sig <= 3:
                k = int(np.flatnonzero(m.hashvalues != got)[0])
                fail(f"{spec}: doc {i}: signature differs at permutation {k}: datasketch "
                     f"{int(m.hashvalues[k])} vs libshared {int(got[k])} (a={int(a[k])}, b={int(b[k])})")
    if not bad_sh:
        print(f"ok shingles: {len(texts)} documents, {spec}: Python shingling identical to libshared's")
    if not bad_h:
        print(f"ok hashes: {sum(len(d['hashes']) for d in ours['docs'])} shingle hashes identical (XXH3-64 low 32 bits; shingle_hash32 and shingle_hashes32)")
    if bad_sig:
        fail(f"{spec}: {bad_sig} of {len(texts)} signatures differ from datasketch")
    else:
        print(f"ok signatures: {len(texts)} documents x {num_perm} permutations bit-identical to datasketch ({spec})")

    for bands, rows in lsh_settings:
        mine = ours if (bands, rows) == (b0, r0) else run_dump(dump, path, spec, num_perm, bands, rows)
        mine_pairs = {tuple(p) for p in mine["candidate_pairs"]}
        theirs = datasketch_pairs(sketches, num_perm, bands, rows)
        if mine_pairs != theirs:
            fail(f"{spec} b={bands} r={rows}: candidate pairs differ: {len(mine_pairs)} libshared, {len(theirs)} "
                 f"datasketch; only libshared {sorted(mine_pairs - theirs)[:5]}, only datasketch "
                 f"{sorted(theirs - mine_pairs)[:5]}")
            continue
        # Non-trivial: many pairs, but far from all pairs (families are separate).
        total = len(texts) * (len(texts) - 1) // 2
        if not 50 <= len(mine_pairs) <= total // 10:
            fail(f"{spec} b={bands} r={rows}: {len(mine_pairs)} candidate pairs of {total}: corpus too trivial")
            continue
        print(f"ok candidate pairs: {spec} num_perm={num_perm} b={bands} r={rows}: {len(mine_pairs)} pairs identical to datasketch MinHashLSH")
    return ours


def check_params(dump, path):
    ours = run_dump(dump, path, "word:5", 256, 1, 1, param_perms="128,256")
    bad = 0
    for p in ours["lsh_params"]:
        t, n = float(p["threshold"]), p["num_perm"]
        mine = (p["bands"], p["rows"])
        theirs = _optimal_param(t, n, 0.5, 0.5)
        if mine != tuple(theirs):
            bad += 1
            err = lambda br: 0.5 * _false_positive_probability(t, *br) + 0.5 * _false_negative_probability(t, *br)
            fail(f"optimal params t={p['threshold']} num_perm={n}: libshared {mine} (datasketch's error "
                 f"{err(mine):.12g}), datasketch {tuple(theirs)} (error {err(theirs):.12g})")
    if not bad:
        print(f"ok optimal params: {len(ours['lsh_params'])} (threshold, num_perm) choices identical to "
              f"datasketch _optimal_param (t=0.50..0.95, num_perm 128 and 256)")
    return {(p["threshold"], p["num_perm"]): (p["bands"], p["rows"]) for p in ours["lsh_params"]}


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    dump = sys.argv[1]
    workdir = sys.argv[2] if len(sys.argv) == 3 else tempfile.mkdtemp(prefix="check_datasketch.")
    texts = make_corpus(random.Random(SEED))
    path = os.path.join(workdir, "corpus.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"d{i}", "text": t}, ensure_ascii=False) + "\n")

    params = check_params(dump, path)
    settings = [params[(t, 128)] for t in ("0.50", "0.70", "0.80", "0.90")]
    check_spec(dump, path, texts, "word:5", 128, settings)
    check_spec(dump, path, texts, "char:24", 256, [params[("0.80", 256)], (32, 8)])
    if failures:
        print(f"check_datasketch: {len(failures)} mismatch(es)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
