#!/usr/bin/env bats
# ckpt-convert checked by the runtimes that consume its output: transformers loads the HF export
# and gives our logits and token ids; llama.cpp (llama-cpp-python) loads the GGUF export and
# gives our logits, greedy continuation and token ids; round trips back into our format are
# bit-exact; imports of files written by transformers and quantised by llama.cpp work.

setup_file() {
    load helpers
    export SHARED=$BATS_FILE_TMPDIR
    make_pretrain_shards "$SHARED" 11
    # A tied-embedding model with Llama 3 RoPE scaling (rope_freqs in GGUF), next to the plain
    # untied tiny preset.
    cat > "$SHARED/tied.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 300, "hidden_size": 64,
 "intermediate_size": 192, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 64}}
JSON
    "$BIN/pretrain" --data "$SHARED/tok" --model tiny --seq-len 64 --micro-batch 4 --steps 40 \
        --lr 3e-3 --warmup-steps 2 --progress off -o "$SHARED/untied" 2>/dev/null
    "$BIN/pretrain" --data "$SHARED/tok" --model "$SHARED/tied.json" --seq-len 64 --micro-batch 4 --steps 40 \
        --lr 3e-3 --warmup-steps 2 --progress off -o "$SHARED/tied" 2>/dev/null
    # Texts for the tokenizer checks: corpus lines and text the corpus never had.
    python3 - "$SHARED" <<'PY'
import json, sys
d = sys.argv[1]
lines = [json.loads(l)["text"] for l in open(f"{d}/corpus.jsonl")][:20]
lines += ["Numbers 1234567 and 3.14, CAPS, it's don't we'll; tabs\tand\nnew lines\n\n  spaces   ",
          "unicode: naïve café 東京 😀 — dash", "x" * 300, "<|endoftext|> is plain text here"]
with open(f"{d}/texts.jsonl", "w") as f:
    for t in lines:
        f.write(json.dumps(t) + "\n")
with open(f"{d}/texts-records.jsonl", "w") as f:
    for t in lines:
        f.write(json.dumps({"text": t}) + "\n")
PY
    "$BIN/tokenize-pack" --tokenizer "$SHARED/untied/tokenizer/tokenizer.json" --encode "$SHARED/texts-records.jsonl" \
        > "$SHARED/texts.ids"
    # The same with special-token strings matched (what transformers' tokenizer does by default).
    "$BIN/tokenize-pack" --tokenizer "$SHARED/untied/tokenizer/tokenizer.json" --encode "$SHARED/texts-records.jsonl" \
        --allow-special > "$SHARED/texts-special.ids"
    for run in untied tied; do
        "$BIN/lm-generate" --progress off --ckpt "$SHARED/$run" --prompt "the cluster trains" --max-new-tokens 0 \
            --dump-logits "$SHARED/$run.logits.json" > /dev/null 2>&1
    done
}

setup() {
    load helpers
    need_hf_venv
    D=$BATS_TEST_TMPDIR
    PY=$HF_VENV/bin/python
}

cc() { "$BIN/ckpt-convert" --progress off "$@"; }
ckpt_of() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest")/model.h5"; }

@test "hf export (f32): transformers gives our logits within 1e-4 and our token ids; untied and tied+rope-scaled" {
    for run in untied tied; do
        run cc --from "$SHARED/$run" --to hf -o "$D/$run-hf"
        assert_success
        for f in config.json model.safetensors generation_config.json tokenizer.json tokenizer_config.json report.json; do
            assert_file_exists "$D/$run-hf/$f"
        done
        run "$PY" "$REPO_ROOT/tests/python/check_hf_export.py" "$D/$run-hf" "$SHARED/$run.logits.json" --tol 1e-4 \
            --texts "$SHARED/texts.jsonl" --ids "$SHARED/texts-special.ids"
        assert_success
        echo "$output"
    done
    grep -q '"rope_type": "llama3"' "$D/tied-hf/config.json"
    grep -q '"tie_word_embeddings": true' "$D/tied-hf/config.json"
}

