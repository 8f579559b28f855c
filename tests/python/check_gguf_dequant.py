#!/usr/bin/env python3
"""Our GGUF reader and writer against llama.cpp's own Python package (gguf, gguf-py).

Usage: check_gguf_dequant.py --bin BUILD/tests/gguf-tensors --dir WORKDIR [--seed N]
                             [--corrupt-ours TENSOR] [--corrupt-sample]

1. Reading a foreign file. gguf.GGUFWriter writes a file (custom alignment 64) with metadata of
   every value type and random tensors in F32, F16, BF16, Q8_0, Q4_0, Q4_1 (quantised with
   gguf.quants.quantize) and Q4_K, Q5_K, Q6_K (random block bytes whose fp16 scale fields are set
   to small finite values, written as raw quantised tensors). `gguf-tensors FILE OUTDIR` reads it
   with formats::GgufReader; its float32 output must equal gguf.quants.dequantize's bit for bit.
   No tolerance: both sides evaluate the same float32 operations in the same order (numpy's
   element-wise ufuncs round after every operation, and our code is built without FMA
   contraction for x86-64), so any difference is a bug. The metadata, tensor types and dims
   (ggml order = the numpy shape reversed) must agree as well.
2. Writing a file read by gguf-py. `gguf-tensors --write-sample OUT [ALIGNMENT]` writes metadata
   of every value type (nested arrays included) and F32/F16/BF16/Q8_0 tensors from a formula;
   gguf.GGUFReader must see the same keys, value types and values, the tensors' dims, types and
   offsets, and bytes equal to what numpy/gguf.quants produce from the same floats (Q8_0:
   gguf.quants.quantize, whose Q8_0 is bit-exact with ggml's reference quantize_row_q8_0).
   Done for the default alignment (32) and for general.alignment = 128.

--corrupt-ours / --corrupt-sample change one value after our tool ran, to show the comparison
is not vacuous (the run must then fail and name the tensor).
Prints "ok ..." per check and "FAIL ..." per failure; exits 1 when anything failed.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from gguf import quants

failures = []


def ok(msg):
    print("ok " + msg)


def fail(msg):
    print("FAIL " + msg)
    failures.append(msg)


def check(cond, ok_msg, fail_msg):
    (ok if cond else fail)(ok_msg if cond else fail_msg)
    return cond


# --- part 1: gguf-py writes, we read ----------------------------------------------------------

K_SCALE_FIELDS = {  # byte offsets of fp16 fields inside one block
    Q.Q4_K: (0, 2),    # d, dmin
    Q.Q5_K: (0, 2),    # d, dmin
    Q.Q6_K: (208,),    # d
}


def random_k_blocks(rng, qtype, shape_elems):
    """Random block bytes for a k-quant tensor of numpy shape `shape_elems` (last dim a multiple
    of 256), with every fp16 scale a small finite value so that outputs stay finite."""
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(shape_elems)) // block
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in K_SCALE_FIELDS[qtype]:
        scale = rng.uniform(-0.05, 0.05, size=n_blocks).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(*shape_elems[:-1], shape_elems[-1] // block * type_size)


def foreign_tensors(rng):
    """(name, qtype, array handed to GGUFWriter, numpy shape in elements)."""
    out = []

    def normal(shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    x = normal((3, 40))
    out.append(("w.f32", Q.F32, x, x.shape))
    x = normal((50,), 100.0)
    out.append(("w.f32_1d", Q.F32, x, x.shape))
    x = normal((5, 6, 7), 3.0).astype(np.float16)
    out.append(("w.f16", Q.F16, x, x.shape))
    x = normal((4, 33), 1e3)
    out.append(("w.bf16", Q.BF16, quants.quantize(x, Q.BF16), x.shape))
    x = normal((6, 64))
    x[1, :32] = 0.0  # a zero block
    out.append(("w.q8_0", Q.Q8_0, quants.quantize(x, Q.Q8_0), x.shape))
    x = normal((2, 3, 96), 0.5)
    out.append(("w.q4_0", Q.Q4_0, quants.quantize(x, Q.Q4_0), x.shape))
    x = normal((5, 32), 2.0)
    out.append(("w.q4_1", Q.Q4_1, quants.quantize(x, Q.Q4_1), x.shape))
    for qtype, shape in ((Q.Q4_K, (16, 512)), (Q.Q5_K, (4, 4, 512)), (Q.Q6_K, (16, 512)), (Q.Q6_K, (256,))):
        name = "w." + qtype.name.lower() + ("_1d" if len(shape) == 1 else "")
        out.append((name, qtype, random_k_blocks(rng, qtype, shape), shape))
    return out


FOREIGN_METADATA = [  # key, GGUFValueType, value, array sub-type
    ("meta.u8", V.UINT8, 250, None),
    ("meta.i8", V.INT8, -120, None),
    ("meta.u16", V.UINT16, 65000, None),
    ("meta.i16", V.INT16, -32000, None),
    ("meta.u32", V.UINT32, 4294967295, None),
    ("meta.i32", V.INT32, -2147483648, None),
    ("meta.f32", V.FLOAT32, 0.1, None),
    ("meta.u64", V.UINT64, 2**64 - 1, None),
    ("meta.i64", V.INT64, -2**63, None),
    ("meta.f64", V.FLOAT64, 1.0 / 3.0, None),
    ("meta.bool_true", V.BOOL, True, None),
    ("meta.bool_false", V.BOOL, False, None),
    ("meta.string", V.STRING, "caf\u00e9 \u0120tokens \U0001F600", None),
    ("tokenizer.ggml.tokens", V.ARRAY, ["<s>", "</s>", "\u0120the", "a b", "\u00e9"], None),
    ("tokenizer.ggml.token_type", V.ARRAY, [3, 3, 1, 1, 6], None),
    ("tokenizer.ggml.scores", V.ARRAY, [0.0, -1.25, 7.5], None),
    ("meta.u8s", V.ARRAY, [0, 1, 255], V.UINT8),
    ("meta.u64s", V.ARRAY, [0, 2**63], V.UINT64),
    ("meta.bools", V.ARRAY, [True, False, True], V.BOOL),
    ("meta.nested", V.ARRAY, [[1, 2], [3], [4, 5, 6]], None),
    ("meta.nested_strings", V.ARRAY, [["a", "bc"], ["d"]], None),
]

TYPE_NAMES = {V.UINT8: "uint8", V.INT8: "int8", V.UINT16: "uint16", V.INT16: "int16", V.UINT32: "uint32",
              V.INT32: "int32", V.FLOAT32: "float32", V.BOOL: "bool", V.STRING: "string", V.ARRAY: "array",
              V.UINT64: "uint64", V.INT64: "int64", V.FLOAT64: "float64"}


def python_value_json(vtype, value, sub_type=None):
    """A value in gguf-tensors' index.json form, from what was handed to GGUFWriter."""
    if vtype == V.ARRAY:
        elem = sub_type if sub_type is not None else V.get_type(value[0])
        return {"type": "array", "elem_type": TYPE_NAMES[elem],
                "values": [python_value_json(elem, v) for v in value]}
    if vtype == V.FLOAT32:
        value = float(np.float32(value))  # what the file holds
    return {"type": TYPE_NAMES[vtype], "value": value}


