"""SentencePiece models through tokenize-pack give sentencepiece's own ids (PyPI, the reference).

Trains, offline and with a fixed seed, a BPE model with byte fallback (Llama 2 style) and a
unigram model on a generated multilingual text, then encodes a separate test corpus (emoji, CJK,
combining marks, whitespace runs, digits, raw invalid UTF-8) with `tokenize-pack --encode` and
with `SentencePieceProcessor.encode`, document by document; decodes our ids with
`tokenize-pack --decode` and with `SentencePieceProcessor.decode`. Zero mismatches required.
Invalid UTF-8 is compared after Python's decode(errors="replace"), which is what tokenize-pack
does to its input.

usage: python check_sentencepiece.py TOKENIZE_PACK WORKDIR
"""
import json
import os
import random
import subprocess
import sys

import sentencepiece as spm

PIECES = ["the", "quick", "brown", "fox", "Straße", "naïve", "café", "e\u0301", "数据库", "東京", "서울", "🙂", "👩‍💻",
          "Здравствуйте", "καλημέρα", "مرحبا", "12345", "3.14", "don't", "  ", "\t", "\n", "\n\n", "   x", "...", "!?"]


def corpus(rng, n, lo, hi):
    return [" ".join(rng.choice(PIECES) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


def json_string_bytes(b):
    """A JSON string literal holding the bytes `b` as they are, invalid UTF-8 included."""
    out = bytearray(b'"')
    for c in b:
        if c in (0x22, 0x5C):
            out += b"\\" + bytes([c])
        elif c < 0x20:
            out += b"\\u%04x" % c
        else:
            out.append(c)
    return bytes(out + b'"')


def main():
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = random.Random(11)
    with open(os.path.join(work, "train.txt"), "w") as f:
        f.write("\n".join(corpus(rng, 3000, 3, 40)))
    raw_docs = [s.encode() for s in corpus(rng, 300, 0, 60)]
    raw_docs += [b"", b"   ", b"a\xff b", b"\xc3", b"caf\xe9", b"\xf0\x9f\x98x", "e\u0301 é".encode()]
    test = os.path.join(work, "test.jsonl")
    with open(test, "wb") as f:
        for b in raw_docs:
            f.write(b'{"text": ' + json_string_bytes(b) + b"}\n")
    texts = [b.decode("utf-8", "replace") for b in raw_docs]
    failures = 0
    # The unigram trainer caps the vocabulary by what this small text supports.
    for kind, extra in (("bpe", dict(byte_fallback=True, vocab_size=450)), ("unigram", dict(vocab_size=100))):
        prefix = os.path.join(work, kind)
        spm.SentencePieceTrainer.train(input=os.path.join(work, "train.txt"), model_prefix=prefix,
                                       model_type=kind, character_coverage=1.0, seed_sentencepiece_size=100000,
                                       num_threads=1, minloglevel=2, **extra)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        out = subprocess.run([tool, "--tokenizer", prefix + ".model", "--encode", test], capture_output=True)
        if out.returncode != 0:
            sys.exit(f"check_sentencepiece: tokenize-pack failed: {out.stderr.decode()}")
        ours = [[int(x) for x in line.split()] for line in out.stdout.decode().split("\n")[:-1]]
        bad = 0
        for i, (text, got) in enumerate(zip(texts, ours)):
            want = sp.encode(text)
            if got != want:
                bad += 1
                if bad <= 3:
                    print(f"{kind}: doc {i} {text!r}: ours {got[:12]} ref {want[:12]}", file=sys.stderr)
        if len(ours) != len(texts):
            bad += 1
            print(f"{kind}: {len(ours)} lines for {len(texts)} documents", file=sys.stderr)
        ids_file = os.path.join(work, kind + ".ids")
        with open(ids_file, "w") as f:
            f.write("\n".join(" ".join(map(str, o)) for o in ours) + "\n")
        dec = subprocess.run([tool, "--tokenizer", prefix + ".model", "--decode", ids_file], capture_output=True, text=True)
        decoded = [json.loads(l)["text"] for l in dec.stdout.splitlines()]
        dbad = sum(d != sp.decode(o) for d, o in zip(decoded, ours)) + (len(decoded) != len(ours))
        print(f"{kind}: {len(texts)} documents, {bad} encode mismatches, {dbad} decode mismatches")
        failures += bad + dbad
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