@test "hf export in bf16 and f16: transformers' logits within the stated tolerance (2e-2 of the largest logit)" {
    for dt in bf16 f16; do
        run cc --from "$SHARED/untied" --to hf --dtype $dt -o "$D/hf-$dt"
        assert_success
        run "$PY" "$REPO_ROOT/tests/python/check_hf_export.py" "$D/hf-$dt" "$SHARED/untied.logits.json" --tol 2e-2
        assert_success
        echo "$output"
    done
    grep -q '"torch_dtype": "bfloat16"' "$D/hf-bf16/config.json"
}

@test "sharded hf export: index and shards that transformers loads; ours -> hf -> ours is bit-exact" {
    run cc --from "$SHARED/untied" --to hf --shard-size 40KB -o "$D/sharded"
    assert_success
    assert_file_exists "$D/sharded/model.safetensors.index.json"
    n=$(ls "$D/sharded"/model-*-of-*.safetensors | wc -l)
    (( n > 2 )) || fail "only $n shards"
    run "$PY" "$REPO_ROOT/tests/python/check_hf_export.py" "$D/sharded" "$SHARED/untied.logits.json" --tol 1e-4
    assert_success
    for run in untied tied; do
        cc --from "$SHARED/$run" --to hf -o "$D/$run-hf"
        run cc --from-hf "$D/$run-hf" -o "$D/$run-back"
        assert_success
        run "$VENV/bin/python" "$REPO_ROOT/tests/python/compare_checkpoints.py" "$(ckpt_of "$SHARED/$run")" "$(ckpt_of "$D/$run-back")"
        assert_success
        # The tokenizer comes back byte for byte.
        cmp "$SHARED/$run/tokenizer/tokenizer.json" "$D/$run-back/tokenizer/tokenizer.json"
    done
    run cc --from-hf "$D/sharded" -o "$D/sharded-back"
    assert_success
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/compare_checkpoints.py" "$(ckpt_of "$SHARED/untied")" "$(ckpt_of "$D/sharded-back")"
    assert_success
    # The imported run is a run: lm-generate finds its checkpoint and tokenizer.
    run --separate-stderr "$BIN/lm-generate" --progress off --ckpt "$D/untied-back" --prompt "the cluster" --max-new-tokens 8 --temperature 0
    assert_success
    [[ $output == "the cluster"* ]]
}

@test "gguf export (f32): llama.cpp gives our logits, greedy continuation and token ids; ours -> gguf -> ours is bit-exact" {
    for run in untied tied; do
        run cc --from "$SHARED/$run" --to gguf -o "$D/$run.gguf"
        assert_success
        greedy=$("$BIN/lm-generate" --progress off --ckpt "$SHARED/$run" --prompt "the cluster trains" --max-new-tokens 24 \
            --temperature 0 --print-ids 2>/dev/null)
        run "$PY" "$REPO_ROOT/tests/python/check_gguf_export.py" "$D/$run.gguf" "$SHARED/$run.logits.json" --tol 1e-4 \
            --greedy "$greedy" --texts "$SHARED/texts.jsonl" --ids "$SHARED/texts.ids" --ids-special "$SHARED/texts-special.ids" \
            --expect-type token_embd.weight=F32 --expect-type blk.0.attn_norm.weight=F32
        assert_success
        echo "$output"
        run cc --from-gguf "$D/$run.gguf" -o "$D/$run-back"
        assert_success
        run "$VENV/bin/python" "$REPO_ROOT/tests/python/compare_checkpoints.py" "$(ckpt_of "$SHARED/$run")" "$(ckpt_of "$D/$run-back")"
        assert_success
        # The tokenizer rebuilt from the GGUF gives the same ids.
        run "$BIN/tokenize-pack" --tokenizer "$D/$run-back/tokenizer/tokenizer.json" --encode "$SHARED/texts-records.jsonl"
        assert_success
        assert_equal "$output" "$(cat "$SHARED/texts.ids")"
    done
    "$PY" -c "import gguf,sys; r=gguf.GGUFReader(sys.argv[1]); assert 'rope_freqs.weight' in [t.name for t in r.tensors]; assert 'output.weight' not in [t.name for t in r.tensors]" "$D/tied.gguf"
}

