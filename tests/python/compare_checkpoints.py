"""Two bellows checkpoints (model.h5) hold bit-identical weights and the same model config.

  compare_checkpoints.py A/model.h5 B/model.h5     (test venv: h5py + hdf5plugin for zstd)
"""
import json
import sys

import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter)
import numpy as np

a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = lambda f: sorted(f"params/{k}" for k in f["params"].keys())
assert names(a) == names(b), (names(a), names(b))
for n in names(a):
    x, y = a[n][()], b[n][()]
    assert x.dtype == y.dtype == np.float32 and x.shape == y.shape, n
    assert np.array_equal(x.view(np.uint32), y.view(np.uint32)), f"{n}: weights differ"
ca, cb = (json.loads(f.attrs["model_config"]) for f in (a, b))
for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
          "tie_word_embeddings"):
    assert ca.get(k) == cb.get(k), (k, ca.get(k), cb.get(k))
print(f"{len(names(a))} tensors bit-identical, configs equal")
