#!/bin/bash
# The last part of `make demo`: the whole life cycle again, as SLURM jobs, through
# sbatch/pipeline.sh on a local test cluster (tests/slurm/start-cluster.sh) — curate, tokenize,
# pretrain, lora, dpo and the HF/GGUF exports chained by dependencies — then what a user looks
# at: the curation report, the loss curves, a sample from the tuned and aligned model, the
# exported files. Without SLURM (or root) here it says so: the stages ran locally before.
#
#   tests/demo-pipeline.sh OUT SFT_JSONL PREF_JSONL TOKENIZER      (called by tests/demo.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -eq 4 ]] || { echo "usage: demo-pipeline.sh OUT SFT_JSONL PREF_JSONL TOKENIZER" >&2; exit 2; }
out=$1 sft=$2 pref=$3 tokenizer=$4
BIN=$PWD/${BUILD:-build}/bin
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The pipeline as SLURM jobs: sbatch/pipeline.sh on a local test cluster"
missing=()
for b in slurmctld slurmd sbatch squeue munged; do command -v "$b" >/dev/null || missing+=("$b"); done
if [[ $(id -u) -ne 0 || ${#missing[@]} -gt 0 ]]; then
    echo "SLURM cannot be started here (${missing[*]:+missing: ${missing[*]}; }needs root): the same stages ran locally above."
    echo "On a cluster: sbatch/pipeline.sh CONFIG (README: Running on a cluster)."
    exit 0
fi
state=$(mktemp -d /tmp/bellows-demo-slurm.XXXXXX)
trap 'tests/slurm/stop-cluster.sh "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
tests/slurm/start-cluster.sh "$state"
# shellcheck source=/dev/null
. "$state/env.sh"

dir=$out/pipeline
mkdir -p "$dir/corpus"
# A small corpus of its own: 300 copyright files (the pipeline curates it again).
mapfile -t files < <(find /usr/share/doc -name copyright -type f 2>/dev/null | sort)
for ((i = 0; i < ${#files[@]} && i < 300; i++)); do
    cp "${files[$i]}" "$dir/corpus/$(printf '%04d' "$i").txt"
done
cp "$sft" "$dir/sft.jsonl"
cp "$pref" "$dir/pref.jsonl"
# The tokenizer with its tokenizer_config.json (special tokens: EOS), as tokenize-pack wrote them.
cp "$tokenizer" "$dir/tokenizer.json"
[[ -f $(dirname "$tokenizer")/tokenizer_config.json ]] && cp "$(dirname "$tokenizer")/tokenizer_config.json" "$dir/"
cat >"$dir/bellows.conf" <<CONF
# The demo pipeline (paths relative to this file). On a real cluster: a bigger model, more
# steps, nodes/tasks_per_node/gpus_per_node, partition and account.
workdir = work
corpus = corpus/
sft_data = sft.jsonl
pref_data = pref.jsonl
tokenizer = tokenizer.json
model = tiny
seq_len = 128
pretrain_steps = 600
lora_steps = 300
dpo_steps = 40
curate_array = 2
name = demo
bin = $BIN
cpus_per_task = 2
time = 00:20:00
curate_args = --input-format=text --disable=quality --on-bad-record=skip
pretrain_args = --micro-batch 8 --lr 3e-3 --log-every 50
lora_args = --micro-batch 8 --rank 8 --lr 3e-3 --log-every 20
dpo_args = --micro-batch 4 --lr 1e-3 --sft-weight 1 --log-every 10
export_gguf_args = --dtype q8_0
CONF
echo "--- $dir/bellows.conf"
cat "$dir/bellows.conf"
echo "--- sbatch/pipeline.sh $dir/bellows.conf"
log=$dir/pipeline.out
sbatch/pipeline.sh "$dir/bellows.conf" | tee "$log"
mapfile -t jobs < <(sed -n 's/^[a-z_]* *submitted: job \([0-9]*\).*/\1/p' "$log")
((${#jobs[@]} > 0)) || { echo "pipeline.sh submitted nothing" >&2; exit 1; }

echo "--- waiting for ${#jobs[@]} jobs (squeue every 5 s)"
deadline=$((SECONDS + 1800)) shown=
while :; do
    left=$(squeue -h -j "$(IFS=,; echo "${jobs[*]}")" -o '%i %j %T %r' 2>/dev/null || true)
    [[ -z $left ]] && break
    if grep -q DependencyNeverSatisfied <<<"$left"; then
        echo "a stage failed (jobs waiting on it can never run): see $dir/work/logs/" >&2
        echo "$left" >&2
        scancel "${jobs[@]}" 2>/dev/null || true
        exit 1
    fi
    ((SECONDS < deadline)) || { echo "jobs still running after 30 min:" >&2; echo "$left" >&2; exit 1; }
    now=$(awk '{ printf "%s %s %s; ", $1, $2, $3 }' <<<"$left")
    [[ $now == "$shown" ]] || printf '%s | %s\n' "$(date +%T)" "$now"
    shown=$now
    sleep 5
done
bad=0
for j in "${jobs[@]}"; do
    # One line per job, or per task of an array.
    while read -r line; do
        id=$(sed -n 's/^JobId=\([0-9]*\).*/\1/p' <<<"$line")
        task=$(sed -n 's/.* ArrayTaskId=\([0-9]*\) .*/_\1/p' <<<"$line")
        name=$(sed -n 's/.* JobName=\([^ ]*\) .*/\1/p' <<<"$line")
        state_=$(sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p' <<<"$line")
        printf '  job %-6s %-20s %s\n' "${id}${task}" "$name" "$state_"
        [[ $state_ == COMPLETED ]] || bad=1
    done < <(scontrol show job -o "$j" 2>/dev/null)
done
((bad == 0)) || { echo "a pipeline job did not complete: see $dir/work/logs/" >&2; exit 1; }
w=$dir/work

step "Pipeline results: the curation report"
/usr/bin/python3 - "$w/curated/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d = r["documents"]
print(f"documents: {d['in']} in, {d['out']} kept ({d['bytes_in'] / 1e6:.1f} MB -> {d['bytes_out'] / 1e6:.1f} MB)")
for name, st in r["stages"].items():
    if st["docs_in"] == 0:
        continue  # a stage the merge job does not run (the array tasks did)
    removed = ", ".join(f"{k} {v}" for k, v in sorted(st.get("removed", {}).items())) or "none removed"
    print(f"  {name:8s} {st['docs_in']:6d} -> {st['docs_out']:6d}  ({removed})")
PY

step "Pipeline results: the loss curves of pretrain, lora and dpo (PNG)"
for run in pretrain lora dpo; do
    /usr/bin/python3 tools/plot_metrics.py "$w/$run/metrics.jsonl" -o "$w/$run/metrics.png"
done
ls -la "$w"/pretrain/metrics.png "$w"/lora/metrics.png "$w"/dpo/metrics.png

step "Pipeline results: the tuned (lora) and aligned (dpo) model answer prompts of the preference set (greedy)"
# The pipeline's model is the 2-layer tiny preset trained for a minute: look at the form of the
# answer (the rejected ' -- reviewed and approved ...' after SFT, the chosen shorter
# ' -- approved ...' after DPO), not at its spelling.
/usr/bin/python3 -c '
import json, sys
for line in list(open(sys.argv[1]))[:3]:
    print(json.loads(line)["prompt"])' "$dir/pref.jsonl" >"$dir/probe.txt"
while IFS= read -r prompt; do
    echo "prompt: $prompt"
    echo "lora:   $("$BIN/lm-generate" --ckpt "$w/pretrain" --lora "$w/lora" --prompt "$prompt" --max-new-tokens 10 --temperature 0 2>/dev/null)"
    echo "+ dpo:  $("$BIN/lm-generate" --ckpt "$w/pretrain" --lora "$w/dpo" --prompt "$prompt" --max-new-tokens 10 --temperature 0 2>/dev/null)"
done <"$dir/probe.txt"

step "Pipeline results: the exports (HF safetensors with the adapter merged, GGUF q8_0)"
ls -la "$w/export/hf" "$w/export/model.gguf"
echo "job logs: $w/logs/"
