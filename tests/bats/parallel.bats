#!/usr/bin/env bats
# pretrain across ranks (mpirun --oversubscribe on this machine): every TP x PP x DP layout, with
# and without ZeRO-1, gives the single-process losses; checkpoints saved under one layout resume
# under another; the grid and per-group communication times are reported; bad layouts are refused
# with the reason; a killed rank ends the job. And the --dry-run planner on the issue's example.

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    export SHARED=$BATS_FILE_TMPDIR
    make_pretrain_shards "$SHARED" 5
    # Three layers (stages of unequal depth), tied embeddings, an odd vocabulary (unequal
    # vocabulary slices): the awkward cases of every cut.
    python3 - "$SHARED" <<'PY'
import json, sys
d = sys.argv[1]
c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 176,
     "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 3, "vocab_size": 301,
     "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True}
json.dump(c, open(f"{d}/tied3.json", "w"))
c.update(num_key_value_heads=1)
json.dump(c, open(f"{d}/kv1.json", "w"))
PY
    # The single-process references, each run once for the whole file.
    "$BIN/pretrain" --data "$SHARED/tok" --model tiny --micro-batch 2 --threads 1 --seq-len 64 \
        --lr 3e-3 --warmup-steps 2 --global-batch 8 --steps 20 --log-every 100 -o "$SHARED/ref" 2>/dev/null
    "$BIN/pretrain" --data "$SHARED/tok" --model "$SHARED/tied3.json" --micro-batch 2 --threads 1 --seq-len 64 \
        --lr 3e-3 --warmup-steps 2 --global-batch 8 --steps 20 --log-every 100 --recompute selective \
        -o "$SHARED/ref-tied" 2>/dev/null
}

setup() {
    load helpers
    D=$BATS_TEST_TMPDIR
}

# train NRANKS [pretrain options]: pretrain on the shared shards under mpirun (--global-batch 8
# unless given).
train() {
    local n=$1 extra=()
    shift
    [[ " $* " == *" --global-batch "* ]] || extra+=(--global-batch 8)
    timeout 300 "$MPIRUN" -np "$n" "$BIN/pretrain" --data "$SHARED/tok" --micro-batch 2 --threads 1 --seq-len 64 \
        --lr 3e-3 --warmup-steps 2 --log-every 100 "${extra[@]}" "$@"
}

@test "every layout (TP, PP, DP) with and without ZeRO-1: the single-process losses over 20 steps" {
    for layout in "1 1 1" "2 1 1" "1 2 1" "1 1 2" "2 2 1" "2 1 2" "1 2 2" "2 2 2"; do
        read -r tp pp dp <<<"$layout"
        for zero in 0 1; do
            out=$D/t$tp-p$pp-d$dp-z$zero
            run train $((tp * pp * dp)) --model tiny --steps 20 --tp "$tp" --pp "$pp" --zero "$zero" -o "$out"
            assert_success
            same_losses "$out/metrics.jsonl" "$SHARED/ref/metrics.jsonl" || fail "tp $tp pp $pp dp $dp zero $zero"
        done
    done
}

