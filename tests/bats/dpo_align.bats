#!/usr/bin/env bats
# dpo-align: preference alignment of a lora-tune adapter (or a new one, or every weight) against a
# frozen reference. A synthetic preference the SFT adapter does not hold is learned (held-out
# reward accuracy, greedy generations); the reference stays frozen (its log-probabilities
# recomputed after training are the same, the base and the starting adapter are untouched);
# --precompute-ref gives the per-step reference pass's losses; step 1's loss is log 2 (policy ==
# reference); runs resume exactly after SIGUSR1 or SIGKILL; TP/PP/DP give the single-process
# losses; bad input is refused; the output adapter converts for peft. The loss formulas against
# TRL's: dpo_loss_reference.bats.

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    export SHARED=$BATS_FILE_TMPDIR
    make_pretrain_shards "$SHARED" 5
    # The base: the tiny model pretrained on the corpus long enough to know its words.
    "$BIN/pretrain" --data "$SHARED/tok" --model tiny --micro-batch 8 --global-batch 8 --seq-len 64 --threads 1 \
        --steps 300 --lr 3e-3 --log-every 1000 -o "$SHARED/base" 2>/dev/null
    # The task. Prompts are corpus words and a ':' (without a mark the model cannot tell where a
    # prompt ends); the SFT answer is " and down" after a prompt whose last word is in A (half the
    # draws), " and waits" otherwise, so that base + SFT adapter writes both endings. The
    # preference: " and down" whatever the prompt (chosen), " and waits" (rejected). probe.txt:
    # 12 held-out prompts, 6 of each kind.
    python3 - "$SHARED" <<'PY'
import json, random, sys
d = sys.argv[1]
words = "the cluster trains a model on shards while the scheduler waits and the loss goes down".split()
A = {"the", "cluster", "trains", "a", "model", "on"}
def prompt(rng):
    return " ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) + ":"
def down(p):
    return p[:-1].split()[-1] in A
rng = random.Random(11)
with open(f"{d}/sft.jsonl", "w") as f:
    for i in range(300):
        p = prompt(rng)
        f.write(json.dumps({"prompt": p, "response": " and down" if down(p) else " and waits"}) + "\n")
for name, seed, n in (("pref", 12, 200), ("pref-valid", 13, 40)):
    rng = random.Random(seed)
    with open(f"{d}/{name}.jsonl", "w") as f:
        for i in range(n):
            f.write(json.dumps({"prompt": prompt(rng), "chosen": " and down", "rejected": " and waits"}) + "\n")
rng = random.Random(14)
probe = {True: [], False: []}
while min(map(len, probe.values())) < 6:
    p = prompt(rng)
    probe[down(p)].append(p)
with open(f"{d}/probe.txt", "w") as f:
    f.write("\n".join(probe[True][:6] + probe[False][:6]) + "\n")
PY
    "$BIN/tokenize-pack" --tokenizer "$SHARED/tok/tokenizer.json" --mode sft --seq-len 64 --progress off \
        "$SHARED/sft.jsonl" -o "$SHARED/sft-data" 2>/dev/null
    for name in pref pref-valid; do
        "$BIN/tokenize-pack" --tokenizer "$SHARED/tok/tokenizer.json" --mode preference --seq-len 64 --progress off \
            "$SHARED/$name.jsonl" -o "$SHARED/$name" 2>/dev/null
    done
    # The SFT adapter DPO continues.
    "$BIN/lora-tune" --base "$SHARED/base" --data "$SHARED/sft-data" --micro-batch 4 --global-batch 8 --seq-len 64 \
        --threads 1 --warmup-steps 5 --lr 1e-2 --rank 16 --steps 200 --log-every 1000 -o "$SHARED/sft" 2>/dev/null
}

setup() {
    load helpers
    D=$BATS_TEST_TMPDIR
    SFT_ADAPTER=$SHARED/sft/checkpoints/step-00000200/adapter.h5
}

