#!/usr/bin/env python3
"""One peer tokenizer over the benchmark corpus, one thread, timed in-process; one peer per process.

--peer picks it:
  tiktoken-shipped  tiktoken.Encoding over the rank file with pat_str = the cl100k_base pattern exactly as
                    this tiktoken release ships it (tiktoken_ext.openai_public.cl100k_base()["pat_str"], read
                    without downloading the ranks: the possessive-quantifier form, what
                    tiktoken.get_encoding("cl100k_base") uses);
  tiktoken-formats  the same with the cl100k pattern of formats.md §5 = tokenize-pack's --pattern cl100k
                    (the Llama 3 tokenizer.json form). Both forms split every text the same way;
  hf                HF tokenizers: Tokenizer.from_file(tokenizer.json) of the same vocabulary,
                    encode_batch(texts, add_special_tokens=False) with TOKENIZERS_PARALLELISM=false
                    (sequential).
Steps: read the JSONL corpus and json.loads every record (timed apart: 'parse_seconds'); load the
tokenizer ('load_seconds'); timed ('seconds'): encode every text (tiktoken: encode_ordinary in a list
comprehension); then write the ids, one document per line, space-separated ('write_ids_seconds').
The process's wall time (measured by run.sh) includes all of it, as tokenize-pack --encode's includes
parsing and printing its ids.

usage: peer_encode.py CORPUS.jsonl --peer P --vocab-dir DIR --ids-out IDS.txt --result OUT.json
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
    ap.add_argument("--peer", choices=["tiktoken-shipped", "tiktoken-formats", "hf"], required=True)
    ap.add_argument("--vocab-dir", required=True, help="holds vocab.tiktoken, tokenizer.json, meta.json")
    ap.add_argument("--ids-out", required=True)
    ap.add_argument("--result", required=True)
    a = ap.parse_args()
    res = {"peer": a.peer, "python": sys.version.split()[0]}

    t = time.perf_counter()
    if a.peer == "hf":
        import tokenizers
        from tokenizers import Tokenizer
        res["version"] = tokenizers.__version__
    else:
        import tiktoken
        import tiktoken.load
        res["version"] = tiktoken.__version__
    res["import_seconds"] = time.perf_counter() - t

    t = time.perf_counter()
    with open(a.corpus, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    res["parse_seconds"] = time.perf_counter() - t
    res["docs"] = len(texts)
    res["text_bytes"] = sum(len(x.encode("utf-8")) for x in texts)

    t = time.perf_counter()
    if a.peer == "hf":
        hf = Tokenizer.from_file(os.path.join(a.vocab_dir, "tokenizer.json"))
        res["load_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        encs = hf.encode_batch(texts, add_special_tokens=False)
        ids = [e.ids for e in encs]
        res["seconds"] = time.perf_counter() - t
        del encs
    else:
        ranks = tiktoken.load.load_tiktoken_bpe(os.path.join(a.vocab_dir, "vocab.tiktoken"))
        pat = shipped_cl100k_pattern() if a.peer == "tiktoken-shipped" else FORMATS_CL100K
        enc = tiktoken.Encoding(f"bench-{a.peer}", pat_str=pat, mergeable_ranks=ranks,
                                special_tokens={EOS: len(ranks)})
        res["load_seconds"] = time.perf_counter() - t
        res["pat_str"] = pat
        encode = enc.encode_ordinary
        t = time.perf_counter()
        ids = [encode(x) for x in texts]
        res["seconds"] = time.perf_counter() - t
    res["tokens"] = sum(len(i) for i in ids)
    print(f"peer_encode: {a.peer}: {res['seconds']:.3f} s, {res['text_bytes'] / 1e6 / res['seconds']:.2f} MB/s, "
          f"{res['tokens']} tokens", file=sys.stderr)

    t = time.perf_counter()
    with open(a.ids_out, "w") as f:
        for i in ids:
            f.write(" ".join(map(str, i)))
            f.write("\n")
    res["write_ids_seconds"] = time.perf_counter() - t
    res["process_seconds_in_python"] = time.perf_counter() - T_START
    with open(a.result, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
