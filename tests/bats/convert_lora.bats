#!/usr/bin/env bats
# LoRA adapters served: lm-generate --lora, and ckpt-convert's adapter exports checked by the
# runtimes that consume them — HF peft (--to peft, and --merge --to hf through transformers),
# llama.cpp (--to gguf-lora through llama-cpp-python's lora_path, --merge --to gguf) — the PEFT
# import (our own export back bit for bit, and adapters that peft itself made), and every refusal.
# The adapters are random (make-random-adapter: A and B both non-zero, so that a factor put in the
# wrong place or the wrong order shows in the logits); the bases are pretrained here for seconds.

setup_file() {
    load helpers
    export SHARED=$BATS_FILE_TMPDIR
    make_pretrain_shards "$SHARED" 17
    # The tiny preset (GQA: 4 heads, 2 KV heads, untied) and a tied-embedding model with Llama 3
    # RoPE scaling; a second tiny base of the same shape with other weights.
    cat > "$SHARED/tied.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 300, "hidden_size": 64,
 "intermediate_size": 192, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 64}}
JSON
    local common=(--data "$SHARED/tok" --seq-len 64 --micro-batch 4 --steps 30 --lr 3e-3 --warmup-steps 2 --progress off)
    "$BIN/pretrain" "${common[@]}" --model tiny -o "$SHARED/base" 2>/dev/null
    "$BIN/pretrain" "${common[@]}" --model tiny --seed 9 -o "$SHARED/other" 2>/dev/null
    "$BIN/pretrain" "${common[@]}" --model "$SHARED/tied.json" -o "$SHARED/tied" 2>/dev/null
    # Adapters: every projection (alpha/r); rsLoRA on some (alpha/sqrt(r)); one of the tied model.
    "$TESTBIN/make-random-adapter" --base "$SHARED/base" --rank 4 --alpha 8 --targets all --seed 1 -o "$SHARED/all.h5"
    "$TESTBIN/make-random-adapter" --base "$SHARED/base" --rank 8 --alpha 4 --rslora --targets q,k,down --seed 2 \
        -o "$SHARED/rs.h5"
    "$TESTBIN/make-random-adapter" --base "$SHARED/tied" --rank 2 --alpha 16 --targets q,k,v,o,up --seed 3 \
        -o "$SHARED/tq.h5"
    for run in base tied; do
        "$BIN/ckpt-convert" --progress off --from "$SHARED/$run" --to hf -o "$SHARED/$run-hf" 2>/dev/null
        "$BIN/ckpt-convert" --progress off --from "$SHARED/$run" --to gguf -o "$SHARED/$run.gguf" 2>/dev/null
        "$BIN/lm-generate" --progress off --ckpt "$SHARED/$run" --prompt "the cluster trains" --max-new-tokens 0 \
            --dump-logits "$SHARED/$run.logits.json" >/dev/null 2>&1
    done
    for a in base:all base:rs tied:tq; do
        IFS=: read -r run ad <<< "$a"
        "$BIN/lm-generate" --progress off --ckpt "$SHARED/$run" --lora "$SHARED/$ad.h5" --prompt "the cluster trains" \
            --max-new-tokens 0 --dump-logits "$SHARED/$ad.logits.json" >/dev/null 2>&1
    done
}

setup() {
    load helpers
    need_hf_venv
    D=$BATS_TEST_TMPDIR
    PY=$HF_VENV/bin/python
    PEFT=$REPO_ROOT/tests/python/check_peft.py
}

