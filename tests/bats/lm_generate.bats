#!/usr/bin/env bats
# lm-generate on a model pretrained here for a few seconds: sampling (the prompt comes back,
# the same seed gives the same text), --dump-logits, --eval (a trained model scores better than
# an untrained one) and its errors.

setup_file() {
    load helpers
    export SHARED=$BATS_FILE_TMPDIR
    make_pretrain_shards "$SHARED" 7
    for steps in 30 1; do
        "$BIN/pretrain" --data "$SHARED/tok" --model tiny --seq-len 64 --micro-batch 4 --steps $steps \
            --lr 3e-3 --warmup-steps 2 --progress off -o "$SHARED/run$steps" 2>/dev/null
    done
}

setup() {
    load helpers
    D=$BATS_TEST_TMPDIR
    RUN=$SHARED/run30
}

gen() { "$BIN/lm-generate" --progress off "$@"; }

@test "generation from the run directory prints the prompt and its continuation; the same seed gives the same text" {
    run --separate-stderr gen --ckpt "$RUN" --prompt "the cluster" --max-new-tokens 24 --seed 3
    assert_success
    [[ $output == "the cluster"* ]] || fail "output does not start with the prompt: $output"
    (( ${#output} > 11 )) || fail "no continuation: $output"
    [[ $stderr == *"generated "*"stopped at"* ]] || fail "no summary on stderr: $stderr"
    first=$output
    run --separate-stderr gen --ckpt "$RUN" --prompt "the cluster" --max-new-tokens 24 --seed 3
    assert_success
    assert_equal "$output" "$first"
    # Greedy decoding is the same whichever way the checkpoint is named.
    run --separate-stderr gen --ckpt "$RUN" --prompt "the cluster" --max-new-tokens 12 --temperature 0
    assert_success
    greedy=$output
    step=$(cat "$RUN/checkpoints/latest")
    for c in "$RUN/checkpoints/$step" "$RUN/checkpoints/$step/model.h5"; do
        run --separate-stderr gen --ckpt "$c" --prompt "the cluster" --max-new-tokens 12 --temperature 0 --seed 9
        assert_success
        assert_equal "$output" "$greedy"
    done
    # The reference backend agrees with the fast one on the greedy path.
    run --separate-stderr gen --ckpt "$RUN" --prompt "the cluster" --max-new-tokens 12 --temperature 0 --backend ref
    assert_success
    assert_equal "$output" "$greedy"
    # After 30 steps the greedy continuation is made of the corpus's letters and spaces (the
    # 300-token vocabulary is mostly single bytes), where an untrained model's is byte noise.
    run --separate-stderr gen --ckpt "$SHARED/run1" --prompt "the cluster" --max-new-tokens 12 --temperature 0
    assert_success
    python3 - "$greedy" "$output" <<'PY'
import string, sys
def share(text):
    cont = text[len("the cluster"):]
    return sum(c in string.ascii_lowercase + " " for c in cont) / max(1, len(cont))
trained, untrained = share(sys.argv[1]), share(sys.argv[2])
assert trained >= 0.9 and trained > untrained, (trained, untrained, sys.argv[1:])
PY
}

@test "--ids with --print-ids: ids in, ids out; the first greedy token is the argmax of the dumped logits" {
    mkdir "$D/dump"
    run --separate-stderr gen --ckpt "$RUN" --ids 5,17,42,8 --dump-logits "$D/dump/l.json"
    assert_success
    assert_output ""
    vocab=$(python3 -c "import json; print(json.load(open('$RUN/config.json'))['vocab_size'])")
    run python3 - "$D/dump/l.json" "$vocab" <<'PY'
import json, math, sys
j = json.load(open(sys.argv[1]))
V = int(sys.argv[2])
assert j["ids"] == [5, 17, 42, 8], j["ids"]
assert len(j["logits"]) == 4, len(j["logits"])
assert all(len(r) == V and all(math.isfinite(x) for x in r) for r in j["logits"])
last = j["logits"][-1]
print(max(range(V), key=lambda i: (last[i], -i)))
PY
    assert_success
    top=$output
    run --separate-stderr gen --ckpt "$RUN" --ids 5,17,42,8 --max-new-tokens 1 --temperature 0 --print-ids
    assert_success
    assert_equal "$output" "5,17,42,8,$top"
    # The dump is not replaced without --overwrite; with it, it is, and no temporary is left.
    run --separate-stderr gen --ckpt "$RUN" --ids 1,2 --dump-logits "$D/dump/l.json"
    assert_failure 2
    [[ $stderr == *"--overwrite"* ]] || fail "unexpected message: $stderr"
    run --separate-stderr gen --ckpt "$RUN" --ids 1,2 --dump-logits "$D/dump/l.json" --overwrite
    assert_success
    assert_equal "$(python3 -c "import json; print(len(json.load(open('$D/dump/l.json'))['logits']))")" 2
    assert_equal "$(ls -A "$D/dump")" "l.json"
}

@test "--eval: the trained model's loss is below the untrained one's; perplexity = exp(loss)" {
    run --separate-stderr gen --ckpt "$RUN" --eval "$SHARED/tok"
    assert_success
    assert_output --regexp '^loss [0-9.]+ perplexity [0-9.]+ tokens [0-9]+ unigram_entropy [0-9.]+$'
    trained=$output
    [[ $stderr == *"valid split"* ]] || fail "not the validation split: $stderr"
    run --separate-stderr gen --ckpt "$SHARED/run1" --eval "$SHARED/tok"
    assert_success
    untrained=$output
    python3 - "$trained" "$untrained" <<'PY'
import math, sys
def parse(s):
    f = s.split()
    return float(f[1]), float(f[3]), int(f[5])
(lt, pt, nt), (lu, pu, nu) = parse(sys.argv[1]), parse(sys.argv[2])
assert lt < lu - 0.3, (lt, lu)
assert abs(pt - math.exp(lt)) <= 1e-5 * pt + 1e-6, (pt, lt)
assert abs(pu - math.exp(lu)) <= 1e-5 * pu + 1e-6, (pu, lu)
assert nt == nu and nt > 0 and nt % 64 == 0, (nt, nu)
PY
    # The unigram entropy printed is that of the evaluated targets, counted here with h5py.
    need_venv
    "$VENV/bin/python" - "$trained" "$SHARED/tok" <<'PY'
import glob, math, sys
import hdf5plugin, h5py, numpy as np
f = sys.argv[1].split()
n, h = int(f[5]), float(f[7])
t = np.concatenate([h5py.File(p)["tokens"][:] for p in sorted(glob.glob(sys.argv[2] + "/valid-*.h5"))])
T = n // t.shape[0]
c = np.bincount(t[:, 1:T + 1].ravel())
p = c[c > 0] / c.sum()
want = float(-(p * np.log(p)).sum())
assert abs(h - want) < 1e-5, (h, want)
PY
    # A partial last batch and a cap on the samples.
    run --separate-stderr gen --ckpt "$RUN" --eval "$SHARED/tok" --eval-samples 5 --eval-batch 2
    assert_success
    assert_output --regexp ' tokens 320 unigram_entropy [0-9.]+$'
    # Shards without a validation split are scored on their train split.
    mkdir "$D/trainonly" && cp "$SHARED"/tok/train-*.h5 "$D/trainonly/"
    run --separate-stderr gen --ckpt "$RUN" --eval "$D/trainonly" --eval-samples 4
    assert_success
    [[ $stderr == *"train split"* ]] || fail "not the train split: $stderr"
}

@test "errors: one line, exit 2 for usage, 1 for a corrupt checkpoint" {
    one_line() {
        assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
        [[ $stderr == "lm-generate: "*"$1"* ]] || fail "unexpected message: $stderr"
    }
    run --separate-stderr gen --prompt hi
    assert_equal "$status" 2
    one_line "--ckpt"
    run --separate-stderr gen --ckpt "$D/nowhere" --prompt hi
    assert_equal "$status" 2
    one_line "--ckpt: '$D/nowhere'"
    run --separate-stderr gen --ckpt "$RUN" --ids 1,300,2
    assert_equal "$status" 2
    one_line "--ids: id 300 is outside the model's vocabulary (0..299)"
    run --separate-stderr gen --ckpt "$RUN" --ids 1,x
    assert_equal "$status" 2
    one_line "--ids: 'x' is not a token id"
    run --separate-stderr gen --ckpt "$RUN" --ids "$(seq -s, 1 1025 | sed 's/[0-9]*/7/g')"
    assert_equal "$status" 2
    one_line "1025 tokens are longer than the model's max_position_embeddings (1024)"
    run --separate-stderr gen --ckpt "$RUN" --prompt hi --temperature -1
    assert_equal "$status" 2
    one_line "--temperature"
    run --separate-stderr gen --ckpt "$RUN" --prompt hi --top-p 0
    assert_equal "$status" 2
    one_line "--top-p"
    run --separate-stderr gen --ckpt "$RUN"
    assert_equal "$status" 2
    one_line "nothing to do"
    # Another tokenizer, given or met in shards, is refused naming both.
    run --separate-stderr gen --ckpt "$RUN" --prompt hi --tokenizer "$SHARED/tok-other/tokenizer.json"
    assert_equal "$status" 2
    one_line "--tokenizer $SHARED/tok-other/tokenizer.json (sha256 "
    [[ $stderr == *"is not the tokenizer $RUN"*"was trained with"* ]] || fail "unexpected message: $stderr"
    run --separate-stderr gen --ckpt "$RUN" --eval "$SHARED/tok-other"
    assert_equal "$status" 2
    one_line "--eval $SHARED/tok-other: the shards were made with tokenizer"
    run --separate-stderr gen --ckpt "$RUN" --eval "$D/none"
    assert_equal "$status" 2
    one_line "--eval: '$D/none' does not exist"
    # A run directory without its tokenizer copy: --prompt asks for --tokenizer; --ids still works.
    cp -r "$RUN" "$D/notok" && rm -r "$D/notok/tokenizer"
    run --separate-stderr gen --ckpt "$D/notok" --prompt hi
    assert_equal "$status" 2
    one_line "--prompt needs the model's tokenizer"
    run --separate-stderr gen --ckpt "$D/notok" --ids 1,2 --max-new-tokens 3 --temperature 0
    assert_success
    [[ $output =~ ^1,2(,[0-9]+){3}$ ]] || fail "unexpected output: $output"
    run --separate-stderr gen --ckpt "$D/notok" --prompt "the cluster" --tokenizer "$SHARED/tok/tokenizer.json" --max-new-tokens 2
    assert_success
    [[ $output == "the cluster"* ]] || fail "unexpected output: $output"
    # A damaged checkpoint file: a data error naming the file.
    step=$(cat "$RUN/checkpoints/latest")
    cp -r "$RUN" "$D/bad"
    truncate -s 2000 "$D/bad/checkpoints/$step/model.h5"
    run --separate-stderr gen --ckpt "$D/bad" --prompt hi
    assert_equal "$status" 1
    one_line "$D/bad/checkpoints/$step/model.h5"
}
