"""A random Llama checkpoint in HF layout, for the memory-cap test and the conversion benchmark.

  make_random_hf_llama.py SRC_HF_DIR DST --hidden C --ffn F --layers L --heads H [--dtype f16|f32]

Copies SRC's tokenizer and config, resizes the config, and writes DST/model.safetensors tensor
by tensor from a fixed seed (weights ~ N(0, 0.02), norms 1).
"""
import argparse
import json
import shutil

import numpy as np
from safetensors.numpy import save_file

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--hidden", type=int, required=True)
ap.add_argument("--ffn", type=int, required=True)
ap.add_argument("--layers", type=int, required=True)
ap.add_argument("--heads", type=int, required=True)
ap.add_argument("--dtype", default="f16", choices=["f16", "f32"])
a = ap.parse_args()

shutil.copytree(a.src, a.dst, ignore=shutil.ignore_patterns("*.safetensors", "*.index.json", "report.json"))
c = json.load(open(f"{a.dst}/config.json"))
c.update(hidden_size=a.hidden, intermediate_size=a.ffn, num_hidden_layers=a.layers, num_attention_heads=a.heads,
         num_key_value_heads=a.heads, tie_word_embeddings=False, rope_scaling=None,
         torch_dtype="float16" if a.dtype == "f16" else "float32")
c.pop("head_dim", None)
json.dump(c, open(f"{a.dst}/config.json", "w"), indent=2)
dt = np.float16 if a.dtype == "f16" else np.float32
rng = np.random.default_rng(0)
w = lambda *s: (rng.standard_normal(s, dtype=np.float32) * 0.02).astype(dt)
V, C, F = c["vocab_size"], a.hidden, a.ffn
t = {"model.embed_tokens.weight": w(V, C), "lm_head.weight": w(V, C), "model.norm.weight": np.ones(C, dt)}
for i in range(a.layers):
    p = f"model.layers.{i}."
    for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
        t[p + f"self_attn.{n}.weight"] = w(C, C)
    t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"], t[p + "mlp.down_proj.weight"] = w(F, C), w(F, C), w(C, F)
    t[p + "input_layernorm.weight"] = np.ones(C, dt)
    t[p + "post_attention_layernorm.weight"] = np.ones(C, dt)
save_file(t, f"{a.dst}/model.safetensors", metadata={"format": "pt"})
