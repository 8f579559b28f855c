#!/usr/bin/env bats
# tokenize-pack: encode/decode, pretrain packing (content, splits, rank-count independence),
# and its errors. Exactness against HF tokenizers and tiktoken: tokenize_reference.bats.

setup() {
    load helpers
    D=$BATS_TEST_TMPDIR
    python3 - "$D" <<'PY'
import json, random, sys
d = sys.argv[1]
random.seed(3)
words = "the model reads shards and writes tokens while the cluster waits for data über naïve 数据 🙂 12345".split()
docs = [" ".join(random.choice(words) for _ in range(random.randint(5, 120))) for _ in range(240)]
open(f"{d}/train.txt", "w").write("\n".join(docs))
for k in range(4):
    with open(f"{d}/part-{k}.jsonl", "w") as f:
        for i in range(k, len(docs), 4):
            f.write(json.dumps({"id": f"d{i}", "text": docs[i]}) + "\n")
PY
    python3 "$REPO_ROOT/tests/helpers/make_bpe_tokenizer.py" "$D/train.txt" "$D/tok" 200
    TOK=$D/tok/tokenizer.json
}

@test "encode then decode gives the text back, byte for byte" {
    run "$BIN/tokenize-pack" --tokenizer "$TOK" --encode "$D/part-0.jsonl"
    assert_success
    assert_equal "$(wc -l <<< "$output")" 60
    echo "$output" > "$D/ids.txt"
    run "$BIN/tokenize-pack" --tokenizer "$TOK" --decode "$D/ids.txt"
    assert_success
    diff <(python3 -c 'import json,sys; [print(json.loads(l)["text"]) for l in open(sys.argv[1])]' "$D/part-0.jsonl") \
         <(python3 -c 'import json,sys; [print(json.loads(l)["text"]) for l in sys.stdin]' <<< "$output")
}

@test "pretrain: every sample is a window of the document stream, splits cover every window once" {
    run "$BIN/tokenize-pack" --tokenizer "$TOK" --mode pretrain "$D"/part-*.jsonl -o "$D/out" --seq-len 64 \
        --valid-fraction 0.1 --seed 5 --progress off
    assert_success
    run "$BIN/shard-inspect" --verify --progress off "$D/out"
    assert_success
    cat "$D"/part-*.jsonl | "$BIN/tokenize-pack" --tokenizer "$TOK" --encode - > "$D/stream.txt"
    need_venv
    run "$VENV/bin/python" - "$D" "$(sha256sum "$TOK" | cut -d' ' -f1)" <<'PY'
import glob, json, sys
import hdf5plugin, h5py, numpy as np
d, sha = sys.argv[1], sys.argv[2]
eos = json.load(open(f"{d}/tok/tokenizer.json"))["added_tokens"][0]["id"]
stream, starts = [], []
for line in open(f"{d}/stream.txt"):
    starts.append(len(stream))
    stream += [int(x) for x in line.split()] + [eos]
stream = np.array(stream)
L = 64
n = (len(stream) - 1) // L
windows = {tuple(stream[k * L:k * L + L + 1]): k for k in range(n)}
seen = []
for split in ("train", "valid"):
    for f in sorted(glob.glob(f"{d}/out/{split}-*.h5")):
        h = h5py.File(f)
        assert h.attrs["tokenizer_sha256"] == sha, "fingerprint"
        assert h.attrs["eos_id"] == eos and h.attrs["seq_len"] == L
        off, data = h["doc_start_offsets"][...], h["doc_start_data"][...]
        for i, row in enumerate(h["tokens"][...]):
            k = windows[tuple(row)]
            seen.append((split, k))
            want = [s - k * L for s in starts if k * L <= s <= k * L + L]
            assert list(data[off[i]:off[i + 1]]) == want, (k, want)
ks = sorted(k for _, k in seen)
assert ks == list(range(n)), "every window exactly once"
nv = sum(1 for s, _ in seen if s == "valid")
assert nv == round(0.1 * n), (nv, n)
r = json.load(open(f"{d}/out/report.json"))
assert r["samples"] == n and r["tokens"] == len(stream) and r["documents"] == 240
print("ok", n, "samples")
PY
    assert_success
    assert_output --partial "ok "
}