cc() { "$BIN/ckpt-convert" --progress off "$@"; }
gen() { "$BIN/lm-generate" --progress off "$@"; }
ids_of() { python3 -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['ids'])))" "$1"; }
# scaling of an adapter as peft derives it: alpha/r, or alpha/sqrt(r) with rsLoRA
scaling() { python3 -c "import sys, math; a, r, rs = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == '1'; print(repr(a / math.sqrt(r) if rs else a / r))" "$@"; }
# the message is one line naming $1, and nothing (nor a partial) was written at $2
one_line_naming() {
    assert_equal "$(printf '%s\n' "$stderr" | grep -c .)" 1
    [[ $stderr == *"$1"* ]] || fail "the message does not name '$1': $stderr"
}
nothing_written() {
    assert_not_exist "$1"
    [[ -z $(ls -A "$(dirname "$1")" | grep partial) ]] || fail "a partial output was left: $(ls -A "$(dirname "$1")")"
}

@test "lm-generate --lora: an adapter file, its checkpoint or run directory; the adapter changes the logits; --eval scores the adapted model" {
    # lora-tune's layout: RUNDIR/checkpoints/step-N/adapter.h5 and checkpoints/latest.
    mkdir -p "$D/run/checkpoints/step-00000005"
    cp "$SHARED/all.h5" "$D/run/checkpoints/step-00000005/adapter.h5"
    echo step-00000005 > "$D/run/checkpoints/latest"
    for where in "$D/run" "$D/run/checkpoints/step-00000005"; do
        run --separate-stderr gen --ckpt "$SHARED/base" --lora "$where" --prompt "the cluster trains" --max-new-tokens 0 \
            --dump-logits "$D/l.json" --overwrite
        assert_success
        [[ $stderr == *"adapter: $D/run/checkpoints/step-00000005/adapter.h5 (rank 4, alpha 8, scaling 2"* ]] || fail "$stderr"
        cmp "$D/l.json" "$SHARED/all.logits.json"
    done
    # The in-memory fingerprint lm-generate computes is the one the adapter file records (else the
    # adapters above would have been refused), and the adapter does change the model.
    run python3 -c "
import json, sys
a, b = (json.load(open(p))['logits'] for p in sys.argv[1:3])
d = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
print('largest logit change', d); assert d > 0.05" "$SHARED/base.logits.json" "$SHARED/all.logits.json"
    assert_success
    # Greedy generation with the adapter equals generation from the merged export, imported back.
    cc --from "$SHARED/base" --lora "$SHARED/all.h5" --merge --to hf -o "$D/merged-hf"
    cc --from-hf "$D/merged-hf" -o "$D/merged"
    want=$(gen --ckpt "$D/merged" --prompt "the cluster" --max-new-tokens 16 --temperature 0 --print-ids 2>/dev/null)
    got=$(gen --ckpt "$SHARED/base" --lora "$SHARED/all.h5" --prompt "the cluster" --max-new-tokens 16 --temperature 0 --print-ids 2>/dev/null)
    assert_equal "$got" "$want"
    # --eval with the adapter: a loss line, another loss than the base's.
    run --separate-stderr gen --ckpt "$SHARED/base" --eval "$SHARED/tok" --eval-samples 8
    assert_success
    base_line=$output
    run --separate-stderr gen --ckpt "$SHARED/base" --lora "$SHARED/all.h5" --eval "$SHARED/tok" --eval-samples 8
    assert_success
    [[ $output == "loss "*" perplexity "*" tokens "* ]] || fail "$output"
    [[ $output != "$base_line" ]] || fail "the adapter changed nothing: $output"
}

