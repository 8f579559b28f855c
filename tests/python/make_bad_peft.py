"""PEFT adapter directories that ckpt-convert --lora-from-peft must refuse, made from a good one.

  make_bad_peft.py GOOD_PEFT_DIR OUTDIR        (hf venv: safetensors + torch)

Writes OUTDIR/<case>/ for every case and OUTDIR/cases.tsv: one line per case, tab-separated:
the directory, the exit status expected (2: a setting or layout we do not support, or a missing
file; 1: a damaged or inconsistent file) and a string the one-line message must contain.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

good, out = sys.argv[1:3]
os.makedirs(out, exist_ok=True)
cfg0 = json.load(open(f"{good}/adapter_config.json"))
tensors0 = load_file(f"{good}/adapter_model.safetensors")
cases = []


def case(name, status, must, cfg=None, tensors=None, weights=True, config=True, raw_config=None, raw_weights=None):
    d = f"{out}/{name}"
    os.makedirs(d)
    if config:
        with open(f"{d}/adapter_config.json", "w") as f:
            f.write(raw_config if raw_config is not None else json.dumps(cfg if cfg is not None else cfg0, indent=2))
    if weights:
        if raw_weights is not None:
            with open(f"{d}/adapter_model.safetensors", "wb") as f:
                f.write(raw_weights)
        else:
            save_file(tensors if tensors is not None else tensors0, f"{d}/adapter_model.safetensors", metadata={"format": "pt"})
    cases.append((d, status, must))


def with_cfg(**kw):
    c = dict(cfg0)
    c.update(kw)
    return c


a_key = next(k for k in tensors0 if k.endswith("q_proj.lora_A.weight"))
b_key = next(k for k in tensors0 if k.endswith("q_proj.lora_B.weight"))

# Missing files (usage: exit 2, the directory named).
case("no-config", 2, "adapter_config.json", config=False)
case("no-weights", 2, "adapter_model.safetensors", weights=False)
case("bin-only", 2, "adapter_model.bin", weights=False)
with open(f"{out}/bin-only/adapter_model.bin", "wb") as f:
    f.write(b"PK\x03\x04 a pickle would run code")
# Settings we cannot represent (exit 2, naming adapter_config.json and the setting).
case("lm-head-target", 2, "lm_head", cfg=with_cfg(target_modules=cfg0["target_modules"] + ["lm_head"]))
case("regex-target", 2, "target_modules", cfg=with_cfg(target_modules=r".*\.(q|v)_proj"))
case("dora", 2, "DoRA", cfg=with_cfg(use_dora=True))
case("bias-all", 2, "bias", cfg=with_cfg(bias="all"))
case("fan-in-fan-out", 2, "fan_in_fan_out", cfg=with_cfg(fan_in_fan_out=True))
case("rank-pattern", 2, "rank_pattern", cfg=with_cfg(rank_pattern={"q_proj": cfg0["r"] * 2}))
case("some-layers", 2, "layers_to_transform", cfg=with_cfg(layers_to_transform=[0]))
case("modules-to-save", 2, "modules_to_save", cfg=with_cfg(modules_to_save=["lm_head"]))
case("not-lora", 2, "peft_type", cfg=with_cfg(peft_type="IA3"))
case("seq-cls", 2, "task_type", cfg=with_cfg(task_type="SEQ_CLS"))
case("bad-json", 2, "adapter_config.json", raw_config='{"peft_type": "LORA", "r": ')
# Damaged or inconsistent weights (exit 1, naming adapter_model.safetensors and the tensor).
t = dict(tensors0)
del t[b_key]
case("missing-tensor", 1, b_key, tensors=t)
t = dict(tensors0)
t[a_key] = torch.zeros(t[a_key].shape[0] + 1, t[a_key].shape[1])
case("wrong-shape", 1, a_key, tensors=t)
t = dict(tensors0)
t["base_model.model.lm_head.weight"] = torch.zeros(4, 4)
case("extra-tensor", 1, "lm_head.weight", tensors=t)
t = dict(tensors0)
t[a_key] = t[a_key].clone()
t[a_key][0, 0] = float("nan")
case("nan", 1, "NaN", tensors=t)
raw = open(f"{good}/adapter_model.safetensors", "rb").read()
case("truncated", 1, "adapter_model.safetensors", raw_weights=raw[: len(raw) - 100])
case("r-mismatch", 1, "shape", cfg=with_cfg(r=cfg0["r"] + 1))

with open(f"{out}/cases.tsv", "w") as f:
    for d, status, must in cases:
        f.write(f"{d}\t{status}\t{must}\n")
print(f"{len(cases)} cases")