# dpo [dpo-align options]: on the preference shards with this file's defaults (a test's own --data,
# --lr or --micro-batch replaces the default).
dpo() {
    local extra=()
    [[ " $* " == *" --data "* ]] || extra+=(--data "$SHARED/pref")
    [[ " $* " == *" --lr "* ]] || extra+=(--lr 1e-3)
    [[ " $* " == *" --micro-batch "* ]] || extra+=(--micro-batch 4)
    # exec: callers run this in a subshell (run, &), and a signal must reach dpo-align itself.
    exec "$BIN/dpo-align" --policy "$SHARED/base" --global-batch 8 --seq-len 64 --threads 1 \
        --log-every 1000 "${extra[@]}" "$@"
}

# endings ADAPTER: how many of the probe prompts base + ADAPTER answers greedily with " and down"
# and with " and waits", as "DOWN WAITS".
endings() {
    local down=0 waits=0 p out
    while IFS= read -r p; do
        out=$("$BIN/lm-generate" --ckpt "$SHARED/base" --lora "$1" --prompt "$p" --max-new-tokens 12 --temperature 0 \
            --progress off 2>/dev/null)
        [[ $out == *": and down" ]] && down=$((down + 1))
        [[ $out == *": and waits" ]] && waits=$((waits + 1))
    done <"$SHARED/probe.txt"
    echo "$down $waits"
}

# step_field RUN KEY: KEY of step 1's record, repr'd
step1() {
    python3 - "$1/metrics.jsonl" "$2" <<'PY'
import json, sys
r = next(json.loads(l) for l in open(sys.argv[1]) if json.loads(l).get("event") == "step")
print(repr(r[sys.argv[2]]))
PY
}

# close_losses A B TOL: steps, losses and held-out losses of two runs agree within TOL absolute;
# prints the largest difference.
close_losses() {
    python3 - "$@" <<'PY'
import json, sys
def read(p, event, key):
    last = {}
    for line in open(p):
        r = json.loads(line)
        if r.get("event") == event:
            last[r["step"]] = r[key]
    return [last[s] for s in sorted(last)]
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
worst = 0.0
for event, key in (("step", "loss"), ("eval", "eval_loss"), ("eval", "eval_rewards/accuracies")):
    x, y = read(a, event, key), read(b, event, key)
    assert len(x) == len(y), f"{key}: {len(x)} vs {len(y)} records"
    worst = max([worst] + [abs(u - v) for u, v in zip(x, y)])
assert read(a, "step", "loss"), "no steps"
print(f"largest loss difference {worst:.3g}")
assert worst <= tol, f"largest difference {worst:.3g} > {tol:g}"
PY
}

@test "continuing the SFT adapter, DPO learns the preference: held-out reward accuracy > 0.9, greedy answers follow it where SFT's did not" {
    # The SFT adapter writes both endings (its own rule): the preference is not there yet.
    read -r down waits <<<"$(endings "$SFT_ADAPTER")"
    echo "SFT adapter: ' and down' on $down of 12 probe prompts, ' and waits' on $waits" >&3
    ((down <= 8 && waits >= 3)) || fail "the SFT adapter already prefers ' and down' ($down down, $waits waits)"
    # Pure DPO on pairs that differ in one word lowers both sides' likelihood on this tiny model
    # (the known DPO effect: greedy answers degrade into other tokens): --sft-weight (RPO) keeps
    # the chosen answer likely.
    run dpo --lora "$SHARED/sft" --sft-weight 1 --steps 40 --valid-data "$SHARED/pref-valid" --eval-every 20 \
        --eval-batches 10 -o "$D/dpo"
    assert_success
    assert_output --partial "reference: the base with the starting adapter frozen"
    [[ -f $D/dpo/checkpoints/step-00000040/adapter.h5 && ! -e $D/dpo/checkpoints/step-00000040/model.h5 ]] ||
        fail "the checkpoint is not adapter-only"
    cmp "$D/dpo/reference/adapter.h5" "$SFT_ADAPTER" || fail "RUNDIR/reference/adapter.h5 is not the starting adapter"
    run python3 - "$D/dpo/metrics.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
steps = [r for r in recs if r.get("event") == "step"]
ev = [r for r in recs if r.get("event") == "eval"]
for k in ("loss", "dpo_loss", "sft_loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
          "rewards/margins", "logps/chosen", "logps/rejected"):
    assert k in steps[-1], k
assert [r["step"] for r in ev] == [20, 40], [r["step"] for r in ev]
last = ev[-1]
assert last["eval_pairs"] == 40, last["eval_pairs"]
print(f"held-out reward accuracy {last['eval_rewards/accuracies']:.3f}, margin {last['eval_rewards/margins']:.3f}, "
      f"dpo loss {steps[0]['dpo_loss']:.4f} -> {steps[-1]['dpo_loss']:.4f}")
assert last["eval_rewards/accuracies"] > 0.9, last
assert last["eval_rewards/margins"] > 0, last
PY
    assert_success
    echo "$output" >&3
    read -r down waits <<<"$(endings "$D/dpo")"
    echo "after DPO: ' and down' on $down of 12 probe prompts, ' and waits' on $waits" >&3
    ((down >= 11 && waits == 0)) || fail "DPO's adapter: $down down, $waits waits of 12"
}