@test "--to peft: peft loads it onto the HF export and gives lm-generate --lora's logits within 1e-4 (alpha/r and rsLoRA; untied and tied + RoPE-scaled); --merge --to hf gives peft's logits" {
    for spec in base:all:8:4:0 base:rs:4:8:1 tied:tq:16:2:0; do
        IFS=: read -r run ad alpha r rs <<< "$spec"
        run cc --from "$SHARED/$run" --lora "$SHARED/$ad.h5" --to peft -o "$D/$ad-peft" --peft-base "$SHARED/$run-hf"
        assert_success
        assert_file_exists "$D/$ad-peft/adapter_config.json"
        assert_file_exists "$D/$ad-peft/adapter_model.safetensors"
        run cc --from "$SHARED/$run" --lora "$SHARED/$ad.h5" --merge --to hf -o "$D/$ad-merged"
        assert_success
        grep -q '"merged_lora"' "$D/$ad-merged/report.json"
        run "$PY" "$PEFT" logits "$SHARED/$run-hf" "$D/$ad-peft" "$SHARED/$ad.logits.json" --tol 1e-4 \
            --scaling "$(scaling $alpha $r $rs)" --merged "$D/$ad-merged"
        assert_success
        echo "$ad: $output"
    done
    run "$PY" -c "
import json, sys
c = json.load(open(sys.argv[1]))
want = {'peft_type': 'LORA', 'task_type': 'CAUSAL_LM', 'r': 8, 'lora_alpha': 4, 'use_rslora': True, 'bias': 'none',
        'fan_in_fan_out': False, 'inference_mode': True, 'lora_dropout': 0.0, 'base_model_name_or_path': sys.argv[2]}
for k, v in want.items(): assert c[k] == v, (k, c[k], v)
assert sorted(c['target_modules']) == ['down_proj', 'k_proj', 'q_proj'], c['target_modules']
from safetensors import safe_open
f = safe_open(sys.argv[3], 'pt')
k = sorted(f.keys())
assert len(k) == 2 * 3 * 2 and 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight' in k, k
assert list(f.get_tensor('base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight').shape) == [8, 64]
assert list(f.get_tensor('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight').shape) == [32, 8]
print('adapter_config.json and tensor names as peft writes them')" "$D/rs-peft/adapter_config.json" "$SHARED/base-hf" "$D/rs-peft/adapter_model.safetensors"
    assert_success
    # base_model_name_or_path names the HF export: AutoPeftModelForCausalLM finds the base by itself.
    run "$PY" -c "
import sys, json, torch
from peft import AutoPeftModelForCausalLM
m = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32).eval()
ours = json.load(open(sys.argv[2]))
with torch.no_grad(): t = m(torch.tensor([ours['ids']])).logits[0].double()
ref = torch.tensor(ours['logits'], dtype=torch.float64)
rel = float((t - ref).abs().max() / ref.abs().max()); print('AutoPeftModelForCausalLM', rel); assert rel <= 1e-4" \
        "$D/all-peft" "$SHARED/all.logits.json"
    assert_success
}

@test "--merge --to gguf (f32): llama.cpp gives lm-generate --lora's logits within 1e-4 (f32 KV cache) and its greedy continuation" {
    for spec in base:all base:rs tied:tq; do
        IFS=: read -r run ad <<< "$spec"
        run cc --from "$SHARED/$run" --lora "$SHARED/$ad.h5" --merge --to gguf -o "$D/$ad-merged.gguf"
        assert_success
        greedy=$(gen --ckpt "$SHARED/$run" --lora "$SHARED/$ad.h5" --prompt "the cluster trains" --max-new-tokens 16 \
            --temperature 0 --print-ids 2>/dev/null)
        run "$PY" "$REPO_ROOT/tests/python/check_gguf_export.py" "$D/$ad-merged.gguf" "$SHARED/$ad.logits.json" --tol 1e-4 \
            --kv-f32 --greedy "$greedy"
        assert_success
        echo "$ad: $output"
    done
}

