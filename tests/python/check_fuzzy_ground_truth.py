"""Ground-truth check of curate-dedup's fuzzy (MinHash-LSH) dedup against brute-force Jaccard.

Corpus (fixed seed): base documents of ~300 words drawn from a large random vocabulary, so that
bases are mutually dissimilar (Jaccard ~0), and for each base several variants made by replacing
random words until the Jaccard similarity of the word:5 shingle sets with the base reaches a
target drawn uniformly from [0.5, 1.0] (a few are exact copies, Jaccard 1). Documents are
shuffled and split over several JSONL files, so the kept document of a cluster (the smallest
key: file order, then line) is not always the base. Every pairwise Jaccard similarity is then
computed by brute force over all pairs, with an independent Python shingling that is
identical to libshared's (bellows_shingles.py; check_datasketch.py checks that identity).

curate-dedup runs with every stage but fuzzy dedup disabled and the default --threshold t
(0.8), once without and once with --verify-jaccard, on 1 rank and on 2 ranks, with the
default keep policy (--cluster-keep covering: a document is removed only when it is linked to a
document that is kept, and that one is its kept_id). From removed.jsonl.zst (one fuzzy_dup line
per removed document: id, kept_id):

  recall     over all document pairs whose true Jaccard is >= t + 0.05: the fraction the tool
             deduplicated, i.e. of which it did not keep both documents. A near-duplicate pair
             that survives whole is exactly the failure dedup exists to prevent. Asserted
             >= 0.95, with and without verification.
  precision  over all removal claims (removed id -> kept_id, one per removed document): the
             fraction whose true Jaccard J(removed, kept) is >= t, i.e. how often the audit
             trail's statement "removed as a near-duplicate of kept_id" is true. Asserted
             >= 0.95 with --verify-jaccard. Without verification the removals include LSH false
             positives by design (S-curve), so there it is printed, not asserted.
  also printed, not asserted:
    same-cluster recall  the pairs above whose two documents share a representative (kept_id,
                         or itself when kept); with covering, A~B~C chains legitimately keep
                         A and C apart, so this reads lower than recall
    recall by J          same-cluster recall split into Jaccard ranges
    kept-near-dup        over the removed documents: the fraction that have at least one KEPT
                         document with J >= t (the content survives in a near-copy)
    edge precision       over the removed documents: the fraction with at least one other
                         document of their cluster at J >= t
  A last run with --cluster-keep one (one document per connected component, NeMo Curator's
  semantics) is printed for comparison, not asserted.

The kept set and every document's representative must be identical for 1 and 2 ranks.
Prints 'ok ...' / result lines; exits 1 on any failed assertion.

usage: python check_fuzzy_ground_truth.py CURATE_DEDUP MPIRUN WORKDIR
"""
import itertools
import json
import os
import random
import subprocess
import sys

from bellows_shingles import shingles

SEED = 7177
THRESHOLD = 0.8
N_BASES = 40
VARIANTS = 10
BASE_WORDS = 300
N_FILES = 4
MIN_RECALL = 0.95
MIN_PRECISION = 0.95
failures = []


def fail(msg):
    failures.append(msg)
    print("check_fuzzy_ground_truth: FAIL " + msg, file=sys.stderr)


def shingle_set(words):
    return frozenset(shingles(" ".join(words), "word", 5))


def jaccard(a, b):
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def make_corpus(rng):
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = sorted({"".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(60000)})
    docs = []  # (words, family, target)
    for f in range(N_BASES):
        base = [rng.choice(vocab) for _ in range(BASE_WORDS + rng.randint(-30, 30))]
        base_set = shingle_set(base)
        docs.append((base, f, None))
        targets = [1.0] + [rng.uniform(0.5, 1.0) for _ in range(VARIANTS - 1)]
        for target in targets:
            v = list(base)
            positions = list(range(len(v)))
            rng.shuffle(positions)
            # Replace words one at a time until the similarity to the base is at most the target.
            for pos in positions:
                if jaccard(shingle_set(v), base_set) <= target:
                    break
                v[pos] = rng.choice(vocab)
            docs.append((v, f, target))
    rng.shuffle(docs)
    return docs


def write_inputs(docs, workdir):
    paths = [os.path.join(workdir, f"part-{k}.jsonl") for k in range(N_FILES)]
    per = (len(docs) + N_FILES - 1) // N_FILES
    ids = []
    for k, path in enumerate(paths):
        with open(path, "w") as f:
            for i in range(k * per, min(len(docs), (k + 1) * per)):
                ids.append(f"doc{i:04d}")
                f.write(json.dumps({"id": ids[-1], "text": " ".join(docs[i][0])}) + "\n")
    return paths, ids


def run_dedup(curate, mpirun, paths, outdir, ranks, verify, extra=()):
    cmd = [curate, *paths, "-o", outdir, "--disable", "cleanup,langid,quality,pii,exact", "--progress", "off",
           "--threshold", str(THRESHOLD), *extra]
    if verify:
        cmd.append("--verify-jaccard")
    if ranks > 1:
        cmd = [mpirun, "-np", str(ranks), *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr, file=sys.stderr)
        raise SystemExit(f"check_fuzzy_ground_truth: curate-dedup failed ({r.returncode}): {' '.join(cmd)}")
    out = subprocess.run(["zstd", "-dcq", os.path.join(outdir, "removed.jsonl.zst")], check=True,
                         capture_output=True, text=True).stdout
    removed = {}
    for line in out.splitlines():
        rec = json.loads(line)
        if rec.get("reason") != "fuzzy_dup" or "kept_id" not in rec:
            fail(f"{outdir}: unexpected removal record {rec}")
            continue
        removed[rec["id"]] = rec["kept_id"]
    return removed


