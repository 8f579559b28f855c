"""Foreign-reader check: h5py + hdf5plugin (PyPI) read the sample files libshared wrote.

For every <kind>.h5 in DIR with its <kind>.expected.json (written by write-sample-shards), this
opens the file with h5py, checks that every dataset goes through the zstd filter (32015) and
Fletcher32, and compares every attribute and every value with what the C++ writer says it
wrote. Exits non-zero on the first mismatch, naming file, dataset and index.

usage: python check_h5py_reads.py DIR
"""
import glob
import json
import os
import sys

import hdf5plugin  # noqa: F401  (registers filter 32015 with h5py's HDF5)
import h5py
import numpy as np

ZSTD_ID = "32015"


def fail(msg):
    print("check_h5py_reads: " + msg, file=sys.stderr)
    sys.exit(1)


def check_filters(path, name, ds):
    filters = ds._filters  # h5py's view of the dataset's filter pipeline
    if ZSTD_ID not in filters:
        fail(f"{path}: {name}: no zstd filter (32015) in {filters}")
    if not ds.fletcher32:
        fail(f"{path}: {name}: Fletcher32 checksum is off")
    if ds.chunks is None:
        fail(f"{path}: {name}: not chunked")


def check_values(path, name, got, want_values, dtype, shape):
    if str(got.dtype) != dtype:
        fail(f"{path}: {name}: dtype {got.dtype}, expected {dtype}")
    if list(got.shape) != list(shape):
        fail(f"{path}: {name}: shape {got.shape}, expected {shape}")
    # Exact comparison, floats included: the JSON holds the float32 values widened to double and
    # printed as shortest round-trip decimals, so converting back gives the same float32 bits.
    want = np.asarray(want_values, dtype=got.dtype).reshape(shape)
    bad = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
    if bad.size:
        i = int(bad[0])
        fail(f"{path}: {name}: element {i} is {got.reshape(-1)[i]}, expected {want.reshape(-1)[i]}")


def check_file(path, expected):
    with h5py.File(path, "r") as f:
        kind = f.attrs["schema"]
        if kind != expected["kind"]:
            fail(f"{path}: schema attribute {kind!r}, expected {expected['kind']!r}")
        for key in ("schema_version", "bellows_version", "git_hash", "tool", "created_utc", "config", "inputs"):
            if key not in f.attrs:
                fail(f"{path}: missing provenance attribute {key}")
        json.loads(f.attrs["config"])
        json.loads(f.attrs["inputs"])
        for key, want in expected["attrs"].items():
            got = f.attrs[key]
            if isinstance(want, float):
                ok = float(got) == want
            elif isinstance(want, int):
                ok = int(got) == want
            else:
                ok = str(got) == want
            if not ok:
                fail(f"{path}: attribute {key} is {got!r}, expected {want!r}")
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            check_filters(path, name, f[name])
        if expected["kind"] == "docs":
            check_docs(path, f, expected["documents"])
            return len(names)
        if sorted(names) != sorted(expected["datasets"].keys()):
            fail(f"{path}: datasets {sorted(names)} != expected {sorted(expected['datasets'].keys())}")
        for name, want in expected["datasets"].items():
            check_values(path, name, f[name][...], want["values"], want["dtype"], want["shape"])
        return len(names)


def ragged_strings(f, col):
    data = f[col + "_data"][...].tobytes()
    off = f[col + "_offsets"][...]
    return [data[off[i]:off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]


def check_docs(path, f, docs):
    n = int(f.attrs["num_docs"])
    if n != len(docs):
        fail(f"{path}: num_docs {n}, expected {len(docs)}")
    cols = {c: ragged_strings(f, c) for c in ("text", "id", "source", "lang")}
    scores = f["lang_score"][...]
    for i, d in enumerate(docs):
        for c in cols:
            if cols[c][i] != d[c]:
                fail(f"{path}: document {i}: {c} {cols[c][i][:40]!r} != expected {d[c][:40]!r}")
        if scores[i] != np.float32(d["lang_score"]):
            fail(f"{path}: document {i}: lang_score {scores[i]} != {d['lang_score']}")


def check_needs_plugin(path):
    """Negative control: without hdf5plugin, h5py must fail to read the data, which proves the
    chunks really are zstd frames and not stored raw."""
    import subprocess
    code = (
        "import h5py, sys\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "name = []\n"
        "f.visititems(lambda n, o: name.append(n) if isinstance(o, h5py.Dataset) and o.size else None)\n"
        "f[name[0]][...]\n"
    )
    env = dict(os.environ, HDF5_PLUGIN_PATH="/nonexistent")
    r = subprocess.run([sys.executable, "-c", code, path], env=env, capture_output=True, text=True)
    if r.returncode == 0:
        fail(f"{path}: h5py read the data without hdf5plugin: the zstd filter is not in use")


def main():
    if len(sys.argv) != 2:
        fail("usage: check_h5py_reads.py DIR")
    files = sorted(glob.glob(os.path.join(sys.argv[1], "*.expected.json")))
    if not files:
        fail(f"no *.expected.json in {sys.argv[1]}")
    for exp in files:
        h5 = exp[: -len(".expected.json")] + ".h5"
        with open(exp) as fh:
            expected = json.load(fh)
        n = check_file(h5, expected)
        check_needs_plugin(h5)
        print(f"ok {os.path.basename(h5)}: {n} datasets read by h5py {h5py.__version__} + hdf5plugin {hdf5plugin.version}")


if __name__ == "__main__":
    main()
