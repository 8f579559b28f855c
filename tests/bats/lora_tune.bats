#!/usr/bin/env bats
# lora-tune: LoRA on a frozen base learns a response format from SFT shards (loss on the response
# only), the adapter serves through lm-generate --lora, full SFT trains every weight, LoRA's
# memory is far below full SFT's, runs resume exactly and give the single-process losses under
# TP x PP x DP, and bad input is refused. The LoRA math against PyTorch: lora_reference.bats.

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    export SHARED=$BATS_FILE_TMPDIR
    make_pretrain_shards "$SHARED" 5
    # The base: the tiny model pretrained on the corpus long enough to know its words.
    "$BIN/pretrain" --data "$SHARED/tok" --model tiny --micro-batch 8 --global-batch 8 --seq-len 64 --threads 1 \
        --steps 300 --lr 3e-3 --log-every 1000 -o "$SHARED/base" 2>/dev/null
    # The task: whatever the prompt (corpus words), answer with one fixed sentence — a format the
    # base has no reason to produce after a prompt.
    python3 - "$SHARED" <<'PY'
import json, random, sys
d = sys.argv[1]
words = "the cluster trains a model on shards while the scheduler waits and the loss goes down".split()
for name, seed, n in (("task", 7, 300), ("task-valid", 8, 40), ("probe", 9, 3)):
    random.seed(seed)
    with open(f"{d}/{name}.jsonl", "w") as f:
        for i in range(n):
            p = " ".join(random.choice(words) for _ in range(random.randint(3, 8)))
            f.write(json.dumps({"prompt": p, "response": " waits while the scheduler trains shards"}) + "\n")
PY
    for name in task task-valid; do
        "$BIN/tokenize-pack" --tokenizer "$SHARED/tok/tokenizer.json" --mode sft --seq-len 64 --progress off \
            "$SHARED/$name.jsonl" -o "$SHARED/$name" 2>/dev/null
    done
}

setup() {
    load helpers
    D=$BATS_TEST_TMPDIR
}

# tune [lora-tune options]: on the task shards with this file's defaults (a test's own --lr or
# --micro-batch replaces the default).
tune() {
    local extra=()
    [[ " $* " == *" --lr "* ]] || extra+=(--lr 1e-2)
    [[ " $* " == *" --micro-batch "* ]] || extra+=(--micro-batch 4)
    # exec: callers run this in a subshell (run, &), and a signal must reach lora-tune itself.
    exec "$BIN/lora-tune" --base "$SHARED/base" --data "$SHARED/task" --global-batch 8 --seq-len 64 \
        --threads 1 --warmup-steps 5 --log-every 1000 "${extra[@]}" "$@"
}

@test "LoRA learns the response format: held-out loss drops, only the adapter is saved, the base is untouched" {
    base_sum=$(sha256sum "$SHARED"/base/checkpoints/step-00000300/model.h5)
    run tune --valid-data "$SHARED/task-valid" --rank 16 --steps 100 --eval-every 100 -o "$D/lora"
    assert_success
    assert_output --partial "frozen; LoRA rank 16"
    ls "$D/lora/checkpoints/step-00000100"
    [[ -f $D/lora/checkpoints/step-00000100/adapter.h5 && ! -e $D/lora/checkpoints/step-00000100/model.h5 ]] ||
        fail "the checkpoint is not adapter-only"
    assert_equal "$(sha256sum "$SHARED"/base/checkpoints/step-00000300/model.h5)" "$base_sum"
    # The first step's loss is the base's (B starts at zero); the held-out loss at the end is far
    # below it; only response tokens count (the targets of a step are fewer than its tokens).
    run python3 - "$D/lora/metrics.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
first = next(r for r in recs if r.get("event") == "step")
ev = [r for r in recs if r.get("event") == "eval"][-1]
assert first["targets"] < 8 * 64, first["targets"]
print(f"base loss {first['loss']:.3f} -> held-out {ev['eval_loss']:.3f}")
assert ev["eval_loss"] < 0.6 * first["loss"], (first["loss"], ev["eval_loss"])
PY
    assert_success
    echo "$output" >&3
    # The adapter file is small: the base's tensors are not in it.
    (($(stat -c %s "$D/lora/checkpoints/step-00000100/adapter.h5") < $(stat -c %s "$SHARED/base/checkpoints/step-00000300/model.h5") / 2)) ||
        fail "the adapter file is not small"
}