@test "the reference is frozen: its log-probabilities recomputed after training are identical; the base and the starting adapter are untouched" {
    base_sums=$(cd "$SHARED/base/checkpoints/step-00000300" && sha256sum *)
    adapter_sum=$(sha256sum "$SFT_ADAPTER")
    run dpo --lora "$SHARED/sft" --precompute-ref --sft-weight 1 --steps 20 --valid-data "$SHARED/pref-valid" \
        --eval-every 20 -o "$D/a"
    assert_success
    assert_output --partial "reference log-probabilities of 200 train pairs computed"
    assert_output --partial "reference log-probabilities of 40 valid pairs computed"
    assert_equal "$(cd "$SHARED/base/checkpoints/step-00000300" && sha256sum *)" "$base_sums"
    assert_equal "$(sha256sum "$SFT_ADAPTER")" "$adapter_sum"
    cmp "$D/a/reference/adapter.h5" "$SFT_ADAPTER"
    # A fresh run from the same policy and adapter, after the training above, computes the very
    # same reference; the policy itself did move.
    run dpo --lora "$SHARED/sft" --precompute-ref --steps 1 --valid-data "$SHARED/pref-valid" --eval-every 1 -o "$D/b"
    assert_success
    run "$VENV/bin/python" - "$D/a" "$D/b" "$SFT_ADAPTER" <<'PY'
import sys, h5py, hdf5plugin, numpy as np
a, b, start = sys.argv[1:4]
for split, n in (("train", 200), ("valid", 40)):
    with h5py.File(f"{a}/reference/logps-{split}.h5") as x, h5py.File(f"{b}/reference/logps-{split}.h5") as y:
        assert x.attrs["schema"] == "reference_logps", x.attrs["schema"]
        for k in ("chosen_logp", "rejected_logp", "chosen_targets", "rejected_targets"):
            u, v = x[k][...], y[k][...]
            assert u.shape == (n,) and np.array_equal(u, v), (split, k)
        c, r = x["chosen_logp"][...], x["rejected_logp"][...]
        assert np.all(np.isfinite(c)) and np.all(c < 0) and np.all(r < 0)
        for k in ("data_sha256", "reference_fingerprint", "seq_len"):
            assert x.attrs[k] == y.attrs[k], k
def tensors(path):
    with h5py.File(path) as h:
        out = {}
        h.visititems(lambda n, o: out.__setitem__(n, o[...]) if isinstance(o, h5py.Dataset) and not n.startswith("optim") else None)
        return out
s, e = tensors(start), tensors(f"{a}/checkpoints/step-00000020/adapter.h5")
assert s.keys() == e.keys() and s
moved = max(float(np.abs(s[k] - e[k]).max()) for k in s)
print(f"reference log-probabilities identical (200 + 40 pairs); the adapter moved by up to {moved:.3g}")
assert moved > 1e-4
PY
    assert_success
    echo "$output" >&3
}