@test "gguf export in f16, bf16 and q8_0: llama.cpp loads each, logits within the stated tolerances" {
    # Tolerances (max error / largest logit): f16 and bf16 round the weights (bf16 keeps 8 bits
    # of mantissa); q8_0 also quantises llama.cpp's activations in its dot products.
    for spec in f16:2e-2:F16 bf16:5e-2:BF16 q8_0:5e-2:Q8_0; do
        IFS=: read -r dt tol ty <<< "$spec"
        run cc --from "$SHARED/untied" --to gguf --dtype $dt -o "$D/m-$dt.gguf"
        assert_success
        run "$PY" "$REPO_ROOT/tests/python/check_gguf_export.py" "$D/m-$dt.gguf" "$SHARED/untied.logits.json" --tol $tol \
            --expect-type blk.0.attn_q.weight=$ty --expect-type blk.0.ffn_norm.weight=F32
        assert_success
        echo "$output"
    done
}

@test "import of what transformers saved (bf16, sharded, transformers v5 config fields): our logits equal transformers'" {
    cc --from "$SHARED/tied" --to hf -o "$D/tied-hf"
    run "$PY" - "$D/tied-hf" "$D/resaved" <<'PY'
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
src, dst = sys.argv[1:3]
m = AutoModelForCausalLM.from_pretrained(src, torch_dtype=torch.float32).to(torch.bfloat16)
m.save_pretrained(dst, safe_serialization=True, max_shard_size="60KB")
AutoTokenizer.from_pretrained(src).save_pretrained(dst)
PY
    assert_success
    assert_file_exists "$D/resaved/model.safetensors.index.json"
    # transformers v5 writes "dtype" and folds rope_theta/rope_scaling into rope_parameters (the
    # transformers here predates that, so it reads the original config).
    cp -r "$D/resaved" "$D/resaved-v5"
    "$PY" - "$D/resaved-v5/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["dtype"] = c.pop("torch_dtype")
c["rope_parameters"] = dict(c.pop("rope_scaling"), rope_theta=c.pop("rope_theta"))
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
    run cc --from-hf "$D/resaved-v5" -o "$D/imported"
    assert_success
    "$BIN/lm-generate" --progress off --ckpt "$D/imported" --prompt "the cluster trains" --max-new-tokens 0 \
        --dump-logits "$D/imported.logits.json" >/dev/null 2>&1
    # transformers reads the bf16 weights as float32 exactly as we did: the same 1e-4 bound holds.
    run "$PY" "$REPO_ROOT/tests/python/check_hf_export.py" "$D/resaved" "$D/imported.logits.json" --tol 1e-4
    assert_success
    grep -q '"rope_scaling"' "$D/imported/checkpoints/step-00000000/config.json"
}

@test "import of GGUFs quantised by llama.cpp (Q8_0, Q4_0, Q4_1, Q4_K_M, Q5_K_M, Q6_K): weights equal the gguf package's dequantisation" {
    # Rows 256 wide, so that llama.cpp's K-quants apply to every matrix.
    cat > "$D/wide.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 300, "hidden_size": 256,
 "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false}
JSON
    "$BIN/pretrain" --data "$SHARED/tok" --model "$D/wide.json" --seq-len 64 --micro-batch 4 --steps 2 \
        --lr 3e-3 --progress off -o "$D/wide" 2>/dev/null
    run cc --from "$D/wide" --to gguf -o "$D/wide-f32.gguf"
    assert_success
    for q in Q8_0:7 Q4_0:2 Q4_1:3 Q4_K_M:15 Q5_K_M:17 Q6_K:18; do
        IFS=: read -r name ftype <<< "$q"
        run "$PY" -c "
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = int(sys.argv[3])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))" \
            "$D/wide-f32.gguf" "$D/wide-$name.gguf" "$ftype"
        assert_success
        run cc --from-gguf "$D/wide-$name.gguf" -o "$D/wide-$name"
        assert_success
        run "$PY" "$REPO_ROOT/tests/python/check_gguf_import.py" "$D/wide-$name.gguf" "$(ckpt_of "$D/wide-$name")"
        assert_success
        echo "$name: $output"
    done
}

