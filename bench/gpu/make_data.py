#!/usr/bin/env python3
"""Data for bench/gpu on a machine with no registry and no corpus: a tiktoken rank file of exactly
--vocab tokens (Llama 3's 128,256 by default, so the model has llama3.2-1b's real embedding and
lm_head shapes) and a JSONL corpus of random words over the same alphabet, to be packed by
tokenize-pack. Throughput does not depend on what the text says; the shapes are what count.

    make_data.py OUTDIR [--vocab 128256] [--tokens 1500000] [--seed 1]

Tokens: the 256 single bytes, then every 2-character string over a 64-character alphabet (4,096),
then 3-character strings in order until one short of the vocabulary; ranks in that order, so
every merge BPE needs has a lower rank than its result. The last id is the special token
<|end_of_text|> (tokenize-pack --special-token '<|end_of_text|>=ID' --eos-token ...), as in
Llama 3."""
import argparse
import base64
import itertools
import json
import os
import random

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--tokens", type=int, default=1_500_000, help="about this many tokens of text")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    toks = [bytes([b]) for b in range(256)]
    for n in (2, 3, 4):
        for t in itertools.product(ALPHABET, repeat=n):
            if len(toks) >= a.vocab - 1:
                break
            toks.append("".join(t).encode())
    assert len(toks) == a.vocab - 1, len(toks)
    with open(os.path.join(a.out, "vocab.tiktoken"), "w") as f:
        for rank, t in enumerate(toks):
            f.write(f"{base64.b64encode(t).decode()} {rank}\n")
    rng = random.Random(a.seed)
    letters = ALPHABET[:62]
    written = 0
    with open(os.path.join(a.out, "corpus.jsonl"), "w") as f:
        while written < a.tokens * 2.5:  # ~2.5 characters per token
            words = [" " + "".join(rng.choice(letters) for _ in range(rng.randint(1, 7))) for _ in range(rng.randint(200, 2000))]
            text = "".join(words).strip()
            f.write(json.dumps({"text": text}) + "\n")
            written += len(text)
    print(f"make_data: {a.vocab - 1} tokens + <|end_of_text|>={a.vocab - 1} in {a.out}/vocab.tiktoken, {written} characters in {a.out}/corpus.jsonl")


if __name__ == "__main__":
    main()
