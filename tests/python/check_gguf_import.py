"""A GGUF that llama.cpp wrote (or quantised) and our import of it hold the same weights.

  check_gguf_import.py FILE.gguf RUNDIR/checkpoints/step-00000000/model.h5

Each tensor is dequantised by the gguf package (llama.cpp's own Python reader), brought back to
HF's row order for q/k (the inverse of llama.cpp's RoPE permutation) and compared bit for bit
with what ckpt-convert --from-gguf wrote. Prints the tensor types seen.
"""
import collections
import re
import sys

import gguf
import h5py
import hdf5plugin  # noqa: F401  (zstd filter)
import numpy as np

r = gguf.GGUFReader(sys.argv[1])
h5 = h5py.File(sys.argv[2], "r")
field = lambda k: r.fields[k].contents()
n_head, n_kv = field("llama.attention.head_count"), field("llama.attention.head_count_kv")

layer = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
         "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
top = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}

def hf_name(g):
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", g)
    if m:
        return f"model.layers.{m[1]}.{layer[m[2]]}.weight"
    return top[g.removesuffix(".weight")] + ".weight"

def unpermute(w, heads):
    # llama.cpp row 2j+h of a head is HF row h*d/2 + j.
    rows, cols = w.shape
    d = rows // heads
    return w.reshape(heads, d // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)

types = collections.Counter()
for t in r.tensors:
    if t.name == "rope_freqs.weight":
        continue
    w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
    w = w.reshape([int(x) for x in reversed(t.shape)])  # ne is fastest-first
    if ".attn_q." in t.name:
        w = unpermute(w, n_head)
    elif ".attn_k." in t.name:
        w = unpermute(w, n_kv)
    ours = h5["params/" + hf_name(t.name)][()]
    assert ours.shape == w.shape, (t.name, ours.shape, w.shape)
    assert np.array_equal(ours.view(np.uint32), w.view(np.uint32)), f"{t.name} ({t.tensor_type.name}): values differ"
    types[t.tensor_type.name] += 1
print("identical weights; tensor types:", dict(types))
