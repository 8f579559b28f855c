"""A GGUF export checked by llama.cpp itself (llama-cpp-python, in the hf venv).

  check_gguf_export.py FILE.gguf LOGITS_JSON --tol T [--greedy IDS --n N] [--texts F --ids F [--ids-special F]]
                       [--expect-type NAME=TYPE ...] [--lora ADAPTER.gguf] [--kv-f32]

llama.cpp loads the file; its logits for LOGITS_JSON's ids (lm-generate --dump-logits) must be
within T of ours (max|ours - theirs| / max|ours|). --greedy: the comma-separated ids that
lm-generate --temperature 0 --print-ids printed for the same prompt, whose first len(ids) are
the prompt: llama.cpp's greedy continuation of N tokens must be the same. --texts/--ids: its
tokenizer must give our ids (--ids-special: with special-token strings matched). --expect-type: the gguf package's reader must see that tensor type.
--lora: llama.cpp applies that GGUF LoRA adapter to the model (lora_path, scale 1) before anything
is computed; LOGITS_JSON is then lm-generate --lora's. --kv-f32: llama.cpp keeps its KV cache in
float32 instead of its default float16 (which alone rounds K and V to 11 significant bits).
"""
import argparse
import json

import numpy as np
from llama_cpp import Llama
import gguf

ap = argparse.ArgumentParser()
ap.add_argument("gguf_file")
ap.add_argument("logits_json")
ap.add_argument("--tol", type=float, required=True)
ap.add_argument("--greedy")
ap.add_argument("--texts")
ap.add_argument("--ids")
ap.add_argument("--ids-special")
ap.add_argument("--expect-type", action="append", default=[])
ap.add_argument("--lora")
ap.add_argument("--kv-f32", action="store_true")
a = ap.parse_args()

reader = gguf.GGUFReader(a.gguf_file)
types = {t.name: t.tensor_type.name for t in reader.tensors}
for e in a.expect_type:
    name, want = e.split("=")
    assert types.get(name) == want, (name, types.get(name), want)
assert reader.fields["general.architecture"].contents() == "llama"

ours = json.load(open(a.logits_json))
ids = ours["ids"]
ref = np.array(ours["logits"], dtype=np.float64)
llm = Llama(model_path=a.gguf_file, n_ctx=256, logits_all=True, verbose=False, n_threads=2, n_batch=256,
            lora_path=a.lora, **({"type_k": 0, "type_v": 0} if a.kv_f32 else {}))  # 0: GGML_TYPE_F32
llm.eval(ids)
theirs = np.array(llm.scores[: len(ids)], dtype=np.float64)
assert theirs.shape == ref.shape, (theirs.shape, ref.shape)
rel = float(np.abs(theirs - ref).max() / np.abs(ref).max())
print(f"logits: {len(ids)} positions x {ref.shape[1]}: max relative difference {rel:.3g} (tolerance {a.tol:g})")
assert rel <= a.tol, rel

if a.greedy:
    seq = [int(x) for x in a.greedy.split(",")]
    prompt, want = seq[: len(ids)], seq[len(ids):]
    assert prompt == ids, "the greedy run's prompt is not the logits' ids"
    llm.reset()
    llm.eval(prompt)
    got = []
    for _ in range(len(want)):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        got.append(nxt)
        llm.eval([nxt])
    assert got == want, f"llama.cpp greedy {got} ours {want}"
    print(f"greedy: {len(want)} tokens identical")

if a.texts:
    texts = [json.loads(l) for l in open(a.texts)]
    want = [[int(x) for x in l.replace(",", " ").split()] for l in open(a.ids)]
    for i, (t, w) in enumerate(zip(texts, want)):
        got = llm.tokenize(t.encode(), add_bos=False, special=False)
        assert got == w, f"text {i}: llama.cpp {got[:20]}... ours {w[:20]}..."
    if a.ids_special:
        want = [[int(x) for x in l.replace(",", " ").split()] for l in open(a.ids_special)]
        for i, (t, w) in enumerate(zip(texts, want)):
            got = llm.tokenize(t.encode(), add_bos=False, special=True)
            assert got == w, f"text {i} (special tokens matched): llama.cpp {got[:20]}... ours {w[:20]}..."
    print(f"tokenizer: {len(texts)} texts, identical ids")
