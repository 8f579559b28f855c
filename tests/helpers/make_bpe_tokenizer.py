"""Writes a small byte-level BPE tokenizer.json (GPT-2 layout) learned from a text, using only the
standard library, plus a tokenizer_config.json naming EOS; for tests that need a tokenizer but
not a reference implementation.

usage: python3 make_bpe_tokenizer.py TEXT_FILE OUTDIR [MERGES]
"""
import collections
import json
import os
import re
import sys


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    text_file, outdir = sys.argv[1], sys.argv[2]
    n_merges = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    b2u = bytes_to_unicode()
    text = open(text_file, encoding="utf-8").read()
    # Words as GPT-2 splits roughly (the trainer only needs plausible pieces).
    words = collections.Counter(re.findall(r" ?\w+| ?[^\s\w]+|\s+", text))
    seqs = {w: [b2u[b] for b in w.encode("utf-8")] for w in words}
    vocab = {b2u[b]: b for b in range(256)}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, s in seqs.items():
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += words[w]
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab.setdefault(a + b, len(vocab))
        for w, s in seqs.items():
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    eos = len(vocab)
    tok = {
        "version": "1.0",
        "added_tokens": [{"id": eos, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": vocab, "merges": merges},
    }
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "tokenizer.json"), "w") as f:
        json.dump(tok, f)
    with open(os.path.join(outdir, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": "<|endoftext|>"}, f)


if __name__ == "__main__":
    main()