@test "--to gguf-lora: llama.cpp applies it to the base GGUF (lora_path): lm-generate --lora's logits within 1e-4 with an f32 KV cache, 2e-3 with its default f16 one" {
    # Tolerances: llama.cpp's default KV cache is float16, which by itself moves these logits by
    # about 4e-4 of the largest (measured: the merged f32 GGUF moves the same); with an f32
    # cache what is left is float32 summation order (about 4e-7 measured), so 1e-4 is the bound
    # every f32 export in these tests meets.
    for spec in base:all base:rs tied:tq; do
        IFS=: read -r run ad <<< "$spec"
        run cc --from "$SHARED/$run" --lora "$SHARED/$ad.h5" --to gguf-lora -o "$D/$ad.gguf"
        assert_success
        greedy=$(gen --ckpt "$SHARED/$run" --lora "$SHARED/$ad.h5" --prompt "the cluster trains" --max-new-tokens 16 \
            --temperature 0 --print-ids 2>/dev/null)
        run "$PY" "$REPO_ROOT/tests/python/check_gguf_export.py" "$SHARED/$run.gguf" "$SHARED/$ad.logits.json" --tol 1e-4 \
            --kv-f32 --lora "$D/$ad.gguf" --greedy "$greedy"
        assert_success
        echo "$ad (f32 KV cache): $output"
        run "$PY" "$REPO_ROOT/tests/python/check_gguf_export.py" "$SHARED/$run.gguf" "$SHARED/$ad.logits.json" --tol 2e-3 \
            --lora "$D/$ad.gguf"
        assert_success
        echo "$ad (default f16 KV cache): $output"
    done
    # The file as llama.cpp's convert_lora_to_gguf.py writes it: adapter keys, tensor pairs in
    # ggml order, f32; rsLoRA's alpha/sqrt(r) written as alpha*sqrt(r) (llama.cpp divides by r).
    run "$PY" -c "
import sys, math, gguf
r = gguf.GGUFReader(sys.argv[1])
f = lambda k: r.fields[k].contents()
assert f('general.architecture') == 'llama' and f('general.type') == 'adapter' and f('adapter.type') == 'lora'
assert abs(f('adapter.lora.alpha') - 4 * math.sqrt(8)) < 1e-5, f('adapter.lora.alpha')
t = {x.name: x for x in r.tensors}
assert sorted(t) == sorted(f'blk.{l}.{m}.weight.lora_{ab}' for l in (0, 1) for m in ('attn_q', 'attn_k', 'ffn_down') for ab in 'ab'), sorted(t)
assert [int(x) for x in t['blk.0.attn_k.weight.lora_a'].shape] == [64, 8], t['blk.0.attn_k.weight.lora_a'].shape
assert [int(x) for x in t['blk.0.attn_k.weight.lora_b'].shape] == [8, 32], t['blk.0.attn_k.weight.lora_b'].shape
assert {x.tensor_type.name for x in r.tensors} == {'F32'}
print('gguf-lora layout as llama.cpp expects')" "$D/rs.gguf"
    assert_success
}

@test "--lora-from-peft: our peft export comes back bit for bit; adapters made by peft itself (f32 and bf16, listed and all-linear targets, rsLoRA) import and give peft's logits within 1e-4" {
    for spec in base:all base:rs tied:tq; do
        IFS=: read -r run ad <<< "$spec"
        cc --from "$SHARED/$run" --lora "$SHARED/$ad.h5" --to peft -o "$D/$ad-peft"
        run cc --from "$SHARED/$run" --lora-from-peft "$D/$ad-peft" -o "$D/$ad-back.h5"
        assert_success
        run "$PY" "$REPO_ROOT/tests/python/compare_adapters.py" "$SHARED/$ad.h5" "$D/$ad-back.h5"
        assert_success
        echo "$ad: $output"
    done
    # ... and an adapter of ours exported again from the import is the same file's content.
    cc --from "$SHARED/base" --lora "$D/rs-back.h5" --to peft -o "$D/rs-again"
    cmp "$D/rs-peft/adapter_model.safetensors" "$D/rs-again/adapter_model.safetensors"
    # Adapters made the way peft users make them (get_peft_model + save_pretrained).
    ids=$(ids_of "$SHARED/base.logits.json")
    for spec in "q_proj,v_proj,o_proj,up_proj:4:16::float32" "all-linear:4:16:--rslora:bfloat16" "k_proj,down_proj:2:3::float32"; do
        IFS=: read -r targets r alpha rs dtype <<< "$spec"
        run "$PY" "$PEFT" make "$SHARED/base-hf" "$D/made" "$SHARED/base.logits.json" "$D/made.json" --r $r --alpha $alpha \
            --targets $targets $rs --dtype $dtype --seed 5
        assert_success
        run --separate-stderr cc --from "$SHARED/base" --lora-from-peft "$D/made" -o "$D/made.h5"
        assert_success
        gen --ckpt "$SHARED/base" --lora "$D/made.h5" --ids "$ids" --max-new-tokens 0 --dump-logits "$D/ours.json" >/dev/null 2>&1
        run "$PY" "$PEFT" compare "$D/made.json" "$D/ours.json" --tol 1e-4
        assert_success
        echo "peft-made $targets r=$r alpha=$alpha $rs $dtype: $output"
        rm -rf "$D/made" "$D/made.h5" "$D/made.json" "$D/ours.json"
    done
}

