#!/usr/bin/env python3
"""A cl100k-style vocabulary for the benchmark, trained offline, as a tokenizer.json and a tiktoken rank file.

No real cl100k_base.tiktoken can be downloaded here. This trains an HF `tokenizers` byte-level BPE
the way cl100k/Llama 3 pre-tokenizes (Sequence[Split{Regex: cl100k (formats.md §5), Isolated},
ByteLevel{use_regex: false}], BPE with ignore_merges=true, Llama 3's settings) to --vocab-size
tokens (256 bytes + merges) on the 'train' pool of bench/tokenize/make_corpus.py (held out from the
timed corpus), then converts it to a tiktoken rank file with the same conversion
tests/python/make_tokenizer_fixtures.py uses for the test fixtures (imported from there): ranks =
merge order over the byte-level-decoded vocabulary (the 256 single bytes, then merge i = rank 256+i).
No special token is trained, so HF ids equal tiktoken ranks; <|endoftext|> is added afterwards with
id = number of ranks (the EOS of --mode pretrain).

Writes into OUTDIR: tokenizer.json, vocab.tiktoken, meta.json (parameters, sizes, training time,
the self-check: tiktoken.Encoding over the rank file vs the tokenizer.json, on training documents
and random strings).

usage: train_vocab.py TRAIN.jsonl OUTDIR [--vocab-size 50000] [--min-frequency 2]
"""
import argparse
import json
import os
import random
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["TIKTOKEN_CACHE_DIR"] = ""  # tiktoken would cache local files by path (stale after a retrain)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "python"))
import make_tokenizer_fixtures as mtf  # noqa: E402  (CL100K_PATTERN, write_tiktoken, token_bytes)
import tiktoken  # noqa: E402
import tiktoken.load  # noqa: E402
import tokenizers  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

EOS = "<|endoftext|>"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train")
    ap.add_argument("outdir")
    ap.add_argument("--vocab-size", type=int, default=50000)
    ap.add_argument("--min-frequency", type=int, default=2)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)

    t0 = time.perf_counter()
    with open(a.train, encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f if line.strip()]
    train_bytes = sum(len(d.encode("utf-8")) for d in docs)

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(mtf.CL100K_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=a.vocab_size, min_frequency=a.min_frequency, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t1 = time.perf_counter()
    tok.train_from_iterator(docs, trainer, length=len(docs))
    train_s = time.perf_counter() - t1
    tok.add_special_tokens([AddedToken(EOS, special=True, normalized=False)])
    eos_id = tok.token_to_id(EOS)

    json_path = os.path.join(a.outdir, "tokenizer.json")
    d = json.loads(tok.to_str())
    d["model"]["merges"] = [m.split(" ") if isinstance(m, str) else list(m) for m in d["model"]["merges"]]
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)

    # The conversion the test fixtures use (checks merge order, dense ranks, bytes 0..255).
    tk_path = os.path.join(a.outdir, "vocab.tiktoken")
    ranks = mtf.write_tiktoken(d, tk_path, 0)
    if mtf.failures:
        print(f"train_vocab: conversion failed: {mtf.failures}", file=sys.stderr)
        return 1
    loaded = tiktoken.load.load_tiktoken_bpe(tk_path)
    if loaded != ranks:
        print("train_vocab: load_tiktoken_bpe does not read back the ranks written", file=sys.stderr)
        return 1

    # Self-check: tiktoken over the rank file vs HF over the tokenizer.json (ids equal: no specials before).
    enc = tiktoken.Encoding("bellows-bench", pat_str=mtf.CL100K_PATTERN, mergeable_ranks=loaded,
                            special_tokens={EOS: len(loaded)})
    hf = Tokenizer.from_file(json_path)
    rng = random.Random(7)
    alphabet = ("abcdefghijklmnopqrstuvwxyzABCXYZäöüßéàçабвгдежзийклмнопрстуфхцчшщъыьэюяαβγδεζηθ"
                "你好世界大型语言模型한국어かきくカキク  \n\t\r0123456789.,!?'\"-()[]{}<>/\\@#$%^&*_=+😀👍🏽\u0301")
    sample = rng.sample(docs, min(300, len(docs))) + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
                                                      for _ in range(2000)]
    bad = 0
    first_bad = None
    for text in sample:
        want = hf.encode(text, add_special_tokens=False).ids
        got = enc.encode_ordinary(text)
        if got != want:
            bad += 1
            if first_bad is None:
                first_bad = {"text": text[:200], "tiktoken": got[:40], "hf": want[:40]}
        if enc.decode_bytes(got) != text.encode("utf-8"):
            print(f"train_vocab: tiktoken does not round-trip {text[:60]!r}", file=sys.stderr)
            return 1
    lengths = sorted(len(b) for b in loaded)
    meta = {"vocab_size_asked": a.vocab_size, "ranks": len(loaded), "eos": EOS, "eos_id": eos_id,
            "eos_id_is_n_ranks": eos_id == len(loaded), "min_frequency": a.min_frequency,
            "pattern": mtf.CL100K_PATTERN, "ignore_merges": True,
            "train_file": a.train, "train_docs": len(docs), "train_bytes": train_bytes,
            "train_seconds": round(train_s, 2), "total_seconds": round(time.perf_counter() - t0, 2),
            "median_token_bytes": lengths[len(lengths) // 2], "max_token_bytes": lengths[-1],
            "tokenizers": tokenizers.__version__, "tiktoken": tiktoken.__version__,
            "self_check": {"texts": len(sample), "hf_vs_tiktoken_mismatches": bad, "first_mismatch": first_bad},
            "files": {"tokenizer_json": "tokenizer.json", "tiktoken": "vocab.tiktoken"}}
    with open(os.path.join(a.outdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"train_vocab: {len(loaded)} ranks (+ {EOS}={eos_id}) from {len(docs)} documents, {train_bytes / 1e6:.1f} MB, "
          f"trained in {train_s:.1f} s; self-check tiktoken vs tokenizer.json: {bad} of {len(sample)} texts differ",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
