#!/usr/bin/env bats
# bats file_tags=slurm
#
# sbatch/tokenize.sbatch on the single-node test cluster of tests/slurm/: tokenize-pack --mode
# pretrain on 2 tasks must produce complete, verified token shards whose concatenated train and
# valid tokens equal those of a local single-process run on the same corpus, and a job with bad
# input must end FAILED with the reason in its output and no output directory.
#
# The cluster must already be running. Same environment as smoke.bats (tests/slurm/helpers.bash):
#   BELLOWS_SLURM_STATE  the STATE_DIR given to tests/slurm/start-cluster.sh
#   BELLOWS_BIN          directory holding the built tokenize-pack and shard-inspect
#   VENV                 the test virtualenv (make venv; h5py, hdf5plugin) for reading the shards;
#                        the Makefile (tests/run-all.sh) exports it
#   BELLOWS_SLURM_JOB_TIMEOUT  seconds one job may take, queued + running (120)
#
#   tests/slurm/start-cluster.sh /tmp/bellows-slurm
#   BELLOWS_SLURM_STATE=/tmp/bellows-slurm BELLOWS_BIN=$PWD/build/bin \
#       VENV=$(make -s --eval 'print-venv: ; @echo $(VENV)' print-venv) bats tests/slurm/tokenize.bats
#   tests/slurm/stop-cluster.sh /tmp/bellows-slurm

bats_require_minimum_version 1.5.0

setup() {
    load helpers # slurm_setup, slurm_teardown, submit_and_wait, job_field
    slurm_setup tokenize-pack
    [[ -x $BELLOWS_BIN/shard-inspect ]] || fail "no executable $BELLOWS_BIN/shard-inspect"
    PY=/usr/bin/python3
    [[ -x $PY ]] || PY=$(command -v python3) || fail "python3 not found"
    # A corpus of 4 JSONL files (240 documents, multilingual words and emoji) and a small
    # byte-level BPE tokenizer learned from the same text, as tests/bats/tokenize.bats makes them.
    "$PY" - <<'PY' || fail "corpus generation failed"
import json, os, random
random.seed(3)
words = "the model reads shards and writes tokens while the cluster waits for data über naïve 数据 🙂 12345".split()
docs = [" ".join(random.choice(words) for _ in range(random.randint(5, 120))) for _ in range(240)]
open("train.txt", "w").write("\n".join(docs))
os.mkdir("parts")
for k in range(4):
    with open(f"parts/part-{k}.jsonl", "w") as f:
        for i in range(k, len(docs), 4):
            f.write(json.dumps({"id": f"d{i}", "text": docs[i]}) + "\n")
PY
    "$PY" "$REPO_ROOT/tests/helpers/make_bpe_tokenizer.py" train.txt tok 200 >/dev/null ||
        fail "make_bpe_tokenizer.py failed"
    # The packing options of every run here.
    PACK=(--seq-len 64 --valid-fraction 0.1 --seed 5)
}

teardown() {
    slurm_teardown
}

need_venv() {
    [[ -n ${VENV:-} && -x $VENV/bin/python ]] || fail "VENV is not set to a built virtualenv (make venv)"
}

# report OUTDIR KEY — a top-level part of OUTDIR/report.json as compact JSON.
report() {
    "$PY" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]], sort_keys=True))' \
        "$1/report.json" "$2"
}

# local_run — tokenize-pack as one process here into ./local; sets SUMMARY to its summary line
# without the trailing time (", 0.0 s").
local_run() {
    run --separate-stderr "$BELLOWS_BIN/tokenize-pack" --tokenizer tok/tokenizer.json --mode pretrain parts \
        -o local "${PACK[@]}" --progress off
    assert_success
    assert_equal "$(report local ranks)" 1
    SUMMARY=$(grep '^tokenize-pack: 240 documents, ' <<<"$stderr" | sed 's/, [0-9.]* s$//')
    [[ -n $SUMMARY ]] || fail "no summary line from the local run: $stderr"
}

# same_tokens A B — the concatenated train and valid token arrays of output directories A and B
# are equal (shards in name order), as are the tokenizer fingerprints and sequence lengths.
same_tokens() {
    need_venv
    run "$VENV/bin/python" - "$1" "$2" <<'PY'
import glob, sys
import hdf5plugin, h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
def cat(d, split):
    files = sorted(glob.glob(f"{d}/{split}-*.h5"))
    assert files, f"no {split} shards in {d}"
    arrays, attrs = [], set()
    for f in files:
        with h5py.File(f) as h:
            arrays.append(h["tokens"][...])
            attrs.add((h.attrs["tokenizer_sha256"], int(h.attrs["seq_len"])))
    assert len(attrs) == 1, (d, split, attrs)
    return np.concatenate(arrays), attrs.pop()
rows = {}
for split in ("train", "valid"):
    (x, ax), (y, ay) = cat(a, split), cat(b, split)
    assert ax == ay, (split, ax, ay)
    assert x.shape == y.shape, (split, x.shape, y.shape)
    assert (x == y).all(), f"{split}: tokens differ"
    rows[split] = x.shape[0]
print("identical", rows["train"], rows["valid"])
PY
    assert_success
    assert_output --regexp '^identical [1-9][0-9]* [1-9][0-9]*$'
}