@test "--precompute-ref gives the losses of the per-step reference pass: new adapter, continued adapter, every weight" {
    for mode in "new|--new-lora --rank 4" "lora|--lora $SHARED/sft" "full|--lr 1e-4"; do
        name=${mode%%|*}
        read -ra a <<<"${mode#*|}"
        for pre in step pre; do
            extra=()
            [[ $pre == pre ]] && extra=(--precompute-ref)
            run dpo "${a[@]}" "${extra[@]}" --steps 12 --valid-data "$SHARED/pref-valid" --eval-every 6 -o "$D/$name-$pre"
            assert_success
        done
        [[ $name != full ]] || assert_output --partial "reference: precomputed log-probabilities"
        run close_losses "$D/$name-step/metrics.jsonl" "$D/$name-pre/metrics.jsonl" 1e-6
        assert_success
        echo "$name: $output" >&3
        # The runs learn something (equal losses of runs that stand still would prove little).
        run python3 -c "
import json, sys
l = [json.loads(x)['loss'] for x in open(sys.argv[1]) if json.loads(x).get('event') == 'step']
assert l[-1] < l[0] - 0.005, l" "$D/$name-pre/metrics.jsonl"
        assert_success
    done
}

@test "step 1's loss is log 2 and its rewards 0: the policy starts as its reference (new adapter, continued adapter, every weight)" {
    for mode in "new|--new-lora" "lora|--lora $SHARED/sft" "full|"; do
        name=${mode%%|*}
        read -ra a <<<"${mode#*|}"
        run dpo "${a[@]}" --steps 1 -o "$D/$name"
        assert_success
        run python3 - "$D/$name/metrics.jsonl" <<'PY'
import json, math, sys
r = next(json.loads(l) for l in open(sys.argv[1]) if json.loads(l).get("event") == "step")
print(f"loss - log 2 = {r['loss'] - math.log(2):.3g}, rewards {r['rewards/chosen']:.3g} {r['rewards/rejected']:.3g}")
assert abs(r["loss"] - math.log(2)) < 1e-7, r["loss"]
assert abs(r["rewards/chosen"]) < 1e-7 and abs(r["rewards/rejected"]) < 1e-7 and r["rewards/accuracies"] == 0, r
PY
        assert_success
        echo "$name: $output" >&3
    done
}

