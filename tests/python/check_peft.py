"""LoRA adapters checked by HF peft itself (run with the hf venv's python).

  check_peft.py logits HF_DIR PEFT_DIR LOGITS_JSON --tol T [--scaling S] [--merged HF_DIR2]
      peft loads PEFT_DIR onto transformers' LlamaForCausalLM from HF_DIR (float32); its logits
      for LOGITS_JSON's ids (lm-generate --lora --dump-logits) must be within T of ours, measured
      as max|ours - theirs| / max|ours|. --scaling: the scaling peft must have derived from
      adapter_config.json (alpha/r, or alpha/sqrt(r) with use_rslora). --merged: the logits of
      that merged export (ckpt-convert --merge --to hf), loaded by transformers alone, must be
      within T of peft's.
  check_peft.py make HF_DIR OUT_DIR IDS_JSON OUT_LOGITS --r R --alpha A --targets q_proj,v_proj
                [--rslora] [--seed S] [--dtype float32|bfloat16]
      makes an adapter the way peft users do (get_peft_model, then B drawn at random instead of
      peft's zeros, so that it changes something), saves it with save_pretrained (safetensors,
      in --dtype) and writes peft's logits for IDS_JSON's ids to OUT_LOGITS ({"ids", "logits"}).
  check_peft.py compare A.json B.json --tol T
      two --dump-logits files of the same ids within T of each other (relative to A's largest).
"""
import argparse
import json
import sys

import torch


def rel_diff(theirs, ref):
    assert theirs.shape == ref.shape, (theirs.shape, ref.shape)
    return float((theirs - ref).abs().max() / ref.abs().max())


def load_logits(path):
    d = json.load(open(path))
    return d["ids"], torch.tensor(d["logits"], dtype=torch.float64)


def hf_model(hf_dir):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32)
    assert type(m).__name__ == "LlamaForCausalLM", type(m).__name__
    return m.eval()


def forward(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].double()


def cmd_logits(a):
    from peft import PeftModel

    ids, ref = load_logits(a.logits_json)
    model = PeftModel.from_pretrained(hf_model(a.hf_dir), a.peft_dir).eval()
    scalings = {float(m.scaling["default"]) for m in model.modules() if hasattr(m, "scaling") and "default" in m.scaling}
    assert len(scalings) == 1, scalings
    (s,) = scalings
    if a.scaling is not None:
        assert abs(s - a.scaling) <= 1e-12 * abs(a.scaling), (s, a.scaling)
    n = sum(1 for m in model.modules() if hasattr(m, "lora_A") and "default" in m.lora_A)
    peft_logits = forward(model, ids)
    rel = rel_diff(peft_logits, ref)
    print(f"peft: {n} adapted modules, scaling {s:g}; logits {len(ids)} x {ref.shape[1]}: "
          f"max relative difference to ours {rel:.3g} (tolerance {a.tol:g})")
    assert rel <= a.tol, rel
    if a.merged:
        rel = rel_diff(forward(hf_model(a.merged), ids), peft_logits)
        print(f"merged export: transformers' logits against peft's unmerged ones: {rel:.3g} (tolerance {a.tol:g})")
        assert rel <= a.tol, rel


def cmd_make(a):
    from peft import LoraConfig, get_peft_model

    ids, _ = load_logits(a.ids_json)
    cfg = LoraConfig(r=a.r, lora_alpha=a.alpha, target_modules=a.targets if a.targets == "all-linear" else a.targets.split(","), use_rslora=a.rslora,
                     lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(hf_model(a.hf_dir), cfg)
    g = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.empty_like(p).uniform_(-0.2, 0.2, generator=g))
    dtype = getattr(torch, a.dtype)
    if dtype != torch.float32:
        # What is saved is what is compared: round the adapter to the saved type first.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.copy_(p.to(dtype).float())
    model.eval()
    logits = forward(model, ids)
    if dtype != torch.float32:
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.data = p.data.to(dtype)
    model.save_pretrained(a.out_dir)
    json.dump({"ids": ids, "logits": logits.tolist()}, open(a.out_logits, "w"))
    print(f"peft adapter in {a.out_dir}: r {a.r}, alpha {a.alpha}, {a.targets}, rslora {a.rslora}, {a.dtype}")


def cmd_compare(a):
    ids_a, la = load_logits(a.a)
    ids_b, lb = load_logits(a.b)
    assert ids_a == ids_b, "the two files are for different ids"
    rel = rel_diff(lb, la)
    print(f"logits {len(ids_a)} x {la.shape[1]}: max relative difference {rel:.3g} (tolerance {a.tol:g})")
    assert rel <= a.tol, rel


ap = argparse.ArgumentParser()
sub = ap.add_subparsers(dest="cmd", required=True)
p = sub.add_parser("logits")
p.add_argument("hf_dir")
p.add_argument("peft_dir")
p.add_argument("logits_json")
p.add_argument("--tol", type=float, required=True)
p.add_argument("--scaling", type=float)
p.add_argument("--merged")
p = sub.add_parser("make")
p.add_argument("hf_dir")
p.add_argument("out_dir")
p.add_argument("ids_json")
p.add_argument("out_logits")
p.add_argument("--r", type=int, required=True)
p.add_argument("--alpha", type=float, required=True)
p.add_argument("--targets", required=True)
p.add_argument("--rslora", action="store_true")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--dtype", default="float32")
p = sub.add_parser("compare")
p.add_argument("a")
p.add_argument("b")
p.add_argument("--tol", type=float, required=True)
a = ap.parse_args()
{"logits": cmd_logits, "make": cmd_make, "compare": cmd_compare}[a.cmd](a)
sys.exit(0)