@test "pretrain: 1, 2 and 4 ranks write the same samples in the same order" {
    for n in 1 2 4; do
        run "$MPIRUN" -np $n "$BIN/tokenize-pack" --tokenizer "$TOK" --mode pretrain "$D"/part-*.jsonl -o "$D/r$n" \
            --seq-len 32 --valid-fraction 0.2 --progress off
        assert_success
    done
    need_venv
    run "$VENV/bin/python" - "$D" <<'PY'
import glob, sys
import hdf5plugin, h5py, numpy as np
d = sys.argv[1]
def cat(run, split):
    return np.concatenate([h5py.File(f)["tokens"][...] for f in sorted(glob.glob(f"{d}/{run}/{split}-*.h5"))])
for split in ("train", "valid"):
    a, b, c = cat("r1", split), cat("r2", split), cat("r4", split)
    assert a.shape == b.shape == c.shape and (a == b).all() and (a == c).all(), split
print("identical")
PY
    assert_success
    assert_output identical
}

@test "errors: tokenizer missing or unsupported, bad records, too little data, unknown mode, no action" {
    run --separate-stderr "$BIN/tokenize-pack" --encode "$D/part-0.jsonl"
    assert_equal "$status" 2
    [[ $stderr == *"--tokenizer"* ]] || fail "$stderr"
    echo '{"model": {"type": "WordPiece", "vocab": {}}}' > "$D/wp.json"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$D/wp.json" --encode "$D/part-0.jsonl"
    assert_equal "$status" 2
    [[ $stderr == *"model type 'WordPiece' is not supported"* ]] || fail "$stderr"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$D/nope.json" --encode "$D/part-0.jsonl"
    assert_equal "$status" 2
    printf '{"text": "fine"}\n{"body": "no text"}\n' > "$D/bad.jsonl"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$TOK" --mode pretrain "$D/bad.jsonl" -o "$D/o1" --seq-len 4
    assert_equal "$status" 1
    [[ $stderr == *"$D/bad.jsonl:2: missing_text"* ]] || fail "$stderr"
    assert_not_exist "$D/o1"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$TOK" --mode pretrain "$D/bad.jsonl" -o "$D/o2" --seq-len 100000 --on-bad-record skip
    assert_equal "$status" 1
    [[ $stderr == *"fewer than one sample"* ]] || fail "$stderr"
    assert_not_exist "$D/o2"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$TOK" --mode bogus "$D/bad.jsonl" -o "$D/o3"
    assert_equal "$status" 2
    [[ $stderr == *"--mode: invalid value 'bogus'"* ]] || fail "$stderr"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$TOK"
    assert_equal "$status" 2
    [[ $stderr == *"exactly one of"* ]] || fail "$stderr"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$TOK" --mode pretrain "$D/part-0.jsonl" -o "$D/o4" --seq-len -5
    assert_equal "$status" 2
}

