#!/usr/bin/env bats
# Two SLURM nodes on one machine (tests/slurm/start-cluster.sh --nodes 2: each slurmd in its own
# network and UTS namespace, node1 and node2 at their own addresses), so an allocation really
# spans two hosts for SLURM, MPI and our placement. pretrain.sbatch on 2 nodes x 2 tasks with
# --tp 2 --pp 2 puts each tensor-parallel group on one node and the two pipeline stages on
# different nodes (the grid rank 0 prints), through srun+PMIx and through mpirun, with the losses
# of a local single-process run (within 1e-5 relative); a layout whose tensor-parallel group
# spans the nodes is refused with the explanation and exit 2, or runs when allowed.
#
#   tests/slurm/start-cluster.sh --nodes 2 /tmp/bellows-slurm2
#   BELLOWS_SLURM_STATE=/tmp/bellows-slurm2 BELLOWS_BIN=$PWD/build/bin bats tests/slurm/multinode
#   tests/slurm/stop-cluster.sh /tmp/bellows-slurm2

bats_require_minimum_version 1.5.0

setup_file() {
    [[ -x ${BELLOWS_BIN:-}/tokenize-pack ]] || return 0
    cd "$BATS_FILE_TMPDIR" || return 1
    python3 - <<'PY' || return 1
import json, random
random.seed(5)
words = ("the cluster trains a model on shards while the scheduler waits and the loss goes down "
         "tokens flow from curated documents into packed samples every step").split()
with open("corpus.jsonl", "w") as f:
    for i in range(300):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(random.randint(20, 200)))}) + "\n")
PY
    "$BELLOWS_BIN/tokenize-pack" --train-vocab-size 300 --mode pretrain --seq-len 64 --valid-fraction 0.1 \
        --progress off corpus.jsonl -o tok 2>tok.log
}

setup() {
    load ../helpers
    load ../train-helpers
    TRAIN_TOOL=pretrain
    OUT_PREFIX=pretrain
    slurm_setup pretrain
    REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../../.." && pwd)  # one level deeper than slurm_setup assumes
    [[ ${BELLOWS_SLURM_NODES:-} == "node1 node2" ]] ||
        fail "the cluster in $BELLOWS_SLURM_STATE is not the two-node one (nodes: '${BELLOWS_SLURM_NODES:-}'; start it with --nodes 2)"
    [[ -f $BATS_FILE_TMPDIR/tok/train-r00000-00000.h5 ]] ||
        fail "setup_file made no token shards: $(cat "$BATS_FILE_TMPDIR/tok.log" 2>&1)"
    PY=/usr/bin/python3
    ln -s "$BATS_FILE_TMPDIR/tok" tok
    SCRIPT=$REPO_ROOT/sbatch/pretrain.sbatch
    MODEL=(--data tok --model tiny --seq-len 64 --micro-batch 4 --global-batch 16 --steps 12)
    MPI_ENV=OMPI_MCA_mpi_yield_when_idle=1
}

teardown() {
    slurm_teardown
}

# two_node_job LAUNCHER ARGS... — pretrain.sbatch on 2 nodes x 2 tasks through LAUNCHER.
two_node_job() {
    local launcher=$1
    shift
    submit_and_wait_out --nodes=2 --ntasks-per-node=2 --cpus-per-task=1 --time=00:10:00 \
        --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,BELLOWS_LAUNCHER=$launcher,$MPI_ENV" "$SCRIPT" "$@" -o run
}

# The placement rank 0 logs: tensor-parallel pairs within a node, pipeline stages across nodes.
check_two_node_grid() {
    run cat "$OUTFILE"
    assert_line --partial ", 4 tasks on 2 nodes, 1 cpus per task, "
    assert_line --regexp ' info: grid: 4 ranks = tp 2 x dp 1 x pp 2 '
    assert_line --regexp ' info:   tp groups: \[0@node1 1@node1\] \[2@node2 3@node2\]$'
    assert_line --regexp ' info:   pp groups: \[0@node1 2@node2\] \[1@node1 3@node2\]$'
}

@test "2 nodes x 2 tasks, --tp 2 --pp 2 through srun+PMIx: TP within a node, stages across nodes, the local losses" {
    two_node_job srun "${MODEL[@]}" --tp 2 --pp 2
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    assert_equal "$(job_field NodeList)" "node[1-2]"
    check_two_node_grid
    assert_line --regexp '^bellows-pretrain: running: srun --mpi=pmix --ntasks=4 '
    local_run local "${MODEL[@]}"
    assert_losses_close "$(losses run/metrics.jsonl)" "$(losses local/metrics.jsonl)" 12
}

@test "2 nodes x 2 tasks through mpirun inside the allocation: the same placement and losses" {
    two_node_job mpirun "${MODEL[@]}" --tp 2 --pp 2
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    check_two_node_grid
    assert_line --regexp '^bellows-pretrain: running: mpirun -np 4 '
    local_run local "${MODEL[@]}"
    assert_losses_close "$(losses run/metrics.jsonl)" "$(losses local/metrics.jsonl)" 12
}

@test "a tensor-parallel group across the nodes is refused with the fix (exit 2), and runs with --allow-cross-node-tp" {
    # One task per node: the only TP 2 group is [0@node1 1@node2].
    submit_and_wait_out --nodes=2 --ntasks-per-node=1 --cpus-per-task=1 --time=00:10:00 \
        --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,$MPI_ENV" "$SCRIPT" "${MODEL[@]}" --tp 2 -o bad
    [[ $JOB_STATE == FAILED && $(job_field ExitCode) == 2:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected FAILED ExitCode=2:0"
    run cat "$OUTFILE"
    assert_output --partial "node1"
    assert_output --partial "node2"
    assert_output --partial "--allow-cross-node-tp"
    [[ ! -d bad/checkpoints ]] || fail "a refused run wrote checkpoints"

    submit_and_wait_out --nodes=2 --ntasks-per-node=1 --cpus-per-task=1 --time=00:10:00 \
        --export="ALL,BELLOWS_BIN=$BELLOWS_BIN,$MPI_ENV" "$SCRIPT" "${MODEL[@]}" --tp 2 --allow-cross-node-tp -o run
    [[ $JOB_STATE == COMPLETED && $(job_field ExitCode) == 0:0 ]] ||
        fail "job $JOBID ended $JOB_STATE ExitCode=$(job_field ExitCode), expected COMPLETED ExitCode=0:0"
    run cat "$OUTFILE"
    assert_line --regexp ' info:   tp groups: \[0@node1 1@node2\]$'
    local_run local "${MODEL[@]}"
    assert_losses_close "$(losses run/metrics.jsonl)" "$(losses local/metrics.jsonl)" 12
}
