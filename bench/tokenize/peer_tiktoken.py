#!/usr/bin/env python3
"""tiktoken (and, for information, HF tokenizers) over the benchmark corpus, one thread, timed in-process.

1. Reads the JSONL corpus and parses every record (json.loads; timed apart, not part of the encode span).
2. Loads the rank file with tiktoken.load.load_tiktoken_bpe and builds tiktoken.Encoding objects:
     shipped  - pat_str = the cl100k_base pattern exactly as this tiktoken release ships it
                (tiktoken_ext.openai_public.cl100k_base()["pat_str"], read without downloading the ranks:
                the possessive-quantifier form tiktoken adopted for speed);
     formats  - pat_str = the cl100k pattern of formats.md §5 / tokenize-pack's --pattern cl100k
                (the Llama 3 tokenizer.json form). Both split every text the same way.
3. Timed, per variant: [enc.encode_ordinary(t) for t in texts] (time.perf_counter around the loop).
   Every variant's ids are compared with the first one's, document by document.
4. --hf tokenizer.json: HF tokenizers' Tokenizer.encode_batch(texts, add_special_tokens=False) with
   TOKENIZERS_PARALLELISM=false (sequential), timed the same way; its ids compared with tiktoken's.
5. Writes the first variant's ids, one document per line, space-separated (not timed; the process's
   wall time includes it, as tokenize-pack --encode's includes printing its ids).

usage: peer_tiktoken.py CORPUS.jsonl --ranks vocab.tiktoken --eos-id N --ids-out IDS.txt --result OUT.json
                        [--variants shipped,formats] [--hf tokenizer.json]
"""
import os

os.environ["TIKTOKEN_CACHE_DIR"] = ""
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

T_START = time.perf_counter()

import tiktoken  # noqa: E402
import tiktoken.load  # noqa: E402

# formats.md §5 (= tests/python/make_tokenizer_fixtures.py CL100K_PATTERN = tokenize-pack --pattern cl100k)
FORMATS_CL100K = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
EOS = "<|endoftext|>"


def shipped_cl100k_pattern():
    """tiktoken's own cl100k_base pat_str, without fetching cl100k_base.tiktoken."""
    import tiktoken_ext.openai_public as op
    real = op.load_tiktoken_bpe
    op.load_tiktoken_bpe = lambda *a, **k: {}
    try:
        return op.cl100k_base()["pat_str"]
    finally:
        op.load_tiktoken_bpe = real


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--ranks", required=True)
    ap.add_argument("--eos-id", type=int, required=True)
    ap.add_argument("--ids-out", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--variants", default="shipped,formats")
    ap.add_argument("--hf")
    a = ap.parse_args()
    res = {"python": sys.version.split()[0], "tiktoken": tiktoken.__version__,
           "import_seconds": time.perf_counter() - T_START}

    t = time.perf_counter()
    with open(a.corpus, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    res["parse_seconds"] = time.perf_counter() - t
    res["docs"] = len(texts)
    res["text_bytes"] = sum(len(x.encode("utf-8")) for x in texts)

    t = time.perf_counter()
    ranks = tiktoken.load.load_tiktoken_bpe(a.ranks)
    res["load_ranks_seconds"] = time.perf_counter() - t
    res["ranks"] = len(ranks)
    patterns = {"shipped": shipped_cl100k_pattern(), "formats": FORMATS_CL100K}
    res["variants"] = {}
    first_ids = None
    for v in a.variants.split(","):
        t = time.perf_counter()
        enc = tiktoken.Encoding(f"bench-{v}", pat_str=patterns[v], mergeable_ranks=ranks,
                                special_tokens={EOS: a.eos_id})
        build_s = time.perf_counter() - t
        encode = enc.encode_ordinary
        t = time.perf_counter()
        ids = [encode(x) for x in texts]
        secs = time.perf_counter() - t
        info = {"seconds": secs, "build_encoding_seconds": build_s, "pat_str": patterns[v],
                "tokens": sum(len(i) for i in ids)}
        if first_ids is None:
            first_ids, first_v = ids, v
        else:
            info["docs_differing_from_" + first_v] = sum(1 for x, y in zip(ids, first_ids) if x != y)
        res["variants"][v] = info
        print(f"peer_tiktoken: {v}: {secs:.3f} s, {res['text_bytes'] / 1e6 / secs:.2f} MB/s, {info['tokens']} tokens",
              file=sys.stderr)
        del ids
    if a.hf:
        import tokenizers
        from tokenizers import Tokenizer
        t = time.perf_counter()
        hf = Tokenizer.from_file(a.hf)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        encs = hf.encode_batch(texts, add_special_tokens=False)
        secs = time.perf_counter() - t
        ids = [e.ids for e in encs]
        diff = [k for k, (x, y) in enumerate(zip(ids, first_ids)) if x != y]
        res["hf"] = {"tokenizers": tokenizers.__version__, "seconds": secs, "load_seconds": load_s,
                     "tokens": sum(len(i) for i in ids), "docs_differing_from_tiktoken": len(diff),
                     "first_differing_docs": diff[:5]}
        print(f"peer_tiktoken: HF tokenizers: {secs:.3f} s, {res['text_bytes'] / 1e6 / secs:.2f} MB/s, "
              f"{len(diff)} documents differ from tiktoken", file=sys.stderr)
        del encs, ids

    t = time.perf_counter()
    with open(a.ids_out, "w") as f:
        for ids in first_ids:
            f.write(" ".join(map(str, ids)))
            f.write("\n")
    res["write_ids_seconds"] = time.perf_counter() - t
    res["ids_variant"] = first_v
    res["process_seconds_in_python"] = time.perf_counter() - T_START
    with open(a.result, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