def bits_equal(ours, ref):
    return ours.shape == ref.shape and np.array_equal(ours.view(np.uint32), ref.view(np.uint32))


def first_difference(ours, ref):
    if ours.shape != ref.shape:
        return f"{ours.size} values, expected {ref.size}"
    i = int(np.nonzero(ours.view(np.uint32) != ref.view(np.uint32))[0][0])
    ulps = abs(int(ours.view(np.int32)[i]) - int(ref.view(np.int32)[i]))
    return f"element {i}: ours {ours[i]!r}, gguf.quants {ref[i]!r} ({ulps} ulp apart)"


def part_foreign(args, rng):
    path = os.path.join(args.dir, "foreign.gguf")
    outdir = os.path.join(args.dir, "foreign.out")
    tensors = foreign_tensors(rng)
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    for key, vtype, value, sub in FOREIGN_METADATA:
        w.add_key_value(key, value, vtype, sub_type=sub)
    for name, qtype, arr, _shape in tensors:
        w.add_tensor(name, arr, raw_dtype=None if qtype in (Q.F32, Q.F16) else qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    run = subprocess.run([args.bin, path, outdir], capture_output=True, text=True)
    if not check(run.returncode == 0, "gguf-tensors read gguf-py's file",
                 f"gguf-tensors failed on gguf-py's file: {run.stderr.strip()}"):
        return
    if args.corrupt_ours:
        p = os.path.join(outdir, args.corrupt_ours + ".f32")
        data = np.fromfile(p, dtype="<u4")
        data[0] ^= 1
        data.tofile(p)
    index = json.load(open(os.path.join(outdir, "index.json")))
    check(index["version"] == 3 and index["alignment"] == 64, "version 3, general.alignment 64",
          f"version {index['version']}, alignment {index['alignment']}")

    ours_md = {m["key"]: m["value"] for m in index["metadata"]}
    expected_md = {"general.architecture": {"type": "string", "value": "llama"},
                   "general.alignment": {"type": "uint32", "value": 64}}
    for key, vtype, value, sub in FOREIGN_METADATA:
        expected_md[key] = python_value_json(vtype, value, sub)
    check(sorted(ours_md) == sorted(expected_md), f"metadata keys ({len(expected_md)})",
          f"metadata keys differ: ours {sorted(ours_md)}, written {sorted(expected_md)}")
    for key, want in expected_md.items():
        got = ours_md.get(key)
        check(got == want, f"metadata {key} ({want['type']})", f"metadata {key}: ours {got}, written {want}")

    by_name = {t["name"]: t for t in index["tensors"]}
    check([t["name"] for t in index["tensors"]] == [t[0] for t in tensors], "tensor names and order",
          f"tensor names {[t['name'] for t in index['tensors']]}")
    for name, qtype, arr, shape in tensors:
        info = by_name.get(name)
        if info is None:
            fail(f"{name}: missing from our reader's output")
            continue
        check(info["type"] == qtype.name and info["ne"] == list(reversed(shape)),
              f"{name}: {qtype.name}, ne {info['ne']}",
              f"{name}: ours {info['type']} ne {info['ne']}, written {qtype.name} shape {shape}")
        check(info["offset"] % 64 == 0, f"{name}: offset aligned", f"{name}: offset {info['offset']}")
        ref = np.ascontiguousarray(quants.dequantize(arr, qtype), dtype=np.float32).reshape(-1)
        ours = np.fromfile(os.path.join(outdir, name + ".f32"), dtype="<f4")
        if bits_equal(ours, ref):
            ok(f"dequant {qtype.name} {name}: {ref.size} values bit-identical")
        else:
            fail(f"dequant {qtype.name} {name}: {first_difference(ours, ref)}")


# --- part 2: we write, gguf-py reads -----------------------------------------------------------

def sample_value(t, i, ne0):
    """tests/helpers/gguf-tensors.cpp sample_value(), element-wise over i (exact in float32)."""
    base = ((i * 37 + 11 * t) % 251 - 125).astype(np.float64)
    v = base / 16.0 * (1 + (i // ne0) % 3) + (i % 7) / 4096.0
    if t == 3:
        v[(i >= ne0) & (i < ne0 + 32)] = 0.0
    return v.astype(np.float32)


def decode_parts(parts, k, vtype):
    """Walks a GGUFReader field's parts (which follow the file's encoding) into index.json form."""
    vtype = V(int(vtype))
    if vtype == V.STRING:
        return {"type": "string", "value": bytes(parts[k + 1]).decode("utf-8")}, k + 2
    if vtype == V.ARRAY:
        elem = V(int(parts[k][0]))
        count = int(parts[k + 1][0])
        k += 2
        values = []
        for _ in range(count):
            v, k = decode_parts(parts, k, elem)
            values.append(v)
        return {"type": "array", "elem_type": TYPE_NAMES[elem], "values": values}, k
    x = parts[k][0]
    if vtype == V.BOOL:
        value = bool(x)
    elif vtype in (V.FLOAT32, V.FLOAT64):
        value = float(x)
    else:
        value = int(x)
    return {"type": TYPE_NAMES[vtype], "value": value}, k + 1


SAMPLE_TENSORS = [  # name, type, ne (must match gguf-tensors.cpp write_sample)
    ("sample.f32", Q.F32, [7, 3]),
    ("sample.f16", Q.F16, [5, 2, 3]),
    ("sample.bf16", Q.BF16, [9]),
    ("sample.q8_0", Q.Q8_0, [64, 3]),
    ("sample.q8_0_4d", Q.Q8_0, [32, 1, 2, 2]),
]


def expected_bytes(qtype, src):
    if qtype == Q.F32:
        return src.astype("<f4").tobytes()
    if qtype == Q.F16:
        return src.astype("<f2").tobytes()
    return quants.quantize(src, qtype).tobytes()


def part_sample(args, alignment):
    path = os.path.join(args.dir, f"sample-{alignment}.gguf")
    run = subprocess.run([args.bin, "--write-sample", path, str(alignment)], capture_output=True, text=True)
    if not check(run.returncode == 0, f"gguf-tensors --write-sample {alignment}",
                 f"--write-sample failed: {run.stderr.strip()}"):
        return
    expected = json.load(open(path + ".expected.json"))
    if args.corrupt_sample:
        with open(path, "r+b") as f:
            data = f.read()
            pos = len(data) - 1
            while data[pos] == 0:  # the last tensor's last non-padding byte
                pos -= 1
            f.seek(pos)
            f.write(bytes([data[pos] ^ 1]))
    r = gguf.GGUFReader(path)
    tag = f"[align {alignment}]"
    check(int(r.fields["GGUF.version"].parts[0][0]) == 3, f"{tag} version 3", f"{tag} version is not 3")
    check(r.alignment == alignment, f"{tag} gguf-py sees alignment {alignment}", f"{tag} alignment {r.alignment}")

    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    want_keys = [m["key"] for m in expected["metadata"]]
    check(keys == want_keys, f"{tag} metadata keys in order ({len(keys)})", f"{tag} keys {keys}, wrote {want_keys}")
    types_seen = set()
    for m in expected["metadata"]:
        field = r.fields.get(m["key"])
        if field is None:
            continue
        got, end = decode_parts(field.parts, 3, field.parts[2][0])
        check(got == m["value"] and end == len(field.parts), f"{tag} metadata {m['key']} ({m['value']['type']})",
              f"{tag} metadata {m['key']}: gguf-py reads {got}, we wrote {m['value']}")
        types_seen.add(m["value"]["type"])
        if m["value"]["type"] == "array":
            types_seen.add(m["value"]["elem_type"])
    check(types_seen == set(TYPE_NAMES.values()), f"{tag} all 13 value types covered",
          f"{tag} value types covered: {sorted(types_seen)}")

    check([t.name for t in r.tensors] == [t[0] for t in SAMPLE_TENSORS], f"{tag} tensor names",
          f"{tag} tensors {[t.name for t in r.tensors]}")
    for (name, qtype, ne), t in zip(SAMPLE_TENSORS, r.tensors):
        check(t.tensor_type == qtype and t.shape.tolist() == ne, f"{tag} {name}: {qtype.name} ne {ne}",
              f"{tag} {name}: gguf-py reads {t.tensor_type.name} ne {t.shape.tolist()}")
        check((t.data_offset - r.data_offset) % alignment == 0 and t.data_offset % alignment == 0,
              f"{tag} {name}: data aligned", f"{tag} {name}: data at {t.data_offset}")
        numel = int(np.prod(ne))
        src = sample_value(SAMPLE_TENSORS.index((name, qtype, ne)), np.arange(numel, dtype=np.int64), ne[0])
        src = src.reshape(list(reversed(ne)))
        if qtype in (Q.F32, Q.F16):
            check(t.data.shape == src.shape, f"{tag} {name}: numpy shape {src.shape}",
                  f"{tag} {name}: numpy shape {t.data.shape}, expected {src.shape}")
        got = bytes(r.data[t.data_offset:t.data_offset + t.n_bytes])
        want = expected_bytes(qtype, src)
        if got == want:
            ok(f"{tag} {name}: {len(want)} bytes equal numpy/gguf.quants' {qtype.name}")
        else:
            i = next(k for k in range(min(len(got), len(want))) if got[k] != want[k]) if len(got) == len(want) else -1
            fail(f"{tag} {name}: bytes differ from gguf.quants' {qtype.name} (first at byte {i})")
    # Padding: the data section ends aligned and is zero after each tensor.
    size = len(r.data)
    check(size % alignment == 0, f"{tag} file size {size} aligned", f"{tag} file size {size}")
    ends = sorted((t.data_offset, t.data_offset + t.n_bytes) for t in r.tensors)
    for (_, end), (nxt, _) in zip(ends, ends[1:] + [(size, size)]):
        if np.any(r.data[end:nxt] != 0):
            fail(f"{tag} non-zero padding in [{end}, {nxt})")
            break
    else:
        ok(f"{tag} tensor padding is zeros")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="path to gguf-tensors")
    ap.add_argument("--dir", required=True, help="scratch directory")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corrupt-ours", metavar="TENSOR", help="flip a bit of our output for TENSOR (self-test)")
    ap.add_argument("--corrupt-sample", action="store_true", help="flip a bit of the sample's last tensor (self-test)")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    part_foreign(args, np.random.default_rng(args.seed))
    for alignment in (32, 128):
        part_sample(args, alignment)
    print(f"{len(failures)} failed" if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