@test "an adapter of another base is refused by lm-generate and every ckpt-convert path: one line naming the adapter, exit 2, nothing written" {
    for cmd in "gen --ckpt $SHARED/other --lora $SHARED/all.h5 --prompt x --dump-logits $D/out" \
               "cc --from $SHARED/other --lora $SHARED/all.h5 --to peft -o $D/out" \
               "cc --from $SHARED/other --lora $SHARED/all.h5 --to gguf-lora -o $D/out" \
               "cc --from $SHARED/other --lora $SHARED/all.h5 --merge --to hf -o $D/out" \
               "cc --from $SHARED/other --lora $SHARED/all.h5 --merge --to gguf -o $D/out"; do
        run --separate-stderr $cmd
        echo "$cmd: $status: $stderr"
        assert_equal "$status" 2
        one_line_naming "$SHARED/all.h5"
        [[ $stderr == *"another base"* ]] || fail "$stderr"
        nothing_written "$D/out"
    done
    # Another shape altogether (the tied model's adapter on the tiny base).
    for cmd in "gen --ckpt $SHARED/base --lora $SHARED/tq.h5 --prompt x" "cc --from $SHARED/base --lora $SHARED/tq.h5 --to peft -o $D/out"; do
        run --separate-stderr $cmd
        assert_equal "$status" 2
        one_line_naming "$SHARED/tq.h5"
        [[ $stderr == *"another shape"* ]] || fail "$stderr"
        nothing_written "$D/out"
    done
    # A peft adapter of a model of another shape does not fit the base: the tensor is named.
    cc --from "$SHARED/tied" --lora "$SHARED/tq.h5" --to peft -o "$D/tied-peft"
    run --separate-stderr cc --from "$SHARED/base" --lora-from-peft "$D/tied-peft" -o "$D/out"
    assert_equal "$status" 1
    one_line_naming "$D/tied-peft/adapter_model.safetensors"
    nothing_written "$D/out"
}

@test "bad PEFT directories: one line naming the directory or file (and the setting or tensor), exit 2 for what is unsupported or missing, 1 for what is damaged, nothing written" {
    cc --from "$SHARED/base" --lora "$SHARED/all.h5" --to peft -o "$D/good"
    run "$PY" "$REPO_ROOT/tests/python/make_bad_peft.py" "$D/good" "$D/bad"
    assert_success
    while IFS=$'\t' read -r path want must; do
        run --separate-stderr cc --from "$SHARED/base" --lora-from-peft "$path" -o "$D/out.h5"
        echo "$(basename "$path"): status $status: $stderr"
        assert_equal "$status" "$want"
        one_line_naming "$path"
        [[ $stderr == *"$must"* ]] || fail "the message does not name '$must': $stderr"
        nothing_written "$D/out.h5"
    done < "$D/bad/cases.tsv"
}