@test "--dry-run lists tensors, shapes, dtypes and the output size, and writes nothing" {
    run --separate-stderr cc --from "$SHARED/untied" --to gguf --dtype q8_0 --dry-run -o "$D/never.gguf"
    assert_success
    [[ $output == *"blk.0.attn_q.weight"*"Q8_0"* ]] || fail "$output"
    [[ $output == *"blk.0.ffn_down.weight"*"F16"* ]] || fail "rows of 176 are not q8_0-able: $output"
    [[ $output == *"tensors, output about"*"MB"* ]] || fail "$output"
    assert_file_not_exists "$D/never.gguf"
    run --separate-stderr cc --from "$SHARED/tied" --to hf --dry-run
    assert_success
    [[ $output == *"model.embed_tokens.weight"*"[300, 64]"*"F32"* ]] || fail "$output"
    [[ $output != *"lm_head"* ]] || fail "a tied model has no lm_head: $output"
    cc --from "$SHARED/untied" --to hf -o "$D/hf"
    run --separate-stderr cc --from-hf "$D/hf" --dry-run -o "$D/never"
    assert_success
    [[ $output == *"lm_head.weight"* ]] || fail "$output"
    assert_not_exist "$D/never"
}

@test "bad input: one line naming the file (and the tensor or key), exit 1, and no output at all" {
    cc --from "$SHARED/untied" --to hf -o "$D/good"
    cc --from "$SHARED/untied" --to gguf -o "$D/good.gguf"
    "$PY" "$REPO_ROOT/tests/python/make_bad_models.py" "$D/good" "$D/good.gguf" "$D/bad"
    while IFS=$'\t' read -r path must; do
        if [[ $path == *.gguf ]]; then src=(--from-gguf "$path"); else src=(--from-hf "$path"); fi
        run --separate-stderr cc "${src[@]}" -o "$D/out"
        echo "$(basename "$path"): status $status: $stderr"
        if [[ $path == */arch ]]; then assert_equal "$status" 2; else assert_equal "$status" 1; fi
        assert_equal "$(printf '%s\n' "$stderr" | grep -c .)" 1
        [[ $stderr == *"$(basename "$path")"* ]] || fail "the message does not name the file: $stderr"
        [[ $must == - || $stderr == *"$must"* ]] || fail "the message does not name '$must': $stderr"
        assert_not_exist "$D/out"
        [[ -z $(ls -A "$D" | grep partial) ]] || fail "a partial output was left: $(ls -A "$D")"
    done < "$D/bad/cases.tsv"
}

@test "usage errors exit 2 naming the flag; an existing output is kept without --overwrite" {
    run --separate-stderr cc -o "$D/x"
    assert_equal "$status" 2
    [[ $stderr == *"--from"* ]]
    run --separate-stderr cc --from "$SHARED/untied" -o "$D/x"
    assert_equal "$status" 2
    [[ $stderr == *"--to hf|gguf"* ]]
    run --separate-stderr cc --from "$SHARED/untied" --to hf --dtype q8_0 -o "$D/x"
    assert_equal "$status" 2
    [[ $stderr == *"--dtype"* ]]
    run --separate-stderr cc --from "$SHARED/untied" --to gguf --shard-size 1GB -o "$D/x"
    assert_equal "$status" 2
    [[ $stderr == *"--shard-size"* ]]
    run --separate-stderr cc --from "$SHARED/untied" --to hf --shard-size 5XB -o "$D/x"
    assert_equal "$status" 2
    [[ $stderr == *"--shard-size"* ]]
    cc --from "$SHARED/untied" --to gguf -o "$D/m.gguf"
    before=$(sha256sum < "$D/m.gguf")
    run --separate-stderr cc --from "$SHARED/untied" --to gguf --dtype f16 -o "$D/m.gguf"
    assert_equal "$status" 2
    assert_equal "$(sha256sum < "$D/m.gguf")" "$before"
    run cc --from "$SHARED/untied" --to gguf --dtype f16 -o "$D/m.gguf" --overwrite
    assert_success
    [[ $(sha256sum < "$D/m.gguf") != "$before" ]]
    run --separate-stderr cc --from-hf "$D/nowhere" -o "$D/y"
    assert_equal "$status" 2
    [[ $stderr == *"$D/nowhere"* ]]
}