@test "preference: prompt, chosen+EOS, rejected+EOS per pair in input order, same for 1 and 2 ranks; bad pairs" {
    python3 - "$D" <<'PY'
import json, sys
d = sys.argv[1]
for k in range(2):
    with open(f"{d}/pref-{k}.jsonl", "w") as f:
        for i in range(30):
            f.write(json.dumps({"prompt": f"Which model reads shards {k}-{i}?", "chosen": "the model reads shards über 🙂",
                                "rejected": f"nobody {i}"}) + "\n")
    with open(f"{d}/texts-{k}.jsonl", "w") as f:
        for i in range(30):
            for key, t in (("p", f"Which model reads shards {k}-{i}?"), ("c", "the model reads shards über 🙂"), ("r", f"nobody {i}")):
                f.write(json.dumps({"text": t}) + "\n")
PY
    run "$BIN/tokenize-pack" --tokenizer "$TOK" --mode preference "$D"/pref-*.jsonl -o "$D/p1" --progress off
    assert_success
    run "$MPIRUN" -np 2 "$BIN/tokenize-pack" --tokenizer "$TOK" --mode preference "$D"/pref-*.jsonl -o "$D/p2" --progress off
    assert_success
    cat "$D"/texts-*.jsonl | "$BIN/tokenize-pack" --tokenizer "$TOK" --encode - > "$D/pref-ids.txt"
    need_venv
    run "$VENV/bin/python" - "$D" <<'PY'
import glob, json, sys
import hdf5plugin, h5py
d = sys.argv[1]
eos = json.load(open(f"{d}/tok/tokenizer.json"))["added_tokens"][0]["id"]
ids = [[int(x) for x in l.split()] for l in open(f"{d}/pref-ids.txt")]
want = [(ids[3 * i], ids[3 * i + 1] + [eos], ids[3 * i + 2] + [eos]) for i in range(len(ids) // 3)]
def pairs(run):
    out = []
    for f in sorted(glob.glob(f"{d}/{run}/pref-*.h5")):
        h = h5py.File(f)
        cols = []
        for c in ("prompt", "chosen", "rejected"):
            o, data = h[c + "_offsets"][...], h[c + "_data"][...]
            cols.append([list(data[o[i]:o[i + 1]]) for i in range(len(o) - 1)])
        out += list(zip(*cols))
    return [tuple(map(list, p)) for p in out]
assert pairs("p1") == [tuple(w) for w in want], "content"
assert pairs("p2") == pairs("p1"), "ranks"
print("ok", len(want))
PY
    assert_success
    assert_output "ok 60"
    printf '{"prompt": "p", "chosen": "", "rejected": "x"}\n{"prompt": "p", "chosen": "y"}\n{"prompt": "p", "chosen": "a", "rejected": "b"}\n' > "$D/badpref.jsonl"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$TOK" --mode preference "$D/badpref.jsonl" -o "$D/p3"
    assert_equal "$status" 1
    [[ $stderr == *"badpref.jsonl:1: empty_chosen"* ]] || fail "$stderr"
    assert_not_exist "$D/p3"
    run "$BIN/tokenize-pack" --tokenizer "$TOK" --mode preference "$D/badpref.jsonl" -o "$D/p3" --on-bad-record skip --progress off
    assert_success
    run python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["pairs"], r["bad_records"]["empty_chosen"], r["bad_records"]["missing_rejected"])' "$D/p3/report.json"
    assert_output "1 1 1"
    printf '{"prompt": [{"role": "user", "content": "hi"}], "chosen": "a", "rejected": "b"}\n' > "$D/chat.jsonl"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$TOK" --mode preference "$D/chat.jsonl" -o "$D/p4"
    assert_equal "$status" 2
    [[ $stderr == *"chat templates is not built yet"* ]] || fail "$stderr"
}

@test "--train-vocab-size: the trained tokenizer.json loads in HF tokenizers with the same ids, same for 1 and 2 ranks" {
    run "$BIN/tokenize-pack" --train-vocab-size 600 --mode pretrain "$D"/part-*.jsonl -o "$D/t1" --seq-len 32 --progress off
    assert_success
    run "$MPIRUN" -np 2 "$BIN/tokenize-pack" --train-vocab-size 600 --mode pretrain "$D"/part-*.jsonl -o "$D/t2" --seq-len 32 --progress off
    assert_success
    cmp "$D/t1/tokenizer.json" "$D/t2/tokenizer.json"
    "$BIN/tokenize-pack" --tokenizer "$D/t1/tokenizer.json" --encode "$D/part-1.jsonl" > "$D/t-ids.txt"
    need_venv
    run "$VENV/bin/python" - "$D" <<'PY'
import json, sys
from tokenizers import Tokenizer
d = sys.argv[1]
t = Tokenizer.from_file(f"{d}/t1/tokenizer.json")
texts = [json.loads(l)["text"] for l in open(f"{d}/part-1.jsonl")]
ours = [[int(x) for x in l.split()] for l in open(f"{d}/t-ids.txt")]
bad = sum(t.encode(x, add_special_tokens=False).ids != o for x, o in zip(texts, ours))
assert len(ours) == len(texts) and bad == 0, bad
assert json.load(open(f"{d}/t1/tokenizer_config.json"))["eos_token"] == "<|endoftext|>"
print("hf agrees", t.get_vocab_size())
PY
    assert_success
    assert_output --partial "hf agrees"
    run --separate-stderr "$BIN/tokenize-pack" --train-vocab-size 600 --tokenizer "$TOK" --mode pretrain "$D/part-0.jsonl" -o "$D/t3"
    assert_equal "$status" 2
}

@test "sft: best-fit packing of prompt/response and chat examples, loss on responses only, truncation, 1 = 2 ranks" {
    python3 - "$D" <<'PY'
import json, random, sys
d = sys.argv[1]
random.seed(9)
words = "the model reads shards and writes tokens über 数据 🙂".split()
say = lambda n: " ".join(random.choice(words) for _ in range(n))
exs = []
for k in range(2):
    with open(f"{d}/sft-{k}.jsonl", "w") as f:
        for i in range(40):
            if i % 3 == 0:
                ex = {"messages": [{"role": "system", "content": say(3)}, {"role": "user", "content": say(5)},
                                   {"role": "assistant", "content": say(6)}, {"role": "user", "content": say(2)},
                                   {"role": "assistant", "content": say(4)}]}
            else:
                ex = {"prompt": say(random.randint(1, 12)), "response": say(random.randint(1, 30 if i != 7 else 200))}
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")
            exs.append(ex)
# the texts whose ids make up each example, in order, with their loss flag
with open(f"{d}/parts-for-sft.jsonl", "w") as f, open(f"{d}/plan-for-sft.json", "w") as g:
    plan = []
    for ex in exs:
        parts = []
        if "messages" in ex:
            for m in ex["messages"]:
                parts.append(("<|" + m["role"] + "|>\n", 0))
                parts.append((m["content"], int(m["role"] == "assistant")))
                parts.append(("EOS", 1) if m["role"] == "assistant" else ("\n", 0))
        else:
            parts = [(ex["prompt"], 0), (ex["response"], 1), ("EOS", 1)]
        plan.append(parts)
        for text, _ in parts:
            if text != "EOS":
                f.write(json.dumps({"text": text}) + "\n")
    json.dump(plan, g)
PY
    run "$BIN/tokenize-pack" --tokenizer "$TOK" --mode sft "$D"/sft-*.jsonl -o "$D/s1" --seq-len 64 --progress off
    assert_success
    run "$MPIRUN" -np 2 "$BIN/tokenize-pack" --tokenizer "$TOK" --mode sft "$D"/sft-0.jsonl "$D"/sft-1.jsonl -o "$D/s2" --seq-len 64 --progress off
    assert_success
    "$BIN/tokenize-pack" --tokenizer "$TOK" --encode "$D/parts-for-sft.jsonl" > "$D/ids-for-sft.txt"
    need_venv
    run "$VENV/bin/python" - "$D" <<'PY'
import bisect, glob, json, sys
import hdf5plugin, h5py, numpy as np
d = sys.argv[1]
eos = json.load(open(f"{d}/tok/tokenizer.json"))["added_tokens"][0]["id"]
ids = iter([[int(x) for x in l.split()] for l in open(f"{d}/ids-for-sft.txt")])
cap = 65
examples, truncated = [], 0
for parts in json.load(open(f"{d}/plan-for-sft.json")):
    toks, mask = [], []
    for text, target in parts:
        piece = [eos] if text == "EOS" else next(ids)
        toks += piece
        mask += [target] * len(piece)
    if len(toks) > cap:
        toks, mask, truncated = toks[:cap], mask[:cap], truncated + 1
    examples.append((toks, mask))
# best fit in order, as tokenize-pack plans it
rooms, bins = [], []  # rooms: sorted (room, bin)
for e, (t, m) in enumerate(examples):
    i = bisect.bisect_left(rooms, (len(t), -1))
    if i == len(rooms):
        b, room = len(bins), cap
        bins.append([])
    else:
        room, b = rooms.pop(i)
    bins[b].append(e)
    if room - len(t) > 0:
        bisect.insort(rooms, (room - len(t), b))
want_rows, want_masks, want_starts = [], [], []
for members in bins:
    row, mrow, starts = [], [], []
    for e in members:
        starts.append(len(row))
        row += examples[e][0]
        mrow += examples[e][1]
    want_rows.append(row + [eos] * (cap - len(row)))
    want_masks.append(mrow + [0] * (cap - len(mrow)))
    want_starts.append(starts)
def read(run):
    rows, masks, starts = [], [], []
    for f in sorted(glob.glob(f"{d}/{run}/sft-*.h5")):
        h = h5py.File(f)
        assert h.attrs["pad_id"] == eos and h.attrs["seq_len"] == cap - 1
        rows += h["tokens"][...].tolist()
        masks += h["loss_mask"][...].tolist()
        o, s = h["segment_start_offsets"][...], h["segment_start_data"][...]
        starts += [s[o[i]:o[i + 1]].tolist() for i in range(len(o) - 1)]
    return rows, masks, starts
got = read("s1")
assert got[0] == want_rows, "tokens"
assert got[1] == want_masks, "loss mask"
assert got[2] == want_starts, "segment starts"
assert read("s2") == got, "ranks"
r = json.load(open(f"{d}/s1/report.json"))
assert (r["examples"], r["truncated_examples"], r["samples"]) == (len(examples), truncated, len(bins)) and truncated >= 1, (r["examples"], r["truncated_examples"], r["samples"], len(examples), truncated, len(bins))
print("ok", len(examples), "examples in", len(bins), "samples")
PY
    assert_success
    assert_output --partial "ok 80 examples"
}

@test "sft with the tokenizer's chat template: rendered like jinja2, loss on exactly what each assistant turn adds" {
    need_venv
    cp "$REPO_ROOT/tests/python/chat_templates/chatml.jinja" "$D/chatml.jinja"
    "$VENV/bin/python" - "$D" <<'PY'
import json, sys
d = sys.argv[1]
cfg = {"eos_token": "<|endoftext|>", "chat_template": open(f"{d}/chatml.jinja").read()}
json.dump(cfg, open(f"{d}/tok/tokenizer_config.json", "w"))
convs = [{"messages": [{"role": "user", "content": "the model reads"}, {"role": "assistant", "content": "shards über 🙂"},
                       {"role": "user", "content": "and then"}, {"role": "assistant", "content": "tokens"}]},
         {"prompt": "which data", "response": "the data"},
         {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"},
                       {"role": "assistant", "content": "the cluster waits"}]}]
with open(f"{d}/chat.jsonl", "w") as f:
    for c in convs:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
# Expected segments, computed independently with jinja2 as transformers renders chat templates.
from jinja2.sandbox import ImmutableSandboxedEnvironment
tpl = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(cfg["chat_template"])
segs = []
for c in convs:
    msgs = c.get("messages") or [{"role": "user", "content": c["prompt"]}, {"role": "assistant", "content": c["response"]}]
    r = lambda n, g: tpl.render(messages=msgs[:n], add_generation_prompt=g, eos_token="<|endoftext|>")
    full, done, parts = r(len(msgs), False), 0, []
    for i, m in enumerate(msgs):
        if m["role"] == "assistant":
            b, a = r(i, True), r(i + 1, False)
            parts += [(full[done:len(b)], 0), (full[len(b):len(a)], 1)]
            done = len(a)
    parts.append((full[done:], 0))
    segs.append(parts)
json.dump(segs, open(f"{d}/chat-segs.json", "w"))
with open(f"{d}/chat-seg-texts.jsonl", "w") as f:
    for parts in segs:
        for text, _ in parts:
            f.write(json.dumps({"text": text}) + "\n")
PY
    run "$BIN/tokenize-pack" --tokenizer "$TOK" --mode sft "$D/chat.jsonl" -o "$D/c1" --seq-len 256 --progress off
    assert_success
    "$BIN/tokenize-pack" --tokenizer "$TOK" --allow-special --encode "$D/chat-seg-texts.jsonl" > "$D/chat-seg-ids.txt"
    run "$VENV/bin/python" - "$D" <<'PY'
import glob, json, sys
import hdf5plugin, h5py
d = sys.argv[1]
segs = json.load(open(f"{d}/chat-segs.json"))
ids = iter([[int(x) for x in l.split()] for l in open(f"{d}/chat-seg-ids.txt")])
want = []
for parts in segs:
    t, m = [], []
    for text, target in parts:
        piece = next(ids)
        t += piece
        m += [target] * len(piece)
    want.append((t, m))
h = h5py.File(sorted(glob.glob(f"{d}/c1/sft-*.h5"))[0])
rows, masks = h["tokens"][...].tolist(), h["loss_mask"][...].tolist()
o, s = h["segment_start_offsets"][...], h["segment_start_data"][...]
got = []
for r in range(len(rows)):
    st = list(s[o[r]:o[r + 1]])
    for k, a in enumerate(st):
        b = st[k + 1] if k + 1 < len(st) else None
        got.append((rows[r][a:b], masks[r][a:b]))
# the last example of a row runs into the padding: compare on the expected length
got_trim = []
for (gt, gm) in got:
    for (wt, wm) in want:
        if gt[:len(wt)] == wt:
            got_trim.append((gt[:len(wt)], gm[:len(wt)]))
            break
    else:
        got_trim.append((gt, gm))
assert sorted(map(str, got_trim)) == sorted(map(str, want)), (got_trim, want)
assert all(sum(m) > 0 for _, m in want)
print("ok", len(want))
PY
    assert_success
    assert_output "ok 3"
    echo '{"eos_token": "<|endoftext|>", "chat_template": "{% macro m() %}x{% endmacro %}{{ m() }}"}' > "$D/tok/tokenizer_config.json"
    run --separate-stderr "$BIN/tokenize-pack" --tokenizer "$TOK" --mode sft "$D/chat.jsonl" -o "$D/c2" --seq-len 64
    assert_equal "$status" 2
    [[ $stderr == *"statement 'macro' is not supported"* ]] || fail "$stderr"
}