@test "missing or damaged adapter files and misused flags: one line naming the file or flag, exit 2 (1 for a damaged file), nothing written" {
    for cmd in "gen --ckpt $SHARED/base --lora $D/nowhere.h5 --prompt x --dump-logits $D/out" \
               "cc --from $SHARED/base --lora $D/nowhere.h5 --to peft -o $D/out" \
               "cc --from $SHARED/base --lora $D/nowhere.h5 --merge --to gguf -o $D/out" \
               "cc --from $SHARED/base --lora-from-peft $D/nowhere -o $D/out"; do
        run --separate-stderr $cmd
        echo "$cmd: $status: $stderr"
        assert_equal "$status" 2
        one_line_naming "$D/nowhere"
        nothing_written "$D/out"
    done
    # A truncated adapter file is damaged input: exit 1, naming it.
    head -c 20000 "$SHARED/all.h5" > "$D/cut.h5"
    for cmd in "gen --ckpt $SHARED/base --lora $D/cut.h5 --prompt x" "cc --from $SHARED/base --lora $D/cut.h5 --to gguf-lora -o $D/out"; do
        run --separate-stderr $cmd
        echo "$cmd: $status: $stderr"
        assert_equal "$status" 1
        one_line_naming "$D/cut.h5"
        nothing_written "$D/out"
    done
    # Flags that do not go together, each named.
    while IFS='|' read -r flag args; do
        run --separate-stderr cc $args -o "$D/out"
        echo "$args: $status: $stderr"
        assert_equal "$status" 2
        one_line_naming "$flag"
        nothing_written "$D/out"
    done <<EOF
--lora|--from-hf $SHARED/base-hf --lora $SHARED/all.h5
--lora|--from-gguf $SHARED/base.gguf --lora $SHARED/all.h5 --merge
--merge|--from $SHARED/base --to hf --merge
--lora|--from $SHARED/base --to peft
--merge|--from $SHARED/base --lora $SHARED/all.h5 --to hf
--merge|--from $SHARED/base --lora $SHARED/all.h5 --to gguf-lora --merge
--dtype|--from $SHARED/base --lora $SHARED/all.h5 --to peft --dtype q8_0
--dtype|--from $SHARED/base --lora $SHARED/all.h5 --to gguf-lora --dtype q8_0
--lora-from-peft|--from-hf $SHARED/base-hf --lora-from-peft $SHARED/base-hf
--to|--from $SHARED/base --lora-from-peft $SHARED/base-hf --to hf
--peft-base|--from $SHARED/base --to hf --peft-base x
EOF
    # An existing output is kept without --overwrite, replaced with it.
    cc --from "$SHARED/base" --lora "$SHARED/all.h5" --to peft -o "$D/good"
    echo keep > "$D/a.h5"
    for args in "--lora-from-peft $D/good" "--lora $SHARED/all.h5 --merge --to gguf" "--lora $SHARED/rs.h5 --to gguf-lora"; do
        run --separate-stderr cc --from "$SHARED/base" $args -o "$D/a.h5"
        assert_equal "$status" 2
        one_line_naming "$D/a.h5"
        assert_equal "$(cat "$D/a.h5")" keep
    done
    run cc --from "$SHARED/base" --lora-from-peft "$D/good" -o "$D/a.h5" --overwrite
    assert_success
    run "$PY" "$REPO_ROOT/tests/python/compare_adapters.py" "$SHARED/all.h5" "$D/a.h5"
    assert_success
}

