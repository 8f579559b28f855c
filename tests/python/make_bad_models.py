"""Broken copies of a good HF export and GGUF, one defect each, for ckpt-convert's error tests.

  make_bad_models.py GOOD_HF_DIR GOOD.gguf OUTDIR

Writes OUTDIR/<case>/ (HF directories) and OUTDIR/<case>.gguf, and OUTDIR/cases.tsv with one
line per case: path, the tensor or key the error must name ("-" for none).
"""
import json
import os
import shutil
import struct
import sys

import gguf
import numpy as np

good, good_gguf, out = sys.argv[1:4]
os.makedirs(out, exist_ok=True)
cases = []

def hf_case(name, must_name, edit):
    d = f"{out}/{name}"
    shutil.copytree(good, d)
    edit(d)
    cases.append((d, must_name))

def read_st(d):
    raw = open(f"{d}/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]

def write_st(d, header, data, pad=True):
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-(8 + len(h)) % 8)
    open(f"{d}/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data)

def first_tensor(header):
    return sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])

def truncate(d):
    p = f"{d}/model.safetensors"
    os.truncate(p, os.path.getsize(p) - 100)

def overlap(d):
    h, data = read_st(d)
    a, b = first_tensor(h)[:2]
    h[b]["data_offsets"] = [h[b]["data_offsets"][0] - 4, h[b]["data_offsets"][1] - 4]
    write_st(d, h, data)

def big_header(d):
    p = f"{d}/model.safetensors"
    raw = bytearray(open(p, "rb").read())
    raw[:8] = struct.pack("<Q", 200_000_000)
    open(p, "wb").write(raw)

def bad_dtype(d):
    h, data = read_st(d)
    h[first_tensor(h)[0]]["dtype"] = "F33"
    write_st(d, h, data)

def missing(d):
    # Drop the last tensor (by offset) and its bytes: a valid file without it.
    h, data = read_st(d)
    last = first_tensor(h)[-1]
    begin = h[last]["data_offsets"][0]
    del h[last]
    write_st(d, h, data[:begin])
    cases[-1:] = []  # the name is known only now
    missing.name = last

def bad_shape(d):
    c = json.load(open(f"{d}/config.json"))
    c["intermediate_size"] += 16
    json.dump(c, open(f"{d}/config.json", "w"))

def arch(d):
    c = json.load(open(f"{d}/config.json"))
    c["architectures"] = ["MistralForCausalLM"]
    json.dump(c, open(f"{d}/config.json", "w"))

hf_case("truncated", "-", truncate)
hf_case("overlap", "-", overlap)
hf_case("big-header", "-", big_header)
hf_case("bad-dtype", "-", bad_dtype)
hf_case("missing", "-", missing)
cases.append((f"{out}/missing", missing.name))
hf_case("bad-shape", "model.layers.0.mlp.gate_proj.weight", bad_shape)
hf_case("arch", "MistralForCausalLM", arch)
# The first tensor of the bad-dtype case is named in its error.
h, _ = read_st(f"{out}/bad-dtype")
cases = [(p, first_tensor(h)[0] if p.endswith("/bad-dtype") else n) for p, n in cases]

raw = bytearray(open(good_gguf, "rb").read())
def gguf_case(name, must_name, data):
    open(f"{out}/{name}.gguf", "wb").write(data)
    cases.append((f"{out}/{name}.gguf", must_name))

b = bytearray(raw); b[:4] = b"GGUX"; gguf_case("bad-magic", "-", b)
b = bytearray(raw); b[4:8] = struct.pack("<I", 7); gguf_case("bad-version", "-", b)
r = gguf.GGUFReader(good_gguf)
t = r.tensors[0]
type_part = t.field.parts[4]  # name length, name, n_dims, dims, type, offset
off = type_part.ctypes.data - r.data.ctypes.data
b = bytearray(raw); b[off:off + 4] = struct.pack("<I", 99); gguf_case("bad-type", t.name, b)
gguf_case("truncated", "-", raw[: len(raw) - 1000])

with open(f"{out}/cases.tsv", "w") as f:
    for p, n in cases:
        f.write(f"{p}\t{n}\n")
