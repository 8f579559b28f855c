#!/usr/bin/env python3
"""Compares two id files (one document per line, space-separated ids) document by document (stdlib only).

usage: compare_ids.py OURS.txt PEER.txt --corpus CORPUS.jsonl --result OUT.json [--show 5]
Exit status 0 whether or not they match (the benchmark reports it); 1 only when a file cannot be read.
"""
import argparse
import itertools
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("peer")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--show", type=int, default=5)
    a = ap.parse_args()
    docs = same = 0
    ours_tokens = peer_tokens = 0
    ours_lines = peer_lines = 0
    diffs = []
    with open(a.ours) as fo, open(a.peer) as fp, open(a.corpus, encoding="utf-8") as fc:
        corpus = (line for line in fc if line.strip())
        for k, (lo, lp) in enumerate(itertools.zip_longest(fo, fp)):
            text_line = next(corpus, None)
            if lo is not None:
                ours_lines += 1
            if lp is not None:
                peer_lines += 1
            o = lo.split() if lo is not None else None
            p = lp.split() if lp is not None else None
            ours_tokens += len(o or [])
            peer_tokens += len(p or [])
            docs += 1
            if o == p:
                same += 1
                continue
            if len(diffs) < a.show:
                o, p = o or [], p or []
                i = next((j for j, (x, y) in enumerate(zip(o, p)) if x != y), min(len(o), len(p)))
                text = json.loads(text_line)["text"] if text_line else None
                diffs.append({"doc": k + 1, "first_difference_at_token": i, "ours_tokens": len(o), "peer_tokens": len(p),
                              "ours_around": o[max(0, i - 3):i + 6], "peer_around": p[max(0, i - 3):i + 6],
                              "text_head": text[:300] if text is not None else None})
    res = {"docs_compared": docs, "ours_lines": ours_lines, "peer_lines": peer_lines, "identical_docs": same,
           "differing_docs": docs - same, "ours_tokens": ours_tokens, "peer_tokens": peer_tokens,
           "identical": docs == same and ours_lines == peer_lines, "first_differences": diffs,
           "ours": a.ours, "peer": a.peer}
    with open(a.result, "w") as f:
        json.dump(res, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"compare_ids: {same} of {docs} documents identical ({ours_tokens} vs {peer_tokens} tokens)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