@test "streaming: --merge exports a model 5x the memory cap under that cap (memory cgroup): the adapter is the only thing held whole" {
    # 8 layers of width 1024 (410 MB of fp32 weights, largest tensor 11.5 MB), as convert.bats's
    # memory test, with a rank-8 adapter on every projection (5 MB); cap 72 MiB: the 64 MiB a plain
    # export stays under, plus room for the adapter (measured: plain 56-60 MB, merged 64-69 MB).
    cap=$((72 * 1024 * 1024))
    "$PY" "$REPO_ROOT/tests/python/make_random_hf_llama.py" "$SHARED/base-hf" "$D/big-hf" --hidden 1024 --ffn 2816 \
        --layers 8 --heads 8 --dtype f16
    cc --from-hf "$D/big-hf" -o "$D/big"
    "$TESTBIN/make-random-adapter" --base "$D/big" --rank 8 --alpha 16 --targets all --seed 4 -o "$D/big.h5"
    size=$(( $(stat -c %s "$D/big-hf/model.safetensors") * 2 ))  # the fp32 weights: twice the f16 file
    (( size > 5 * cap )) || fail "the model ($size bytes) is not 5x the cap"
    rss() { echo $(( $(cat "$D/rss-$1") * 1024 )); }  # GNU time's %M is in KiB
    run run_memory_capped $cap /usr/bin/time -f %M -o "$D/rss-gguf" "$BIN/ckpt-convert" --progress off --from "$D/big" \
        --lora "$D/big.h5" --merge --to gguf --dtype q8_0 -o "$D/big.gguf"
    assert_success
    run run_memory_capped $cap /usr/bin/time -f %M -o "$D/rss-hf" "$BIN/ckpt-convert" --progress off --from "$D/big" \
        --lora "$D/big.h5" --merge --to hf --dtype bf16 -o "$D/big-out"
    assert_success
    echo "peak RSS of --merge: gguf q8_0 $(rss gguf), hf bf16 $(rss hf) (cap $cap)"
    for r in $(rss gguf) $(rss hf); do (( r < cap )) || fail "peak RSS $r over the cap"; done
    # The merge happened: an adapted projection differs from the base's by scaling B A.
    run "$PY" -c "
import sys, torch, h5py, hdf5plugin, numpy as np
from safetensors.torch import load_file
w = load_file(sys.argv[1])['model.layers.3.mlp.down_proj.weight'].float()
base = torch.from_numpy(h5py.File(sys.argv[2])['params/model.layers.3.mlp.down_proj.weight'][()])
a = h5py.File(sys.argv[3])
A = torch.from_numpy(a['lora/model.layers.3.mlp.down_proj/A'][()]).double()
B = torch.from_numpy(a['lora/model.layers.3.mlp.down_proj/B'][()]).double()
want = base.double() + a.attrs['scaling'] * (B @ A)
err = float(((w.double() - want).abs() / want.abs().clamp_min(1e-3)).max())
print('down_proj of layer 3: max relative error of the bf16 merge', err); assert err <= 2**-8, err" \
        "$D/big-out/model.safetensors" "$D/big/checkpoints/step-00000000/model.h5" "$D/big.h5"
    assert_success
}

@test "--dry-run lists the adapter's tensors for peft, gguf-lora and the PEFT import, and writes nothing" {
    run --separate-stderr cc --from "$SHARED/base" --lora "$SHARED/rs.h5" --to peft --dry-run -o "$D/never"
    assert_success
    [[ $output == *"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"*"[8, 64]"*"F32"* ]] || fail "$output"
    [[ $output == *"12 tensors, output about"* ]] || fail "$output"
    run --separate-stderr cc --from "$SHARED/base" --lora "$SHARED/rs.h5" --to gguf-lora --dtype f16 --dry-run
    assert_success
    [[ $output == *"blk.1.ffn_down.weight.lora_b"*"[8, 64]"*"F16"* ]] || fail "$output"
    cc --from "$SHARED/base" --lora "$SHARED/rs.h5" --to peft -o "$D/p"
    run --separate-stderr cc --from "$SHARED/base" --lora-from-peft "$D/p" --dry-run -o "$D/never.h5"
    assert_success
    [[ $output == *"-> lora/model.layers.1.mlp.down_proj/B"* ]] || fail "$output"
    assert_not_exist "$D/never"
    assert_not_exist "$D/never.h5"
}
