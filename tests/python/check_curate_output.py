"""Checks a curate-dedup output directory against the manifest of tests/helpers/make_corpus.py.

Reads the document shards (OUTDIR/docs-*.h5) with h5py + hdf5plugin, the audit trail
(OUTDIR/removed.jsonl.zst, through zstdcat) and OUTDIR/report.json, and checks:
  - every document of the manifest is either kept (in exactly one shard row) or has exactly one
    line in removed.jsonl.zst, never both, and nothing else is there (--extra-removed ID allows
    a removed record the manifest does not know, e.g. a planted bad line, by its audit id);
  - planted exact copies are removed with stage exact, reason exact_dup and kept_id = the
    original's id; planted near copies with stage fuzzy, reason fuzzy_dup, kept_id = original;
    every original is kept (when --langs and the like leave it alone: --allow-removed-original);
  - the documents that carried PII are kept with <EMAIL> and <PHONE> in place of the addresses
    and numbers, and no '@' left;
  - report.json agrees: documents.in = all records, documents.out = rows in the shards,
    exact_dedup.removed / fuzzy_dedup.removed = removed lines of those reasons, pii.email and
    pii.phone at least what was planted, each stage's docs_in - docs_out = its removed counts.
Prints one "ok ..." line, or the problems (one per line) and exits 1.

usage: python check_curate_output.py OUTDIR MANIFEST [--extra-removed ID]...
       python check_curate_output.py --kept-ids OUTDIR     (prints kept ids, shard order)
"""
import glob
import json
import os
import subprocess
import sys

import hdf5plugin  # noqa: F401  (registers filter 32015 with h5py's HDF5)
import h5py