# interrupted SIGNAL RUNDIR ARGS...: starts dpo ARGS -o RUNDIR in the background and sends SIGNAL
# once its first checkpoint is there; the exit status must be $want.
interrupted() {
    local sig=$1 dir=$2 want=$3
    shift 3
    dpo "$@" -o "$dir" >"$dir.log" 2>&1 &
    local pid=$! status=0
    for _ in $(seq 400); do
        [[ -s $dir/checkpoints/latest ]] && break
        sleep 0.05
    done
    kill "-$sig" "$pid"
    wait "$pid" || status=$?
    [[ $status == "$want" ]] || fail "exit $status after SIG$sig (want $want): $(tail -3 "$dir.log")"
    run losses "$dir/metrics.jsonl"
    ((${#lines[@]} < 60)) || fail "the run ended before the signal: nothing to resume"
}

@test "SIGUSR1 (adapter, precomputed reference) or SIGKILL (every weight) mid-run, --resume auto: the losses of an uninterrupted run" {
    args=(--lora "$SHARED/sft" --precompute-ref --steps 60 --save-every 10)
    run dpo "${args[@]}" -o "$D/whole"
    assert_success
    interrupted USR1 "$D/cut" 75 "${args[@]}"
    run dpo "${args[@]}" --resume auto -o "$D/cut"
    assert_success
    assert_output --partial "reference log-probabilities of the train pairs from $D/cut/reference/logps-train.h5"
    assert_equal "$(losses "$D/cut/metrics.jsonl")" "$(losses "$D/whole/metrics.jsonl")"

    args=(--lr 1e-4 --steps 60 --save-every 10)
    run dpo "${args[@]}" -o "$D/whole-full"
    assert_success
    interrupted KILL "$D/cut-full" 137 "${args[@]}"
    run dpo "${args[@]}" --resume auto -o "$D/cut-full"
    assert_success
    assert_output --partial "resumed from"
    assert_equal "$(losses "$D/cut-full/metrics.jsonl")" "$(losses "$D/whole-full/metrics.jsonl")"
}

@test "under TP x PP and DP (mpirun -np 4), the single-process losses and held-out metrics" {
    common=(--micro-batch 2 --steps 10 --valid-data "$SHARED/pref-valid" --eval-every 5)
    k=0
    for spec in "lora|--lora $SHARED/sft --lr 1e-3" "full|--lr 1e-4" "full-pre|--lr 1e-4 --precompute-ref"; do
        name=${spec%%|*}
        read -ra a <<<"${spec#*|}"
        run dpo "${a[@]}" "${common[@]}" -o "$D/$name-one"
        assert_success
        layouts=("--tp 2 --pp 2")
        [[ $name == lora ]] && layouts=("--tp 2 --dp 2" "--pp 2 --dp 2" "--tp 2 --pp 2")
        [[ $name == full-pre ]] && layouts=("--pp 2 --dp 2 --zero 1")
        for layout in "${layouts[@]}"; do
            read -ra l <<<"$layout"
            out=$D/par-$((++k))
            run timeout 300 "$MPIRUN" -np 4 "$BIN/dpo-align" --policy "$SHARED/base" --data "$SHARED/pref" --global-batch 8 \
                --seq-len 64 --threads 1 --log-every 1000 "${a[@]}" "${common[@]}" "${l[@]}" -o "$out"
            assert_success
            same_losses "$out/metrics.jsonl" "$D/$name-one/metrics.jsonl" || fail "$name: $layout"
            run close_losses "$out/metrics.jsonl" "$D/$name-one/metrics.jsonl" 1e-5
            assert_success
            echo "$name, $layout: $output" >&3
        done
    done
}

# refused CODE TEXT ARGS...: dpo ARGS -o $D/x fails with CODE and one line on stderr holding TEXT,
# and writes nothing.
refused() {
    local code=$1 text=$2
    shift 2
    run --separate-stderr dpo "$@" --steps 2 -o "$D/x"
    [[ $status == "$code" ]] || fail "exit $status, not $code: $stderr"
    assert_equal "$(printf '%s\n' "$stderr" | grep -c .)" 1
    [[ $stderr == "dpo-align: "*"$text"* ]] || fail "the message does not say '$text': $stderr"
    [[ ! -e $D/x ]] || fail "a refused run left $D/x: $(ls -A "$D/x")"
}

@test "bad input: one-line errors naming the flag or file, the right exit codes, nothing written" {
    # Preference shards with a side missing: an empty chosen response (exit 1, naming the file and
    # the pair), a dataset gone (exit 1, naming the file and the dataset).
    cp -r "$SHARED/pref" "$D/empty"
    cp -r "$SHARED/pref" "$D/missing"
    "$VENV/bin/python" - "$D" <<'PY'
import glob, sys, h5py, hdf5plugin
d = sys.argv[1]
for f in glob.glob(d + "/empty/*.h5"):
    with h5py.File(f, "r+") as h:
        off = h["chosen_offsets"][...]
        off[3] = off[2]  # pair 2's chosen response: no tokens
        h["chosen_offsets"][...] = off
for f in glob.glob(d + "/missing/*.h5"):
    with h5py.File(f, "r+") as h:
        del h["rejected_data"]
PY
    shard=$(basename "$(ls "$SHARED"/pref/*.h5)")
    refused 1 "$D/empty/$shard: pair 2 has an empty chosen response" --new-lora --data "$D/empty"
    refused 1 "$D/missing/$shard: does not conform to schema 'tokens_preference': missing dataset 'rejected_data'" \
        --new-lora --data "$D/missing"
    # Shards of another kind name the mode that makes the right ones.
    refused 2 "'$SHARED/sft-data' holds no tokens_preference shards" --new-lora --data "$SHARED/sft-data"
    [[ $stderr == *"holds tokens_sft shards"*"tokenize-pack --mode preference"* ]] || fail "$stderr"
    refused 2 "holds no tokens_preference shards" --new-lora --valid-data "$SHARED/tok"
    # Pairs packed with another tokenizer than the policy's.
    "$BIN/tokenize-pack" --tokenizer "$SHARED/tok-other/tokenizer.json" --mode preference --seq-len 64 --progress off \
        "$SHARED/pref.jsonl" -o "$D/pref-other" 2>/dev/null
    refused 2 "tokenize the data with the model's tokenizer" --new-lora --data "$D/pref-other"
    refused 2 "validation pairs come from another tokenizer" --new-lora --valid-data "$D/pref-other"
    # The objective's settings.
    refused 2 "--beta must be positive" --new-lora --beta 0
    refused 2 "--beta must be positive" --new-lora --beta -0.1
    refused 2 "--label-smoothing goes with --loss sigmoid only" --new-lora --loss ipo --label-smoothing 0.1
    refused 2 "--label-smoothing must be in [0, 0.5)" --new-lora --label-smoothing 0.5
    refused 2 "--sft-weight must be >= 0" --new-lora --sft-weight -1
    # The adapter flags.
    refused 2 "give --lora ADAPTER (continue an adapter) or --new-lora, not both" --new-lora --lora "$SHARED/sft"
    refused 2 "--rank sets up a new adapter: it goes with --new-lora" --lora "$SHARED/sft" --rank 4
    refused 2 "--lora: '$D/nowhere' is neither an adapter file" --lora "$D/nowhere"
    # An adapter of another base (same shape, other weights), by fingerprint.
    "$BIN/pretrain" --data "$SHARED/tok" --model tiny --micro-batch 8 --seq-len 64 --threads 1 --steps 2 \
        -o "$D/other-base" 2>/dev/null
    "$BIN/lora-tune" --base "$D/other-base" --data "$SHARED/sft-data" --micro-batch 4 --seq-len 64 --threads 1 \
        --rank 4 --steps 2 -o "$D/other-lora" 2>/dev/null
    refused 2 "the adapter was trained on another base" --lora "$D/other-lora"
}

@test "the output converts: the DPO adapter to PEFT (peft's logits are lm-generate --lora's), the full model to HF" {
    need_hf_venv
    run dpo --lora "$SHARED/sft" --sft-weight 1 --steps 10 -o "$D/dpo"
    assert_success
    run "$BIN/ckpt-convert" --progress off --from "$SHARED/base" --to hf -o "$D/base-hf"
    assert_success
    run "$BIN/ckpt-convert" --progress off --from "$SHARED/base" --lora "$D/dpo" --to peft --peft-base "$D/base-hf" \
        -o "$D/peft"
    assert_success
    assert_file_exists "$D/peft/adapter_config.json"
    assert_file_exists "$D/peft/adapter_model.safetensors"
    run "$BIN/lm-generate" --progress off --ckpt "$SHARED/base" --lora "$D/dpo" --prompt "the loss goes:" \
        --max-new-tokens 0 --dump-logits "$D/logits.json"
    assert_success
    # rank 16, alpha 32 (lora-tune's defaults, kept by the adapter DPO continued): scaling 2
    run "$HF_VENV/bin/python" "$REPO_ROOT/tests/python/check_peft.py" logits "$D/base-hf" "$D/peft" "$D/logits.json" \
        --tol 1e-4 --scaling 2
    assert_success
    echo "$output" >&3
    # Every weight trained: pretrain's checkpoints, which export to HF as they are.
    run dpo --lr 1e-4 --steps 2 -o "$D/full"
    assert_success
    [[ -f $D/full/checkpoints/step-00000002/model.h5 ]] || fail "no model checkpoint"
    run "$BIN/ckpt-convert" --progress off --from "$D/full" --to hf -o "$D/full-hf"
    assert_success
    assert_file_exists "$D/full-hf/model.safetensors"
}