@test "tied embeddings across the pipeline, unequal vocabulary slices and stages, recomputation: same losses" {
    for spec in "4|--tp 2 --pp 2 --zero 1 --recompute selective" "2|--pp 2 --pp-layers 1,2 --recompute selective" \
        "4|--pp 2 --dp 2 --recompute full" "8|--tp 2 --pp 2 --dp 2 --recompute selective"; do
        n=${spec%%|*}
        read -ra a <<<"${spec#*|}"
        out=$D/r$n-${#spec}
        run train "$n" --model "$SHARED/tied3.json" --steps 20 "${a[@]}" -o "$out"
        assert_success
        same_losses "$out/metrics.jsonl" "$SHARED/ref-tied/metrics.jsonl" || fail "$spec"
    done
}

@test "a checkpoint saved under one layout resumes under another: the next losses match" {
    # Saved by 8 ranks (TP 2 x PP 2 x DP 2, ZeRO-1) at step 10, resumed by 2 data-parallel ranks.
    run train 8 --model "$SHARED/tied3.json" --recompute selective --steps 20 --save-every 10 \
        --tp 2 --pp 2 --zero 1 -o "$D/a"
    assert_success
    [[ -f $D/a/checkpoints/step-00000010/parts/rank-00007.h5 ]] || fail "no part file of rank 7"
    rm -r "$D/a/checkpoints/step-00000020"
    echo step-00000010 >"$D/a/checkpoints/latest"
    run train 2 --model "$SHARED/tied3.json" --recompute selective --steps 20 --dp 2 --resume auto -o "$D/a"
    assert_success
    assert_output --partial "resumed from $D/a/checkpoints/step-00000010 at step 10"
    same_losses "$D/a/metrics.jsonl" "$SHARED/ref-tied/metrics.jsonl"

    # Saved by one process, resumed by TP 2 x PP 2 (the same schedule: --steps 20 both times).
    run train 1 --model tiny --steps 20 --save-every 10 -o "$D/c"
    assert_success
    rm -r "$D/c/checkpoints/step-00000020"
    echo step-00000010 >"$D/c/checkpoints/latest"
    run train 4 --model tiny --steps 20 --tp 2 --pp 2 --resume auto -o "$D/c"
    assert_success
    assert_output --partial "resumed from $D/c/checkpoints/step-00000010 at step 10"
    same_losses "$D/c/metrics.jsonl" "$SHARED/ref/metrics.jsonl"
}

@test "a checkpoint written in slices reads as whole tensors: h5py, lm-generate, ckpt-convert; a lost part is named" {
    run train 4 --model tiny --steps 20 --tp 2 --dp 2 --zero 1 -o "$D/s"
    assert_success
    # The whole tensors equal the single-process run's to rounding, and none is NaN (the fill
    # value of an element no rank wrote).
    run "$VENV/bin/python" - "$D/s/checkpoints/step-00000020/model.h5" "$SHARED/ref/checkpoints/step-00000020/model.h5" <<'PY'
import sys, h5py, hdf5plugin, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
names = []
b.visit(lambda n: names.append(n) if isinstance(b[n], h5py.Dataset) else None)
assert len(names) == 3 * 21, len(names)
for n in names:
    x, y = a[n][()], b[n][()]
    assert x.shape == y.shape and not np.isnan(x).any(), n
    assert np.abs(x - y).max() <= 1e-3 * np.abs(y).max() + 1e-9, (n, np.abs(x - y).max())
print("ok", len(names))
PY
    assert_success
    assert_output "ok 63"
    run "$BIN/lm-generate" --ckpt "$D/s" --prompt "the cluster" --max-new-tokens 4 --seed 1
    assert_success
    run "$BIN/ckpt-convert" --from "$D/s" --to hf -o "$D/hf"
    assert_success
    rm "$D/s/checkpoints/step-00000020/parts/rank-00001.h5"
    run "$BIN/lm-generate" --ckpt "$D/s" --prompt "x"
    assert_failure 1
    assert_output --partial "parts/rank-00001.h5 is missing"
}

@test "rank 0 prints the grid with nodes; metrics carry TP, PP and DP communication time per rank" {
    run train 8 --model tiny --steps 2 --tp 2 --pp 2 --zero 1 -o "$D/g"
    assert_success
    host=$(hostname -s)
    assert_output --partial "grid: 8 ranks = tp 2 x dp 2 x pp 2"
    assert_output --partial "tp groups: [0@$host 1@$host] [2@$host 3@$host]"
    assert_output --partial "pp groups: [0@$host 4@$host]"
    assert_output --partial "pipeline stages: 0: layers 0-0 + embedding; 1: layers 1-1 + head"
    assert_output --partial "ZeRO-1"
    run python3 - "$D/g/metrics.jsonl" <<'PY'
import json, sys
steps = [r for r in map(json.loads, open(sys.argv[1])) if r.get("event") == "step"]
t = steps[-1]["time_s"]
assert all(k in t for k in ("tp", "pp", "dp", "communication")), t
by_rank = steps[-1]["comm_s_by_rank"]
assert len(by_rank) == 8, by_rank
assert all(r["tp"] > 0 and r["pp"] > 0 and r["dp"] > 0 for r in by_rank), by_rank
print("ok")
PY
    assert_success
}

@test "bad layouts are refused with the reason, exit 2, before anything is written" {
    run train 4 --model "$SHARED/kv1.json" --steps 2 --tp 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "--tp 2 does not divide the model's key/value heads (1)"
    run train 3 --model tiny --steps 2 --tp 2 -o "$D/x"
    assert_failure 2
    assert_output --partial "--tp"
    run train 4 --model tiny --steps 2 --pp 4 -o "$D/x"
    assert_failure 2
    assert_output --partial "--pp 4 is more pipeline stages than the model has layers (2)"
    run train 4 --model tiny --steps 2 --dp 4 --global-batch 4 -o "$D/x"
    assert_failure 2
    assert_output --partial "must be a multiple of --micro-batch x data-parallel size (2 x 4)"
    run train 2 --model tiny --steps 2 --pp 2 --pp-layers 2,0 -o "$D/x"
    assert_failure 2
    assert_output --partial "--pp-layers"
    run "$BIN/pretrain" --data "$SHARED/tok" --model tiny --steps 2 --gpu h100-80gb -o "$D/x"
    assert_failure 2
    assert_output --partial "only applies with --dry-run"
    [[ ! -e $D/x ]] || fail "a refused run left $D/x"
}

@test "a rank killed mid-step ends the whole job with a message, within a bounded time" {
    SECONDS=0
    train 4 --model tiny --steps 100000 --tp 2 --pp 2 -o "$D/k" >"$D/k.log" 2>&1 &
    job=$!
    for _ in $(seq 100); do
        [[ -s $D/k/metrics.jsonl ]] && break
        sleep 0.2
    done
    [[ -s $D/k/metrics.jsonl ]] || fail "training did not start: $(cat "$D/k.log")"
    victim=$(pgrep -f "^$BIN/pretrain --data $SHARED/tok .*-o $D/k" | sed -n 2p)
    [[ -n $victim ]] || fail "no rank process found"
    kill -9 "$victim"
    status=0
    wait "$job" || status=$?
    ((status != 0)) || fail "the job went on"
    ((status != 124)) || fail "the job hung until timeout"
    ((SECONDS < 90)) || fail "took ${SECONDS}s"
    grep -q "exited on signal 9 (Killed)" "$D/k.log" || fail "no message: $(tail -5 "$D/k.log")"
}

@test "--dry-run plans the issue's 70B example per stage, and --suggest ranks the layouts of a cluster" {
    run "$BIN/pretrain" --dry-run --model llama3-70b --tp 4 --pp 2 --nodes 2 --gpus-per-node 4 --gpu h100-80gb \
        --micro-batch 1 --seq-len 8192 --global-batch 512 --zero 1 --recompute full
    assert_success
    assert_output --partial "stage 0: ranks 0-3 on node 0, layers 0-39 + embedding"
    assert_output --partial "verdict: OOM"
    # LoRA on the frozen base, TP 4 on one 4-GPU node, fits.
    run "$BIN/pretrain" --dry-run --model llama3-70b --tp 4 --nodes 1 --gpus-per-node 4 --gpu h100-80gb \
        --micro-batch 1 --seq-len 8192 --global-batch 512 --recompute full --lora-rank 16
    assert_success
    assert_output --partial "verdict: FITS"
    # TP 8 across two 4-GPU nodes is flagged with the fix.
    run "$BIN/pretrain" --dry-run --model llama3-70b --tp 8 --nodes 2 --gpus-per-node 4 --gpu h100-80gb \
        --micro-batch 1 --seq-len 8192 --global-batch 512
    assert_success
    assert_output --partial "warning: TP=8 spans nodes of 4 GPUs"
    assert_output --partial "keep TP within a node and put PP across nodes"
    run "$BIN/pretrain" --dry-run --suggest --model llama3-70b --nodes 8 --gpus-per-node 8 --gpu h100-80gb \
        --micro-batch 1 --seq-len 8192 --global-batch 512
    assert_success
    assert_output --partial "FITS"
}