@test "lm-generate --lora shows the learned format; without it the base does not" {
    run tune --rank 16 --steps 100 -o "$D/lora"
    assert_success
    prompt="the loss goes down and the model"
    run "$BIN/lm-generate" --ckpt "$SHARED/base" --lora "$D/lora" --prompt "$prompt" --max-new-tokens 20 --temperature 0
    assert_success
    [[ $output == *"waits while the scheduler trains shards"* ]] || fail "tuned: $output"
    run "$BIN/lm-generate" --ckpt "$SHARED/base" --prompt "$prompt" --max-new-tokens 20 --temperature 0
    assert_success
    [[ $output != *"waits while the scheduler trains shards"* ]] || fail "the base already answers so: $output"
}

@test "--full trains every weight into model checkpoints; LoRA's peak memory is far below full SFT's" {
    run tune --full --lr 3e-3 --steps 40 --valid-data "$SHARED/task-valid" --eval-every 40 -o "$D/full"
    assert_success
    [[ -f $D/full/checkpoints/step-00000040/model.h5 ]] || fail "no model checkpoint"
    # Memory on a 20M-parameter base (the small preset): full SFT holds weights, gradients and two
    # AdamW moments for every parameter; LoRA only the frozen weights and the adapters' state.
    "$BIN/pretrain" --data "$SHARED/tok" --model small --micro-batch 1 --seq-len 64 --threads 1 --steps 1 \
        -o "$D/small" 2>/dev/null
    for mode in lora full; do
        extra=(--rank 8)
        [[ $mode == full ]] && extra=(--full)
        /usr/bin/time -v "$BIN/lora-tune" --base "$D/small" --data "$SHARED/task" --micro-batch 2 --seq-len 64 \
            --threads 1 --steps 2 "${extra[@]}" -o "$D/mem-$mode" 2>"$D/mem-$mode.log" ||
            fail "$(tail -3 "$D/mem-$mode.log")"
    done
    lora_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$D/mem-lora.log")
    full_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$D/mem-full.log")
    echo "peak RSS on the small model: LoRA $((lora_kb / 1024)) MiB, full SFT $((full_kb / 1024)) MiB" >&3
    ((lora_kb * 2 < full_kb)) || fail "LoRA ${lora_kb} kB vs full ${full_kb} kB"
}

@test "SIGTERM mid-run, --resume auto: the remaining losses equal an uninterrupted run's" {
    run tune --rank 4 --steps 60 --save-every 10 -o "$D/full-run"
    assert_success
    tune --rank 4 --steps 60 --save-every 10 -o "$D/cut" >"$D/cut.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        [[ -s $D/cut/checkpoints/latest ]] && break
        sleep 0.05
    done
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    [[ $status == 75 || $status == 0 ]] || fail "exit $status: $(tail -3 "$D/cut.log")"
    run tune --rank 4 --steps 60 --save-every 10 -o "$D/cut" --resume auto
    assert_success
    assert_equal "$(losses "$D/cut/metrics.jsonl")" "$(losses "$D/full-run/metrics.jsonl")"
}

@test "under TP x PP and DP (mpirun), with dropout, the single-process losses" {
    run tune --rank 4 --dropout 0.1 --steps 12 --micro-batch 2 -o "$D/one"
    assert_success
    k=0
    for layout in "4|--tp 2 --pp 2" "2|--dp 2 --zero 1" "4|--tp 2 --dp 2"; do
        n=${layout%%|*}
        read -ra a <<<"${layout#*|}"
        out=$D/par-$((++k))
        run timeout 300 "$MPIRUN" -np "$n" "$BIN/lora-tune" --base "$SHARED/base" --data "$SHARED/task" --micro-batch 2 \
            --global-batch 8 --seq-len 64 --threads 1 --lr 1e-2 --warmup-steps 5 --log-every 1000 --rank 4 \
            --dropout 0.1 --steps 12 "${a[@]}" -o "$out"
        assert_success
        same_losses "$out/metrics.jsonl" "$D/one/metrics.jsonl" || fail "$layout"
    done
}