@test "streaming: a model 5x the memory cap converts in and out under that cap (memory cgroup), peak RSS near the largest tensor" {
    # 8 layers of width 1024: 410 MB of fp32 weights, its largest tensor 11.5 MB; cap 64 MiB.
    cap=$((64 * 1024 * 1024))
    cc --from "$SHARED/untied" --to hf -o "$D/small-hf"
    "$PY" "$REPO_ROOT/tests/python/make_random_hf_llama.py" "$D/small-hf" "$D/big-hf" --hidden 1024 --ffn 2816 \
        --layers 8 --heads 8 --dtype f16
    rss() { echo $(( $(cat "$D/rss-$1") * 1024 )); }  # GNU time's %M is in KiB
    run run_memory_capped $cap /usr/bin/time -f %M -o "$D/rss-import" "$BIN/ckpt-convert" --progress off --from-hf "$D/big-hf" -o "$D/big"
    assert_success
    import_rss=$(rss import)
    # The weights in fp32, as the import holds them: twice the f16 file's bytes.
    size=$(( $(stat -c %s "$D/big-hf/model.safetensors") * 2 ))
    (( size > 5 * cap )) || fail "the model ($size bytes) is not 5x the cap"
    run run_memory_capped $cap /usr/bin/time -f %M -o "$D/rss-gguf" "$BIN/ckpt-convert" --progress off --from "$D/big" --to gguf --dtype q8_0 -o "$D/big.gguf"
    assert_success
    gguf_rss=$(rss gguf)
    run run_memory_capped $cap /usr/bin/time -f %M -o "$D/rss-hf" "$BIN/ckpt-convert" --progress off --from "$D/big" --to hf --dtype bf16 -o "$D/big-out"
    assert_success
    hf_rss=$(rss hf)
    echo "fp32 weights $size bytes; peak RSS: import $import_rss, gguf export $gguf_rss, hf export $hf_rss (cap $cap)"
    for r in $import_rss $gguf_rss $hf_rss; do (( r < cap )) || fail "peak RSS $r over the cap"; done
    # What came out is the model that went in.
    run "$PY" -c "
import sys, torch
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert a.keys() == b.keys()
for k in a:
    x, y = a[k].float(), b[k].float()
    assert b[k].dtype == torch.bfloat16
    # bf16 keeps 8 significant bits: rounding to nearest errs by at most 2^-8 relative
    assert bool(((y - x).abs() <= x.abs() * 2**-8).all()), k
print('weights survived')" "$D/big-hf/model.safetensors" "$D/big-out/model.safetensors"
    assert_success
}

@test "a SentencePiece (Llama 2 style BPE) model: GGUF 'llama' vocabulary that llama.cpp tokenizes and runs as we do, and back; HF export with tokenizer.model" {
    "$VENV/bin/python" - "$SHARED/corpus.jsonl" "$D/sp" <<'PY'
import json, sys, sentencepiece as spm
text = [json.loads(l)["text"] for l in open(sys.argv[1])]
spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_prefix=sys.argv[2], vocab_size=300,
    model_type="bpe", byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
    unk_id=0, bos_id=1, eos_id=2, character_coverage=1.0)
