"""Two bellows adapter files (kind lora_adapter) hold bit-identical factors and the same settings.

  compare_adapters.py A.h5 B.h5     (h5py + hdf5plugin for zstd: the test venv or the hf venv)

Every dataset (lora/<linear>/A|B) must be present in both with the same shape and the same
float32 bits; rank, alpha, scaling, rslora, dropout, targets, model_config, base_fingerprint and
tokenizer_sha256 must be equal.
"""
import sys

import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter)
import numpy as np


def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for f in (a, b):
    assert f.attrs["schema"] == "lora_adapter", f.attrs["schema"]
da, db = datasets(a), datasets(b)
assert sorted(da) == sorted(db), (sorted(da), sorted(db))
for name in da:
    x, y = da[name], db[name]
    assert x.dtype == y.dtype == np.float32 and x.shape == y.shape, name
    assert np.array_equal(x.view(np.uint32), y.view(np.uint32)), f"{name}: factors differ"
for k in ("rank", "alpha", "scaling", "rslora", "dropout", "targets", "model_config", "base_fingerprint", "tokenizer_sha256"):
    assert a.attrs[k] == b.attrs[k], (k, a.attrs[k], b.attrs[k])
print(f"{len(da)} factors bit-identical, settings and base fingerprint equal")