def ragged(f, name):
    off = f[name + "_offsets"][:]
    data = f[name + "_data"][:].tobytes()
    return [data[off[i]:off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]


def read_shards(outdir):
    docs = []
    for path in sorted(glob.glob(os.path.join(outdir, "docs-*.h5"))):
        with h5py.File(path, "r") as f:
            if f.attrs.get("schema") not in ("docs", b"docs"):
                raise SystemExit(f"{path}: schema attribute is {f.attrs.get('schema')!r}, expected 'docs'")
            ids, texts = ragged(f, "id"), ragged(f, "text")
            for i, t in zip(ids, texts):
                docs.append({"id": i, "text": t, "shard": os.path.basename(path)})
    return docs


def read_removed(outdir):
    out = subprocess.run(["zstdcat", os.path.join(outdir, "removed.jsonl.zst")], check=True,
                         capture_output=True).stdout.decode("utf-8")
    return [json.loads(line) for line in out.splitlines() if line]


def main(argv):
    if len(argv) == 3 and argv[1] == "--kept-ids":
        for d in read_shards(argv[2]):
            print(d["id"])
        return 0
    extra, allow_removed_original, args = set(), False, []
    it = iter(argv[1:])
    for a in it:
        if a == "--extra-removed":
            extra.add(next(it))
        elif a == "--allow-removed-original":
            allow_removed_original = True
        else:
            args.append(a)
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir, manifest = args
    m = json.load(open(manifest, encoding="utf-8"))
    report = json.load(open(os.path.join(outdir, "report.json"), encoding="utf-8"))
    kept = read_shards(outdir)
    removed = read_removed(outdir)
    problems = []

    all_ids = [d["id"] for d in m["docs"]]
    kept_ids = [d["id"] for d in kept]
    removed_ids = [r["id"] for r in removed]
    by_removed = {}
    for r in removed:
        by_removed.setdefault(r["id"], []).append(r)
    for i in sorted({i for i in kept_ids if kept_ids.count(i) > 1}):
        problems.append(f"{i}: kept {kept_ids.count(i)} times")
    for i, rs in sorted(by_removed.items()):
        if len(rs) > 1:
            problems.append(f"{i}: {len(rs)} lines in removed.jsonl.zst")
    both = set(kept_ids) & set(removed_ids)
    for i in sorted(both):
        problems.append(f"{i}: both kept and in removed.jsonl.zst ({by_removed[i][0]['reason']})")
    for i in all_ids:
        if i not in set(kept_ids) and i not in by_removed:
            problems.append(f"{i}: neither kept nor in removed.jsonl.zst")
    for i in sorted((set(kept_ids) | set(removed_ids)) - set(all_ids) - extra):
        problems.append(f"{i}: in the output but not in the input")
    for i in sorted(extra - set(removed_ids)):
        problems.append(f"{i}: expected in removed.jsonl.zst, missing")
    for r in removed:
        for k in ("id", "source", "stage", "reason"):
            if not isinstance(r.get(k), str) or not r[k]:
                problems.append(f"removed line without '{k}': {json.dumps(r)}")

    for kind, stage, reason in (("exact", "exact", "exact_dup"), ("near", "fuzzy", "fuzzy_dup")):
        for copy, orig in m[kind].items():
            rs = by_removed.get(copy)
            if not rs:
                problems.append(f"{kind} copy {copy} of {orig} was not removed")
                continue
            r = rs[0]
            if (r["stage"], r["reason"], r.get("kept_id")) != (stage, reason, orig):
                problems.append(f"{kind} copy {copy}: removed as stage={r['stage']} reason={r['reason']} "
                                f"kept_id={r.get('kept_id')}, expected {stage}/{reason} kept_id={orig}")
            if orig not in kept_ids and not allow_removed_original:
                problems.append(f"original {orig} of {kind} copy {copy} is not kept")

    texts = {d["id"]: d["text"] for d in kept}
    planted = {"email": 0, "phone": 0}
    for i, counts in m["pii"].items():
        for k in planted:
            planted[k] += counts.get(k, 0)
        if i not in texts:
            problems.append(f"PII document {i} is not kept")
            continue
        t = texts[i]
        if "@" in t or t.count("<EMAIL>") < counts["email"] or t.count("<PHONE>") < counts["phone"]:
            problems.append(f"PII document {i} not redacted as planted: {t.count('<EMAIL>')} <EMAIL>, "
                            f"{t.count('<PHONE>')} <PHONE>, '@' {'present' if '@' in t else 'absent'}")

    docs = report.get("documents", {})
    if docs.get("in") != len(all_ids) + len(extra):
        problems.append(f"report documents.in = {docs.get('in')}, expected {len(all_ids) + len(extra)}")
    if docs.get("out") != len(kept):
        problems.append(f"report documents.out = {docs.get('out')}, but the shards hold {len(kept)} rows")
    n_exact = sum(1 for r in removed if r["reason"] == "exact_dup")
    n_fuzzy = sum(1 for r in removed if r["reason"] == "fuzzy_dup")
    if report.get("exact_dedup", {}).get("removed") != n_exact:
        problems.append(f"report exact_dedup.removed = {report.get('exact_dedup', {}).get('removed')}, "
                        f"removed.jsonl.zst has {n_exact} exact_dup")
    if report.get("fuzzy_dedup", {}).get("removed") != n_fuzzy:
        problems.append(f"report fuzzy_dedup.removed = {report.get('fuzzy_dedup', {}).get('removed')}, "
                        f"removed.jsonl.zst has {n_fuzzy} fuzzy_dup")
    for k, n in planted.items():
        if report.get("pii", {}).get(k, 0) < n:
            problems.append(f"report pii.{k} = {report.get('pii', {}).get(k)}, planted {n}")
    total_removed = 0
    for name, st in report.get("stages", {}).items():
        rem = st.get("removed") or {}  # (null instead of {} is checked by its own test)
        if name == "input" and "unreadable_file" in rem:
            continue  # a file that broke off: no docs_in for what was lost
        if st.get("docs_in", 0) - st.get("docs_out", 0) != sum(rem.values()):
            problems.append(f"report stages.{name}: docs_in {st.get('docs_in')} - docs_out {st.get('docs_out')} "
                            f"!= removed {json.dumps(rem)}")
        total_removed += sum(rem.values())
    if total_removed != len(removed):
        problems.append(f"report stages count {total_removed} removed documents, removed.jsonl.zst has {len(removed)}")

    if problems:
        print("\n".join(problems))
        return 1
    print(f"ok {outdir}: {len(kept)} kept, {len(removed)} removed, {n_exact} exact_dup, {n_fuzzy} fuzzy_dup")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