@test "bad input: clear one-line errors, the right exit codes, nothing written" {
    run tune --rank 4 --targets q,x --steps 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "--targets: 'x' is not a projection"
    run tune --rank 0 --steps 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "--rank must be positive"
    run tune --rank 100 --steps 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "--rank 100 is larger than the self_attn.q_proj layer (64 x 64)"
    run tune --rank 4 --full --steps 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "--rank is a LoRA setting: it does not go with --full"
    run "$BIN/lora-tune" --base "$SHARED/base" --data "$SHARED/tok" --steps 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "tokens_pretrain shards, but SFT needs tokens_sft (tokenize-pack --mode sft)"
    run "$BIN/lora-tune" --data "$SHARED/task" --steps 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "exactly one of --base CKPT, --base-hf DIR, --base-gguf FILE"
    # SFT shards whose loss mask is 0 everywhere teach nothing.
    cp -r "$SHARED/task" "$D/masked"
    "$VENV/bin/python" - "$D/masked" <<'PY'
import glob, sys, h5py, hdf5plugin
for f in glob.glob(sys.argv[1] + "/*.h5"):
    with h5py.File(f, "r+") as h:
        h["loss_mask"][...] = 0
PY
    run "$BIN/lora-tune" --base "$SHARED/base" --data "$D/masked" --steps 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "have no unmasked token"
    [[ ! -e $D/x ]] || fail "a refused run left $D/x"
    # An adapter resumed onto another base is refused, by fingerprint.
    run tune --rank 4 --steps 2 -o "$D/a"
    assert_success
    "$BIN/pretrain" --data "$SHARED/tok" --model tiny --micro-batch 8 --seq-len 64 --threads 1 --steps 2 \
        -o "$D/other-base" 2>/dev/null
    run "$BIN/lora-tune" --base "$D/other-base" --data "$SHARED/task" --micro-batch 4 --seq-len 64 --threads 1 \
        --rank 4 --steps 4 -o "$D/a" --resume auto
    assert_failure
    assert_output --partial "the adapter was trained on another base"
}

@test "--dry-run: LoRA on a frozen 70B fits one 4-GPU node where full SFT does not" {
    mkdir -p "$D/70b"
    "$BIN/pretrain" --dry-run --model llama3-70b | sed -n 's/^plan: //p' |
        python3 -c 'import json, sys; json.dump(json.load(sys.stdin)["config"], open(sys.argv[1], "w"))' "$D/70b/config.json"
    plan=(--tp 4 --nodes 1 --gpus-per-node 4 --gpu h100-80gb --seq-len 8192 --micro-batch 1 --global-batch 64 --recompute full)
    run "$BIN/lora-tune" --base-hf "$D/70b" --dry-run --rank 16 "${plan[@]}"
    assert_success
    assert_output --partial "verdict: FITS"
    run "$BIN/lora-tune" --base-hf "$D/70b" --dry-run --full "${plan[@]}"
    assert_success
    assert_output --partial "verdict: OOM"
}

@test "--base-hf and --base-gguf: the base imported into RUNDIR/base gives the same run as --base" {
    run tune --rank 4 --steps 5 -o "$D/ckpt"
    assert_success
    run "$BIN/ckpt-convert" --from "$SHARED/base" --to hf -o "$D/hf"
    assert_success
    run "$BIN/ckpt-convert" --from "$SHARED/base" --to gguf -o "$D/base.gguf"
    assert_success
    run "$BIN/lora-tune" --base-hf "$D/hf" --data "$SHARED/task" --micro-batch 4 --global-batch 8 --seq-len 64 \
        --threads 1 --lr 1e-2 --warmup-steps 5 --log-every 1000 --rank 4 --steps 5 -o "$D/from-hf"
    assert_success
    assert_output --partial "importing the base $D/hf into $D/from-hf/base"
    assert_equal "$(losses "$D/from-hf/metrics.jsonl")" "$(losses "$D/ckpt/metrics.jsonl")"
    # A GGUF carries its vocabulary, not our tokenizer file: the import writes a tokenizer.json of
    # its own (another file, another SHA-256), so the data is packed with that one. Same ids, so
    # the same run.
    run "$BIN/lora-tune" --base-gguf "$D/base.gguf" --data "$SHARED/task" --seq-len 64 --rank 4 --steps 5 -o "$D/from-gguf"
    assert_failure 2
    assert_output --partial "tokenize the data with the model's tokenizer"
    "$BIN/tokenize-pack" --tokenizer "$D/from-gguf/base/tokenizer/tokenizer.json" --mode sft --seq-len 64 --progress off \
        "$SHARED/task.jsonl" -o "$D/task-gguf" 2>/dev/null
    run "$BIN/lora-tune" --base-gguf "$D/base.gguf" --data "$D/task-gguf" --micro-batch 4 --global-batch 8 --seq-len 64 \
        --threads 1 --lr 1e-2 --warmup-steps 5 --log-every 1000 --rank 4 --steps 5 -o "$D/from-gguf"
    assert_success
    assert_equal "$(losses "$D/from-gguf/metrics.jsonl")" "$(losses "$D/ckpt/metrics.jsonl")"
}
