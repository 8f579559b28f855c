"""Shingling exactly as libshared/text/minhash.hpp defines it, written independently in Python.

word:n  words are maximal runs of bytes [A-Za-z0-9] or any non-ASCII byte (so every script counts
        as letters), ASCII-lowercased; a shingle is n consecutive words joined by one space.
char:n  n consecutive code points of the text with whitespace runs (space, \\n, \\t, \\r)
        collapsed to one space and leading/trailing whitespace dropped.
A text with fewer than n units yields one shingle of all of them; an empty text yields none.
Shingles are returned as UTF-8 bytes, in order of appearance, duplicates kept.
"""
import re

_WORD = re.compile(rb"[A-Za-z0-9\x80-\xff]+")
_SPACE = re.compile(r"[ \n\t\r]+")


def shingles(text, kind="word", n=5):
    if kind == "word":
        units = [w.lower() for w in _WORD.findall(text.encode("utf-8"))]  # bytes.lower: ASCII only
        sep = b" "
    elif kind == "char":
        units = [c.encode("utf-8") for c in _SPACE.sub(" ", text).strip(" \n\t\r")]
        sep = b""
    else:
        raise ValueError(kind)
    if not units:
        return []
    k = min(n, len(units))
    return [sep.join(units[i:i + k]) for i in range(len(units) - k + 1)]


def parse_spec(spec):
    kind, n = spec.split(":")
    return kind, int(n)