@test "tokenize.sbatch on 2 tasks: COMPLETED, verified shards, the same tokens as a local run" {
    submit_and_wait --ntasks=2 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        --output="$BATS_TEST_TMPDIR/tokenize-%j.out" \
        "$REPO_ROOT/sbatch/tokenize.sbatch" --tokenizer tok/tokenizer.json --mode pretrain parts -o out "${PACK[@]}"
    OUTFILE=$BATS_TEST_TMPDIR/tokenize-$JOBID.out
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    local_run

    # The job output: the script's lines, tokenize-pack's progress and summary.
    run cat "$OUTFILE"
    assert_line --partial "bellows-tokenize: job $JOBID on "
    assert_line --partial ", 2 tasks, in $BATS_TEST_TMPDIR, "
    assert_line --regexp '^bellows-tokenize: running: (srun --mpi=pmix --ntasks=2|mpirun -np 2( --allow-run-as-root)?) '
    assert_line --partial " $BELLOWS_BIN/tokenize-pack --tokenizer tok/tokenizer.json --mode pretrain parts -o out ${PACK[*]}"
    assert_line --regexp '^[0-9T:-]+Z progress: tokenize: .* done$'
    assert_line --partial "$SUMMARY" # the same counts as the local run
    run grep -c '^bellows-tokenize: OK: finished in [0-9]*s; report: out/report\.json, token shards: out/\*\.h5$' "$OUTFILE"
    assert_output 1

    # A complete output: a train and a valid shard per rank, verified; the report; nothing partial
    # (no work streams left either).
    run ls -A out
    assert_output "report.json
train-r00000-00000.h5
train-r00001-00000.h5
valid-r00000-00000.h5
valid-r00001-00000.h5"
    [[ -z $(compgen -G ".out.partial.*") ]] || fail "partial output left: $(compgen -G '.out.partial.*')"
    run "$BELLOWS_BIN/shard-inspect" --verify --progress off out/*.h5
    assert_success
    assert_line --partial "4 of 4 files verified"
    assert_equal "$(report out ranks)" 2

    # The same result as one process here: the concatenated shards and the counts.
    same_tokens out local
    local part
    for part in documents tokens samples train_samples valid_samples tail_tokens_dropped tokenizer; do
        assert_equal "$(report out "$part")" "$(report local "$part")"
    done
    assert_equal "$(report out documents)" 240
}

@test "tokenize.sbatch with BELLOWS_LAUNCHER=mpirun: COMPLETED, the same tokens as a local run" {
    submit_and_wait --ntasks=2 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_LAUNCHER=mpirun" \
        --output="$BATS_TEST_TMPDIR/tokenize-%j.out" \
        "$REPO_ROOT/sbatch/tokenize.sbatch" --tokenizer tok/tokenizer.json --mode pretrain parts --output=out "${PACK[@]}"
    OUTFILE=$BATS_TEST_TMPDIR/tokenize-$JOBID.out
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    run grep -c '^bellows-tokenize: running: mpirun -np 2 ' "$OUTFILE"
    assert_output 1
    run grep -c '^bellows-tokenize: OK: finished in [0-9]*s; report: out/report\.json, token shards: out/\*\.h5$' "$OUTFILE"
    assert_output 1
    assert_equal "$(report out ranks)" 2
    run "$BELLOWS_BIN/shard-inspect" --verify --progress off out/*.h5
    assert_success
    assert_line --partial "4 of 4 files verified"
    local_run
    same_tokens out local
}

@test "tokenize.sbatch with a bad record: FAILED with ExitCode=1:0, the reason once in the output, no output directory" {
    # The last file: rank 1's of 2 (a failing rank other than 0); line 3 has no "text".
    sed -i '3s/.*/{"id": "broken", "body": "no text here"}/' parts/part-3.jsonl
    submit_and_wait --ntasks=2 --time=00:05:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        --output="$BATS_TEST_TMPDIR/tokenize-%j.out" \
        "$REPO_ROOT/sbatch/tokenize.sbatch" --tokenizer tok/tokenizer.json --mode pretrain parts -o out "${PACK[@]}"
    OUTFILE=$BATS_TEST_TMPDIR/tokenize-$JOBID.out
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 1:0
    assert_equal "$(grep -c 'parts/part-3.jsonl:3: missing_text' "$OUTFILE")" 1
    run grep -E '^tokenize-pack: rank 1: parts/part-3\.jsonl:3: missing_text' "$OUTFILE"
    assert_success
    run grep -c '^bellows-tokenize: FAILED: tokenize-pack exit status 1 ' "$OUTFILE"
    assert_output 1
    [[ ! -e out ]] || fail "output directory 'out' exists after a failed job"
    [[ -z $(compgen -G ".out.partial.*") ]] || fail "partial output left: $(compgen -G '.out.partial.*')"
}

@test "tokenize.sbatch without arguments: FAILED with ExitCode=2:0 and the usage line" {
    submit_and_wait --ntasks=1 --time=00:01:00 --export="ALL,BELLOWS_BIN=$BELLOWS_BIN" \
        --output="$BATS_TEST_TMPDIR/tokenize-%j.out" "$REPO_ROOT/sbatch/tokenize.sbatch"
    OUTFILE=$BATS_TEST_TMPDIR/tokenize-$JOBID.out
    assert_equal "$JOB_STATE" FAILED
    assert_equal "$(job_field ExitCode)" 2:0
    run cat "$OUTFILE"
    assert_output "bellows-tokenize: error: no arguments; usage: sbatch tokenize.sbatch --tokenizer T --mode pretrain INPUT... -o OUTDIR [tokenize-pack options]"
}
