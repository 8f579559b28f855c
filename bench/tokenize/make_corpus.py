#!/usr/bin/env python3
"""Real text for the tokenize-pack benchmark, from this machine's /usr/share/doc (standard library only).

No cl100k_base.tiktoken and no web text can be downloaded here, so both the vocabulary's training text
and the benchmark corpus come from the documentation every Debian system ships: Debian and upstream
changelogs, NEWS, README, copyright files, Markdown/reStructuredText/HTML manuals, text files, example
code (.gz files decompressed). That is mostly English prose with names (accented letters), e-mail
addresses, version numbers, dates, URLs, code, tables, ASCII art and long whitespace runs, plus some
non-English text.

Files are read in path order; files that are not UTF-8 text (NUL bytes, invalid UTF-8) or are
machine-generated bulk (PostScript, PDF, JSON, logs, images) are skipped; byte-identical files
(Debian symlinks and copies one changelog into many packages) are kept once. Each distinct file goes
to one of two disjoint pools by the sha256 of its content: 'train' (4 in 10) or 'bench' (6 in 10), so
the corpus that is timed is held out from the text the vocabulary was trained on. A file is cut into
documents at blank lines, each document 0.5-24 KB long (log-uniform target, seeded); the pool's
documents are shuffled (seeded) and written as JSONL {"text": ...} until --mb 10^6 bytes of JSONL.

usage: make_corpus.py --split train|bench --mb N [--seed S] -o OUT.jsonl [--stats OUT.stats.json]
                      [--parts DIR --num-parts K]   (also the same documents as K JSONL files in DIR)
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import random
import sys
import time

SKIP_EXT = {".ps", ".eps", ".pdf", ".json", ".log", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".bmp",
            ".xpm", ".pbm", ".ppm", ".tif", ".tiff", ".woff", ".woff2", ".ttf", ".otf", ".dvi", ".bz2", ".xz",
            ".zst", ".zip", ".pyc", ".mo", ".gmo", ".db", ".pickle"}
SKIP_NAMES = {"test_results"}
TRAIN_SHARE = 4  # out of 10


def source_files(root):
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            yield os.path.join(d, f)


def kind_of(path):
    name = os.path.basename(path)
    if name.endswith(".gz"):
        name = name[:-3]
    ext = os.path.splitext(name)[1].lower()
    return name, ext


def read_text(path):
    """The file's text, or None when it is not a UTF-8 text file worth keeping."""
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    name, ext = kind_of(path)
    if ext in SKIP_EXT or name in SKIP_NAMES or name.startswith("test_results"):
        return None
    try:
        with open(path, "rb") as f:
            b = f.read()
        if path.endswith(".gz"):
            b = gzip.decompress(b)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if not b or b"\0" in b:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def documents(text, rng):
    """Cuts text into documents at blank lines, each reaching a log-uniform 0.5-24 KB target."""
    paras = text.split("\n\n")
    docs, cur, size = [], [], 0
    target = math.exp(rng.uniform(math.log(500), math.log(24000)))
    for p in paras:
        cur.append(p)
        size += len(p) + 2
        if size >= target:
            docs.append("\n\n".join(cur))
            cur, size = [], 0
            target = math.exp(rng.uniform(math.log(500), math.log(24000)))
    if cur:
        tail = "\n\n".join(cur)
        if tail.strip():
            docs.append(tail)
    return [d for d in docs if d.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["train", "bench"], required=True)
    ap.add_argument("--mb", type=float, required=True, help="stop after this many 10^6 bytes of JSONL")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--source", default="/usr/share/doc")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--stats")
    ap.add_argument("--parts", help="also write the documents, in the same order, as --num-parts JSONL files here")
    ap.add_argument("--num-parts", type=int, default=8)
    a = ap.parse_args()

    t0 = time.time()
    seen = set()
    pool = []  # (path, text)
    files_seen = files_kept = 0
    for path in source_files(a.source):
        files_seen += 1
        text = read_text(path)
        if text is None:
            continue
        h = hashlib.sha256(text.encode("utf-8")).digest()
        if h in seen:
            continue
        seen.add(h)
        in_train = h[0] % 10 < TRAIN_SHARE
        if in_train != (a.split == "train"):
            continue
        files_kept += 1
        pool.append((path, text))

    docs = []
    kinds = {}
    for path, text in pool:
        # Per-file generator: a file's documents do not depend on which other files exist.
        rng = random.Random(f"{a.seed}:{path}")
        for d in documents(text, rng):
            docs.append((d, path))
    random.Random(a.seed).shuffle(docs)

    limit = int(a.mb * 1e6)
    written = text_bytes = chars = non_ascii = 0
    n = 0
    lines = []
    for d, path in docs:
        line = json.dumps({"text": d}, ensure_ascii=False) + "\n"
        lb = len(line.encode("utf-8"))
        if written + lb > limit and n > 0:
            break
        lines.append(line)
        written += lb
        tb = len(d.encode("utf-8"))
        text_bytes += tb
        chars += len(d)
        non_ascii += sum(1 for c in d if ord(c) > 127)
        name, ext = kind_of(path)
        k = ext or ("changelog" if name.startswith("changelog") else name.split(".")[0].lower())
        kinds[k] = kinds.get(k, 0) + tb
        n += 1
    with open(a.output, "w", encoding="utf-8") as f:
        f.writelines(lines)
    if a.parts:
        os.makedirs(a.parts, exist_ok=True)
        for old in os.listdir(a.parts):
            if old.endswith(".jsonl"):
                os.remove(os.path.join(a.parts, old))
        # Contiguous runs of documents, about equal in bytes: part-00000 ... in corpus order.
        per = max(1, written // a.num_parts + 1)
        part, acc, out = 0, 0, None
        for line in lines:
            if out is None:
                out = open(os.path.join(a.parts, f"part-{part:05d}.jsonl"), "w", encoding="utf-8")
            out.write(line)
            acc += len(line.encode("utf-8"))
            if acc >= per * (part + 1) and part + 1 < a.num_parts:
                out.close()
                out = None
                part += 1
        if out:
            out.close()
    top = dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:12])
    stats = {"split": a.split, "seed": a.seed, "source": a.source, "docs": n, "jsonl_bytes": written,
             "text_bytes": text_bytes, "chars": chars, "non_ascii_chars": non_ascii,
             "pool_files": files_kept, "files_scanned": files_seen, "pool_docs": len(docs),
             "pool_exhausted": n == len(docs), "text_bytes_by_kind_top": top,
             "generator": "bench/tokenize/make_corpus.py", "seconds": round(time.time() - t0, 2)}
    if n == len(docs) and written < limit * 0.98:
        print(f"make_corpus: the {a.split} pool holds only {written / 1e6:.1f} MB of JSONL (asked {a.mb} MB)",
              file=sys.stderr)
    if a.stats:
        with open(a.stats, "w") as f:
            json.dump(stats, f, indent=1)
            f.write("\n")
    print(f"make_corpus: {a.output}: {n} documents, {written / 1e6:.1f} MB JSONL, {text_bytes / 1e6:.1f} MB text "
          f"({a.split} pool: {files_kept} files), {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