PY
    "$BIN/tokenize-pack" --tokenizer "$D/sp.model" --mode pretrain --seq-len 64 --progress off "$SHARED/corpus.jsonl" -o "$D/sptok" 2>/dev/null
    "$BIN/pretrain" --data "$D/sptok" --model tiny --seq-len 64 --micro-batch 4 --steps 30 --lr 3e-3 --warmup-steps 2 \
        --progress off -o "$D/sprun" 2>/dev/null
    "$BIN/lm-generate" --progress off --ckpt "$D/sprun" --prompt "the cluster trains" --max-new-tokens 0 \
        --dump-logits "$D/sp.logits.json" >/dev/null 2>&1
    greedy=$("$BIN/lm-generate" --progress off --ckpt "$D/sprun" --prompt "the cluster trains" --max-new-tokens 16 \
        --temperature 0 --print-ids 2>/dev/null)
    grep -v '<|endoftext|>' "$SHARED/texts-records.jsonl" > "$D/records.jsonl"
    grep -v '<|endoftext|>' "$SHARED/texts.jsonl" > "$D/texts.jsonl"
    "$BIN/tokenize-pack" --tokenizer "$D/sp.model" --encode "$D/records.jsonl" > "$D/texts.ids"
    run cc --from "$D/sprun" --to gguf -o "$D/sp.gguf"
    assert_success
    run "$PY" "$REPO_ROOT/tests/python/check_gguf_export.py" "$D/sp.gguf" "$D/sp.logits.json" --tol 1e-4 --greedy "$greedy" \
        --texts "$D/texts.jsonl" --ids "$D/texts.ids"
    assert_success
    echo "$output"
    "$PY" -c "import gguf,sys; r=gguf.GGUFReader(sys.argv[1]); assert r.fields['tokenizer.ggml.model'].contents() == 'llama'" "$D/sp.gguf"
    run cc --from "$D/sprun" --to hf -o "$D/sp-hf"
    assert_success
    assert_file_exists "$D/sp-hf/tokenizer.model"
    run "$PY" "$REPO_ROOT/tests/python/check_hf_export.py" "$D/sp-hf" "$D/sp.logits.json" --tol 1e-4 \
        --texts "$D/texts.jsonl" --ids "$D/texts.ids"
    assert_success
    echo "$output"
    # Back from the GGUF: the same weights, and a SentencePiece model rebuilt from the GGUF
    # vocabulary that gives the same ids.
    run cc --from-gguf "$D/sp.gguf" -o "$D/sp-back"
    assert_success
    assert_file_exists "$D/sp-back/tokenizer/tokenizer.model"
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/compare_checkpoints.py" "$(ckpt_of "$D/sprun")" "$(ckpt_of "$D/sp-back")"
    assert_success
    run "$BIN/tokenize-pack" --tokenizer "$D/sp-back/tokenizer/tokenizer.model" --encode "$D/records.jsonl"
    assert_success
    assert_equal "$output" "$(cat "$D/texts.ids")"
    # A unigram model would be split differently by llama.cpp: refused, naming the file.
    "$VENV/bin/python" -c "
import json, sys, sentencepiece as spm
spm.SentencePieceTrainer.train(sentence_iterator=iter([json.loads(l)['text'] for l in open(sys.argv[1])]),
    model_prefix=sys.argv[2], vocab_size=60, hard_vocab_limit=False, model_type='unigram')" "$SHARED/corpus.jsonl" "$D/uni" 2>/dev/null
    "$BIN/tokenize-pack" --tokenizer "$D/uni.model" --mode pretrain --seq-len 64 --progress off "$SHARED/corpus.jsonl" -o "$D/unitok" 2>/dev/null
    "$BIN/pretrain" --data "$D/unitok" --model tiny --seq-len 64 --micro-batch 4 --steps 1 --progress off -o "$D/unirun" 2>/dev/null
    run --separate-stderr cc --from "$D/unirun" --to gguf -o "$D/uni.gguf"
    assert_equal "$status" 2
    [[ $stderr == *"uni.model"*"unigram"* ]] || fail "$stderr"
    assert_not_exist "$D/uni.gguf"
}
