"""An HF export checked by transformers itself (run with the hf venv's python).

  check_hf_export.py HF_DIR LOGITS_JSON --tol T [--texts FILE --ids FILE]

LOGITS_JSON is lm-generate --dump-logits output for the same checkpoint: transformers'
LlamaForCausalLM, loaded from HF_DIR in float32, must give logits within T of ours, measured as
max|ours - theirs| / max|ours| over every position and vocabulary entry. With --texts (one JSON
string per line) and --ids (tokenize-pack --encode output for the same lines), transformers'
tokenizer loaded from HF_DIR must give the same ids.
"""
import argparse
import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("hf_dir")
ap.add_argument("logits_json")
ap.add_argument("--tol", type=float, required=True)
ap.add_argument("--texts")
ap.add_argument("--ids")
a = ap.parse_args()

ours = json.load(open(a.logits_json))
ids = ours["ids"]
ref = torch.tensor(ours["logits"], dtype=torch.float64)
model = AutoModelForCausalLM.from_pretrained(a.hf_dir, torch_dtype=torch.float32)
model.eval()
assert type(model).__name__ == "LlamaForCausalLM", type(model).__name__
with torch.no_grad():
    theirs = model(torch.tensor([ids])).logits[0].double()
assert theirs.shape == ref.shape, (theirs.shape, ref.shape)
rel = float((theirs - ref).abs().max() / ref.abs().max())
print(f"logits: {len(ids)} positions x {ref.shape[1]}: max relative difference {rel:.3g} (tolerance {a.tol:g})")
assert rel <= a.tol, rel

if a.texts:
    tok = AutoTokenizer.from_pretrained(a.hf_dir)
    texts = [json.loads(l) for l in open(a.texts)]
    want = [[int(x) for x in l.replace(",", " ").split()] for l in open(a.ids)]
    assert len(texts) == len(want), (len(texts), len(want))
    for i, (t, w) in enumerate(zip(texts, want)):
        got = tok(t, add_special_tokens=False)["input_ids"]
        assert got == w, f"text {i}: transformers {got[:20]}... ours {w[:20]}..."
    print(f"tokenizer: {len(texts)} texts, identical ids")