def evaluate(label, removed, ids, sim, min_precision, min_recall=MIN_RECALL):
    index = {d: i for i, d in enumerate(ids)}
    for r, k in removed.items():
        if k in removed:
            fail(f"{label}: {r} removed for {k}, which is itself removed")
    rep = [removed.get(d, d) for d in ids]

    high = [(i, j) for (i, j), s in sim.items() if s >= THRESHOLD + 0.05]
    hits = sum(rep[i] == rep[j] for i, j in high)
    recall = hits / len(high)
    claims = [sim[tuple(sorted((index[r], index[k])))] for r, k in removed.items()]
    good = sum(s >= THRESHOLD for s in claims)
    precision = good / len(claims) if claims else 1.0

    members = {}
    for i, r in enumerate(rep):
        members.setdefault(r, []).append(i)
    def near(i, others):
        return any(sim[(min(i, m), max(i, m))] >= THRESHOLD for m in others if m != i)

    kept = [i for i, d in enumerate(ids) if d not in removed]
    n_rem = max(len(removed), 1)
    edge_precision = sum(near(index[r], members[rep[index[r]]]) for r in removed) / n_rem
    kept_near = sum(near(index[r], kept) for r in removed) / n_rem
    not_both = sum(not (ids[i] not in removed and ids[j] not in removed) for i, j in high) / len(high)

    not_both_n = round(not_both * len(high))
    print(f"{label}: recall {not_both:.4f} ({not_both_n}/{len(high)} pairs with J >= {THRESHOLD + 0.05:.2f} not both kept)")
    print(f"{label}: precision {precision:.4f} ({good}/{len(claims)} removals with J(removed, kept) >= {THRESHOLD})")
    ranges = [(0.85, 0.875), (0.875, 0.9), (0.9, 0.95), (0.95, 1.01)]
    by_j = []
    for lo, hi in ranges:
        sel = [(i, j) for i, j in high if lo <= sim[(i, j)] < hi]
        if sel:
            by_j.append(f"[{lo:.3f},{min(hi, 1.0):.3f}) {sum(rep[i] == rep[j] for i, j in sel)}/{len(sel)}")
    below = [s for s in claims if s < THRESHOLD]
    print(f"{label}: recall by J: {', '.join(by_j)}; removals below t: {len(below)}"
          + (f" (J {min(below):.3f}..{max(below):.3f})" if below else ""))
    print(f"{label}: same-cluster recall {recall:.4f} ({hits}/{len(high)}); kept-near-dup {kept_near:.4f}; "
          f"edge precision {edge_precision:.4f}")
    if min_recall is not None and not_both < min_recall:
        fail(f"{label}: recall {not_both:.4f} < {min_recall}")
    if min_precision is not None and precision < min_precision:
        fail(f"{label}: precision {precision:.4f} < {min_precision}")
    return rep


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    curate, mpirun, workdir = sys.argv[1:]
    docs = make_corpus(random.Random(SEED))
    os.makedirs(workdir, exist_ok=True)
    paths, ids = write_inputs(docs, workdir)

    sets = [shingle_set(w) for w, _, _ in docs]
    sim = {}
    for i, j in itertools.combinations(range(len(docs)), 2):  # brute force, every pair
        s = jaccard(sets[i], sets[j])
        if s > 0:
            sim[(i, j)] = s
    n_pairs = len(docs) * (len(docs) - 1) // 2
    fam_j = [s for (i, j), s in sim.items() if docs[i][1] != docs[j][1]]
    print(f"corpus: {len(docs)} documents in {N_FILES} files, {N_BASES} families; {n_pairs} pairs, "
          f"{sum(s >= THRESHOLD for s in sim.values())} with J >= {THRESHOLD}, "
          f"{sum(s >= THRESHOLD + 0.05 for s in sim.values())} with J >= {THRESHOLD + 0.05:.2f}, "
          f"max J across families {max(fam_j, default=0):.3f}")
    # every pair not in sim has J = 0
    sim_all = _Sim(sim)

    results = {}
    for verify in (False, True):
        for ranks in (1, 2):
            label = f"{'verify' if verify else 'no-verify'} {ranks} rank{'s' if ranks > 1 else ''}"
            outdir = os.path.join(workdir, f"out-{'v' if verify else 'nv'}-{ranks}")
            removed = run_dedup(curate, mpirun, paths, outdir, ranks, verify)
            results[label] = removed
            evaluate(label, removed, ids, sim_all, MIN_PRECISION if verify else None)
        one, two = results[f"{'verify' if verify else 'no-verify'} 1 rank"], results[f"{'verify' if verify else 'no-verify'} 2 ranks"]
        if one != two:
            diff = sorted(set(one.items()) ^ set(two.items()))[:5]
            fail(f"{'verify' if verify else 'no-verify'}: 1 and 2 ranks differ ({len(one)} vs {len(two)} removals; e.g. {diff})")
        else:
            print(f"ok {'verify' if verify else 'no-verify'}: 1 and 2 ranks give identical removals and kept ids ({len(one)} removed)")
    one = run_dedup(curate, mpirun, paths, os.path.join(workdir, "out-one"), 1, True, ("--cluster-keep", "one"))
    evaluate("verify --cluster-keep one (for comparison)", one, ids, sim_all, None, None)
    if failures:
        print(f"check_fuzzy_ground_truth: {len(failures)} failure(s)", file=sys.stderr)
        sys.exit(1)


class _Sim(dict):
    """Pairwise Jaccard (i < j); pairs that share no shingle are absent and read as 0."""

    def __missing__(self, key):
        return 0.0


if __name__ == "__main__":
    main()
