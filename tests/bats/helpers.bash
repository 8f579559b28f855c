# Shared set-up for the Bats suite. The Makefile (tests/run-all.sh) exports BUILD and VENV.
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
# BUILD may be relative to the repository (the default, build) or absolute.
BUILD_DIR=${BUILD:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$REPO_ROOT/$BUILD_DIR
BIN=$BUILD_DIR/bin
TESTBIN=$BUILD_DIR/tests
MPIRUN=$REPO_ROOT/tests/mpirun.sh

# Every tool in build/bin, so each new tool is covered by the generic CLI tests at once.
all_tools() {
    local t
    for t in "$BIN"/*; do [[ -x $t ]] && basename "$t"; done
}

need_venv() {
    [[ -n ${VENV:-} && -x $VENV/bin/python ]] || fail "VENV is not set to a built virtualenv (make venv)"
}

# make_pretrain_shards DIR SEED: a small generated corpus packed for pretraining with a trained
# 300-token tokenizer (DIR/tok, 10% validation, seq-len 64), and a second one made with another
# tokenizer (DIR/tok-other), for the pretrain and lm-generate suites.
make_pretrain_shards() {
    local dir=$1 seed=$2
    python3 - "$dir" "$seed" <<'PY'
import json, random, sys
d = sys.argv[1]
random.seed(int(sys.argv[2]))
words = ("the cluster trains a model on shards while the scheduler waits and the loss goes down "
         "tokens flow from curated documents into packed samples every step").split()
with open(f"{d}/corpus.jsonl", "w") as f:
    for i in range(300):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(random.randint(20, 200)))}) + "\n")
with open(f"{d}/other.jsonl", "w") as f:
    for i in range(50):
        f.write(json.dumps({"text": "different words for a different tokenizer " * 20}) + "\n")
PY
    "$BIN/tokenize-pack" --train-vocab-size 300 --mode pretrain --seq-len 64 --valid-fraction 0.1 --progress off \
        "$dir/corpus.jsonl" -o "$dir/tok" 2>/dev/null
    "$BIN/tokenize-pack" --train-vocab-size 300 --mode pretrain --seq-len 64 --progress off \
        "$dir/other.jsonl" -o "$dir/tok-other" 2>/dev/null
}

# The venv of the runtimes that consume ckpt-convert's output (transformers, llama.cpp, gguf).
need_hf_venv() {
    [[ -n ${HF_VENV:-} && -x $HF_VENV/bin/python ]] || fail "HF_VENV is not set to a built virtualenv (make hf-venv)"
}

# run_memory_capped BYTES CMD...: runs CMD in a memory cgroup of its own capped at BYTES
# (cgroup v1 memory controller or cgroup v2 memory.max), so that going over the cap kills it
# (exit 137) instead of passing; prints nothing of its own. Fails the test when no memory
# cgroup can be made (the cap is the point of the tests that use it).
run_memory_capped() {
    local cap=$1; shift
    local cg
    if [[ -d /sys/fs/cgroup/memory && -w /sys/fs/cgroup/memory ]]; then
        cg=/sys/fs/cgroup/memory/bellows-test-$$-$RANDOM
        mkdir "$cg" && echo "$cap" > "$cg/memory.limit_in_bytes" || fail "cannot make a memory cgroup at $cg"
    elif [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
        cg=/sys/fs/cgroup/bellows-test-$$-$RANDOM
        mkdir "$cg" && echo "$cap" > "$cg/memory.max" || fail "cannot make a memory cgroup at $cg"
    else
        fail "no writable memory cgroup controller: the memory-cap test needs one"
    fi
    local rc=0
    bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' capped "$cg" "$@" || rc=$?
    rmdir "$cg" 2>/dev/null || true
    return $rc
}

# How many file kinds schemas/ describes (write-sample-shards writes one file of each).
n_kinds() {
    local n=0 f
    for f in "$REPO_ROOT"/schemas/*.json; do
        [[ $(basename "$f") == common.json ]] || n=$((n + 1))
    done
    echo "$n"
}

# The loss of every step, one per line, from a run's metrics (the last record of each step:
# a resumed run re-logs the steps after its checkpoint).
losses() {
    python3 - "$1" <<'PY'
import json, sys
last = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "step":
        last[r["step"]] = r["loss"]
for s in sorted(last):
    print(s, repr(last[s]))
PY
}

# same_losses A B: the per-step losses of two runs' metrics.jsonl agree within 1e-5 relative (the
# last record of each step counts: a resumed run repeats the steps after its checkpoint); for runs
# on several ranks, whose sums round differently from one process's.
same_losses() {
    python3 - "$1" "$2" <<'PY'
import json, sys
def losses(p):
    last = {}
    for line in open(p):
        r = json.loads(line)
        if r.get("event") == "step":
            last[r["step"]] = r["loss"]
    return [last[s] for s in sorted(last)]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert len(a) == len(b) and a, f"{len(a)} vs {len(b)} steps"
worst = max(abs(x - y) / abs(y) for x, y in zip(a, b))
assert worst < 1e-5, f"largest relative difference {worst:.3g}: {a} vs {b}"
PY
}
