#!/bin/bash
# bellows pipeline — submit the whole model life cycle as dependent SLURM jobs:
#
#   curate → tokenize (pretrain, SFT, preference) → pretrain → lora → dpo → export (HF, GGUF)
#
#   sbatch/pipeline.sh CONFIG [--dry-run]
#
# Every stage is one sbatch job of the templates beside this script (curate.sbatch, or
# curate-array.sbatch with `curate_array = K`; tokenize.sbatch three times; pretrain.sbatch;
# lora.sbatch; dpo.sbatch; convert.sbatch twice), submitted with `sbatch --parsable` and
# chained with --dependency=afterok on exactly the stages whose outputs it reads:
#
#   stage          reads                               writes (under workdir)
#   curate         corpus                              curated/  (array: curate-parts/part-NNNNN/, then
#   curate_merge   curate-parts/ (only with curate_array)          curate_merge writes curated/)
#   tokenize       curated/                            tokens/ (with tokenizer_vocab: tokens/tokenizer.json)
#   tokenize_sft   sft_data (+ tokens/ when trained)   sft-tokens/
#   tokenize_pref  pref_data (+ tokens/ when trained)  pref-tokens/
#   pretrain       tokens/                             pretrain/           (a run directory)
#   lora           pretrain/, sft-tokens/              lora/               (adapter checkpoints)
#   dpo            pretrain/, lora/, pref-tokens/      dpo/                (lora's adapter, aligned)
#   export_hf      pretrain/, dpo/                     export/hf/          (dpo's adapter merged)
#   export_gguf    pretrain/, dpo/                     export/model.gguf   (dpo's adapter merged)
#
# With `--full` in lora_args, lora trains every weight: dpo then trains a new adapter on lora/
# (--policy lora/ --new-lora) and the exports merge it into lora/.
# It prints one line per stage (submitted as job N / skipped / already queued), then one
# `squeue` line that follows the jobs. Job logs: workdir/logs/STAGE-JOBID.out. Every sbatch
# line it ran is kept in workdir/logs/submitted-DATE.sh.
#
# Resume. Run it again on the same CONFIG at any time: a stage whose outputs are complete —
# report.json written (curate, tokenize), checkpoints/latest at the configured final step
# (pretrain, lora, dpo), the export present — is skipped, and the stages after it do not
# wait on it; a stage still in the queue from an earlier run (found by its job comment,
# bellows-pipeline:WORKDIR:STAGE) is not submitted again, its job id is reused; one that can
# never run (DependencyNeverSatisfied: what it waited for failed) is cancelled and submitted
# again. A training stage that is resubmitted continues from its newest checkpoint
# (--resume auto). A stage whose output exists but that must run again because a stage it
# reads runs again gets --overwrite (curate, tokenize, export); a training run directory in
# that case is refused (exit 2): it was trained on the old input, so move it away yourself.
# To redo a stage, delete its output; the stages after it are redone too.
#
# --dry-run prints the sbatch lines as a shell script (`stage=$(sbatch --parsable ...)`,
# dependencies as $stage) and the skipped stages as comments, and submits nothing.
#
# CONFIG: `key = value` lines; `#` starts a comment (at the start of a line, or after a
# space); values may be quoted ("..." or '...'); relative paths are taken from the directory
# of CONFIG, and the jobs run there too (--chdir), so relative paths in *_args work alike.
# Lists (corpus, *_args, *sbatch_args) are split at spaces (no quoting inside). Keys:
#
#   workdir = DIR             required: every output and log goes under it
#   corpus = PATH...          required: the raw corpus for curate-dedup (files, directories, globs)
#   sft_data = PATH...        required: SFT JSONL ({"prompt","response"} or {"messages"})
#   pref_data = PATH...       required: preference JSONL ({"prompt","chosen","rejected"})
#   tokenizer = FILE          a tokenizer (tokenizer.json, tiktoken file), or instead
#   tokenizer_vocab = N       train a byte-level BPE of N tokens on the curated corpus
#   model = PRESET|FILE       required: pretrain --model (tiny, small, llama3.2-1b, ... or config.json)
#   seq_len = N               tokens per sample of every stage (default 1024), or per stage:
#   pretrain_seq_len = N, lora_seq_len = N, dpo_seq_len = N   (the shards are packed to it too)
#   pretrain_steps = N, lora_steps = N, dpo_steps = N          required: optimizer steps
#   curate_array = K          curate as a job array of K tasks and a merge job (0/1: one job)
#   name = NAME               job names NAME-STAGE (default bellows)
#   bin = DIR                 the bellows tools, passed to the jobs as BELLOWS_BIN (default:
#                             BELLOWS_BIN, else PREFIX/bin beside this script, else PATH)
#   partition = P, account = A        for every job
#   sbatch_args = ...                 more sbatch options for every job (e.g. --qos=high)
#   nodes, tasks_per_node, gpus_per_node, cpus_per_task, time
#                             the training stages' resources (pretrain, lora, dpo); every
#                             other stage: 1 node, 1 task, the template's cpus and time
#   STAGE_nodes, STAGE_tasks_per_node, STAGE_gpus_per_node, STAGE_cpus_per_task, STAGE_time,
#   STAGE_sbatch_args         per stage (STAGE: curate, curate_merge, tokenize, tokenize_sft,
#                             tokenize_pref, pretrain, lora, dpo, export_hf, export_gguf)
#   STAGE_args = ...          more arguments for the stage's tool (curate_args go to the
#                             array tasks and to the merge; curate_merge_args to the merge only),
#                             e.g. pretrain_args = --tp 2 --micro-batch 8 --save-every 500,
#                             export_gguf_args = --dtype q8_0
#
# Example (bellows.conf):
#   workdir = /lustre/me/run1
#   corpus = /lustre/raw/*.jsonl.zst
#   sft_data = /lustre/sft/chat.jsonl
#   pref_data = /lustre/pref/pairs.jsonl
#   tokenizer_vocab = 32000
#   model = small
#   pretrain_steps = 20000
#   lora_steps = 2000
#   dpo_steps = 1000
#   nodes = 2
#   tasks_per_node = 4
#   cpus_per_task = 8
#   pretrain_args = --tp 4 --pp 2 --global-batch 256 --save-every 500
#   pretrain_time = 2-00:00:00
#   partition = gpu
#   account = myproject
#
# Exit status: 0 submitted (or nothing to do); 2 a bad CONFIG or command line (unknown or
# missing key, bad value, missing input, a stale run directory), nothing submitted; 1 sbatch
# failed (the jobs submitted before stay queued: fix the cause and run again, they are reused).
set -euo pipefail

prog=bellows-pipeline
die() {
    echo "$prog: error: $*" >&2
    exit 2
}

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)

# --- command line ----------------------------------------------------------------------------
config=
dry_run=0
for a in "$@"; do
    case $a in
    --dry-run) dry_run=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    -*) die "unknown option '$a' (usage: pipeline.sh CONFIG [--dry-run])" ;;
    *)
        [[ -z $config ]] || die "one CONFIG only (usage: pipeline.sh CONFIG [--dry-run])"
        config=$a
        ;;
    esac
done
[[ -n $config ]] || die "no CONFIG (usage: pipeline.sh CONFIG [--dry-run])"
[[ -f $config && -r $config ]] || die "config '$config' is not a readable file"
config_dir=$(cd "$(dirname "$config")" && pwd)

# --- the config file ---------------------------------------------------------------------------
# Read as data, never run as shell: each line is `key = value`, checked against the known keys.
STAGES_ALL=(curate curate_merge tokenize tokenize_sft tokenize_pref pretrain lora dpo export_hf export_gguf)
TRAINING=" pretrain lora dpo "
RESOURCES=(nodes tasks_per_node gpus_per_node cpus_per_task time)
declare -A known=()
for k in workdir corpus sft_data pref_data tokenizer tokenizer_vocab model seq_len \
    pretrain_seq_len lora_seq_len dpo_seq_len pretrain_steps lora_steps dpo_steps curate_array \
    name bin partition account sbatch_args "${RESOURCES[@]}"; do
    known[$k]=1
done
for s in "${STAGES_ALL[@]}"; do
    for k in "${RESOURCES[@]}" args sbatch_args; do
        known[${s}_$k]=1
    done
done

declare -A cfg=() cfg_line=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%$'\r'}
    line=${line%%[[:space:]]#*} # a comment after a space
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*(.*)$ ]] ||
        die "$config:$lineno: not a 'key = value' line: $line"
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    value=${value%"${value##*[![:space:]]}"} # trailing blanks
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
        value=${BASH_REMATCH[1]}
    fi
    [[ -n ${known[$key]:-} ]] || die "$config:$lineno: unknown key '$key' (see pipeline.sh --help for the keys)"
    [[ -z ${cfg_line[$key]:-} ]] || die "$config:$lineno: key '$key' given twice (first on line ${cfg_line[$key]})"
    cfg[$key]=$value
    cfg_line[$key]=$lineno
done <"$config"

get() { echo "${cfg[$1]:-${2:-}}"; }
require() {
    [[ -n ${cfg[$1]:-} ]] || die "$config: missing key '$1'${2:+ ($2)}"
}
# whole KEY MIN — the key's value if set, checked to be a whole number >= MIN.
check_whole() {
    local v=${cfg[$1]:-}
    [[ -z $v || ($v =~ ^[0-9]+$ && $v -ge $2) ]] ||
        die "$config:${cfg_line[$1]}: $1 = '$v' is not a whole number >= $2"
}
# abspath PATH — PATH made absolute from the config's directory (globs are kept as they are).
abspath() {
    if [[ $1 == /* ]]; then echo "$1"; else echo "$config_dir/$1"; fi
}
# input_paths KEY — the key's paths, absolute; each must exist (a glob must match something).
input_paths() {
    local p list=() words
    read -r -a words <<<"${cfg[$1]}"
    for p in "${words[@]}"; do
        p=$(abspath "$p")
        [[ -e $p ]] || compgen -G "$p" >/dev/null ||
            die "$config:${cfg_line[$1]}: $1: '$p' does not exist"
        list+=("$p")
    done
    printf '%s\n' "${list[@]}"
}

require workdir "where every output goes"
require corpus "the raw corpus to curate"
require sft_data "SFT JSONL for lora"
require pref_data "preference JSONL for dpo"
require model "pretrain --model: a preset or a config.json"
for k in pretrain_steps lora_steps dpo_steps; do require "$k"; done
if [[ -n ${cfg[tokenizer]:-} && -n ${cfg[tokenizer_vocab]:-} ]]; then
    l=$((cfg_line[tokenizer] > cfg_line[tokenizer_vocab] ? cfg_line[tokenizer] : cfg_line[tokenizer_vocab]))
    die "$config:$l: tokenizer and tokenizer_vocab both given: a tokenizer file, or the vocabulary size of one to train"
fi
[[ -n ${cfg[tokenizer]:-}${cfg[tokenizer_vocab]:-} ]] ||
    die "$config: missing key 'tokenizer' (a tokenizer file) or 'tokenizer_vocab' (train one of that size)"
for k in tokenizer_vocab seq_len pretrain_seq_len lora_seq_len dpo_seq_len pretrain_steps lora_steps dpo_steps; do
    check_whole "$k" 1
done
check_whole curate_array 0
for s in "" "${STAGES_ALL[@]/%/_}"; do
    for k in nodes tasks_per_node cpus_per_task; do check_whole "$s$k" 1; done
    check_whole "${s}gpus_per_node" 0
done
[[ $(get name bellows) =~ ^[A-Za-z0-9._-]+$ ]] || die "$config:${cfg_line[name]}: name may hold letters, digits, '.', '_' and '-' only"

workdir=$(abspath "${cfg[workdir]}")
workdir=${workdir%/}
mapfile -t corpus < <(input_paths corpus)
((${#corpus[@]})) || exit 2
mapfile -t sft_data < <(input_paths sft_data)
((${#sft_data[@]})) || exit 2
mapfile -t pref_data < <(input_paths pref_data)
((${#pref_data[@]})) || exit 2
tokenizer=
if [[ -n ${cfg[tokenizer]:-} ]]; then
    tokenizer=$(abspath "${cfg[tokenizer]}")
    [[ -f $tokenizer ]] || die "$config:${cfg_line[tokenizer]}: tokenizer: '$tokenizer' is not a file"
fi
model=${cfg[model]}
if [[ $model == */* || $model == *.json ]]; then
    model=$(abspath "$model")
    [[ -f $model ]] || die "$config:${cfg_line[model]}: model: '$model' is not a file (a preset name, or a config.json)"
fi
seq_len=$(get seq_len 1024)
curate_k=$(get curate_array 0)
((curate_k > 1)) || curate_k=0
name=$(get name bellows)
lora_full=0
[[ " $(get lora_args) " != *" --full "* ]] || lora_full=1

# The templates, beside this script (the bellows tree's sbatch/ or PREFIX/share/bellows/sbatch/).
for t in curate.sbatch curate-array.sbatch tokenize.sbatch pretrain.sbatch lora.sbatch dpo.sbatch convert.sbatch; do
    [[ -f $here/$t ]] || die "$here/$t not found: keep pipeline.sh beside the sbatch templates"
done

# The tools: the config's bin, else what the templates find (BELLOWS_BIN, PREFIX/bin, PATH).
bin=
if [[ -n ${cfg[bin]:-} ]]; then
    bin=$(abspath "${cfg[bin]}")
    [[ -x $bin/curate-dedup && -x $bin/pretrain ]] ||
        die "$config:${cfg_line[bin]}: bin: '$bin' holds no bellows tools (curate-dedup, pretrain, ...)"
elif ! [[ -x ${BELLOWS_BIN:-/nonexistent}/pretrain || -x $here/../../../bin/pretrain ]] &&
    ! command -v pretrain >/dev/null 2>&1; then
    die "the bellows tools are not found: set 'bin = DIR' in $config (or BELLOWS_BIN, or PATH)"
fi

if ((curate_k)); then
    # Every task needs one file at least: let the template's own listing say whether it can.
    read -r -a cargs <<<"$(get curate_args)"
    if ! plan_err=$("$BASH" "$here/curate-array.sbatch" --plan "$curate_k" "${corpus[@]}" "${cargs[@]}" 2>&1 >/dev/null); then
        die "$config:${cfg_line[curate_array]}: curate_array = $curate_k: ${plan_err#bellows-curate-array: error: }"
    fi
    STAGES=("${STAGES_ALL[@]}")
else
    STAGES=("${STAGES_ALL[@]:0:1}" "${STAGES_ALL[@]:2}") # no curate_merge
fi

# --- what each stage reads, writes and runs ------------------------------------------------------
declare -A out needs template
out[curate]=$workdir/curated
((curate_k == 0)) || out[curate]=$workdir/curate-parts
out[curate_merge]=$workdir/curated
out[tokenize]=$workdir/tokens
out[tokenize_sft]=$workdir/sft-tokens
out[tokenize_pref]=$workdir/pref-tokens
out[pretrain]=$workdir/pretrain
out[lora]=$workdir/lora
out[dpo]=$workdir/dpo
out[export_hf]=$workdir/export/hf
out[export_gguf]=$workdir/export/model.gguf

needs[curate]=
needs[curate_merge]=curate
needs[tokenize]=curate
((curate_k == 0)) || needs[tokenize]=curate_merge
tok_need= # the SFT and preference shards need the trained tokenizer, else nothing
[[ -n $tokenizer ]] || tok_need=tokenize
needs[tokenize_sft]=$tok_need
needs[tokenize_pref]=$tok_need
needs[pretrain]=tokenize
needs[lora]="pretrain tokenize_sft"
if ((lora_full)); then
    needs[dpo]="lora tokenize_pref" # a new adapter on the fine-tuned model
    needs[export_hf]="lora dpo"
    needs[export_gguf]="lora dpo"
    base=${out[lora]}
else
    needs[dpo]="pretrain lora tokenize_pref" # lora's adapter on the pretrained base, continued
    needs[export_hf]="pretrain dpo"
    needs[export_gguf]="pretrain dpo"
    base=${out[pretrain]}
fi

template[curate]=curate.sbatch
((curate_k == 0)) || template[curate]=curate-array.sbatch
template[curate_merge]=curate-array.sbatch
template[tokenize]=tokenize.sbatch
template[tokenize_sft]=tokenize.sbatch
template[tokenize_pref]=tokenize.sbatch
template[pretrain]=pretrain.sbatch
template[lora]=lora.sbatch
template[dpo]=dpo.sbatch
template[export_hf]=convert.sbatch
template[export_gguf]=convert.sbatch

steps_of() { get "${1}_steps"; }
seq_of() { get "${1}_seq_len" "$seq_len"; }
tok_file=${tokenizer:-${out[tokenize]}/tokenizer.json}

# tool_args STAGE — the stage's tool arguments (before the config's STAGE_args), one per line.
tool_args() {
    case $1 in
    curate) printf '%s\n' "${corpus[@]}" -o "${out[curate]}" ;;
    curate_merge) printf '%s\n' --merge "${out[curate]}" -o "${out[curate_merge]}" ;;
    tokenize)
        if [[ -n $tokenizer ]]; then
            printf '%s\n' --tokenizer "$tokenizer"
        else
            printf '%s\n' --train-vocab-size "${cfg[tokenizer_vocab]}"
        fi
        printf '%s\n' --mode pretrain --seq-len "$(seq_of pretrain)" "$workdir/curated" -o "${out[tokenize]}"
        ;;
    tokenize_sft)
        printf '%s\n' --tokenizer "$tok_file" --mode sft --seq-len "$(seq_of lora)" "${sft_data[@]}" -o "${out[tokenize_sft]}"
        ;;
    tokenize_pref)
        printf '%s\n' --tokenizer "$tok_file" --mode preference --seq-len "$(seq_of dpo)" "${pref_data[@]}" \
            -o "${out[tokenize_pref]}"
        ;;
    pretrain)
        printf '%s\n' --data "${out[tokenize]}" --model "$model" --seq-len "$(seq_of pretrain)" \
            --steps "$(steps_of pretrain)" -o "${out[pretrain]}"
        ;;
    lora)
        printf '%s\n' --base "${out[pretrain]}" --data "${out[tokenize_sft]}" --seq-len "$(seq_of lora)" \
            --steps "$(steps_of lora)" -o "${out[lora]}"
        ;;
    dpo)
        if ((lora_full)); then
            printf '%s\n' --policy "${out[lora]}" --new-lora
        else
            printf '%s\n' --policy "${out[pretrain]}" --lora "${out[lora]}"
        fi
        printf '%s\n' --data "${out[tokenize_pref]}" --seq-len "$(seq_of dpo)" --steps "$(steps_of dpo)" -o "${out[dpo]}"
        ;;
    export_hf) printf '%s\n' --from "$base" --lora "${out[dpo]}" --merge --to hf -o "${out[export_hf]}" ;;
    export_gguf) printf '%s\n' --from "$base" --lora "${out[dpo]}" --merge --to gguf -o "${out[export_gguf]}" ;;
    esac
}

# checkpoint_at RUNDIR STEPS — RUNDIR/checkpoints/latest names step STEPS and that checkpoint is there.
checkpoint_at() {
    local name=
    if [[ -r $1/checkpoints/latest ]]; then read -r name <"$1/checkpoints/latest" || true; fi
    [[ $name == "$(printf 'step-%08d' "$2")" && (-f $1/checkpoints/$name/model.h5 || -f $1/checkpoints/$name/adapter.h5) ]]
}
# missing_parts — the array indexes whose part has no report.json yet, comma-separated.
missing_parts() {
    local i idx=
    for ((i = 0; i < curate_k; i++)); do
        [[ -f $(printf '%s/part-%05d/report.json' "${out[curate]}" "$i") ]] || idx+=${idx:+,}$i
    done
    echo "$idx"
}
# complete STAGE — true when the stage's outputs are complete; sets `evidence` (what shows it).
complete() {
    local o=${out[$1]}
    case $1 in
    curate)
        if ((curate_k)); then
            if [[ -f ${out[curate_merge]}/report.json ]]; then
                evidence="merged: ${out[curate_merge]}/report.json"
            else
                evidence="$o/part-*/report.json, all $curate_k"
            fi
            [[ -f ${out[curate_merge]}/report.json || -z $(missing_parts) ]]
        else
            evidence=$o/report.json
            [[ -f $o/report.json ]]
        fi
        ;;
    curate_merge | tokenize | tokenize_sft | tokenize_pref)
        evidence=$o/report.json
        [[ -f $o/report.json ]]
        ;;
    pretrain | lora | dpo)
        evidence="$o/checkpoints/latest = $(printf 'step-%08d' "$(steps_of "$1")")"
        checkpoint_at "$o" "$(steps_of "$1")"
        ;;
    export_hf)
        evidence=$o/report.json
        [[ -f $o/report.json ]]
        ;;
    export_gguf)
        evidence=$o
        [[ -f $o ]]
        ;;
    esac
}

# --- jobs already in the queue ------------------------------------------------------------------
# Each job carries the comment bellows-pipeline:WORKDIR:STAGE; one still queued or running is
# reused, one that can never run (what it waited for failed) is cancelled and submitted again.
declare -A queued=() dead=()
if command -v squeue >/dev/null 2>&1; then
    prefix="bellows-pipeline:$workdir:"
    while IFS='|' read -r id comment reason; do
        [[ $comment == "$prefix"* ]] || continue
        s=${comment#"$prefix"}
        if [[ $reason == DependencyNeverSatisfied ]]; then
            dead[$s]="${dead[$s]:-}${dead[$s]:+ }$id"
        else
            queued[$s]=$id
        fi
    done < <(squeue -h -u "$(id -un)" -o '%A|%k|%r' 2>/dev/null | sort -u || true)
fi

# --- sbatch options ------------------------------------------------------------------------------
# res STAGE RESOURCE — STAGE_RESOURCE, else (training stages) RESOURCE, else nothing.
res() {
    local v=${cfg[${1}_$2]:-}
    if [[ -z $v && $TRAINING == *" $1 "* ]]; then v=${cfg[$2]:-}; fi
    echo "$v"
}
# sbatch_opts STAGE — the stage's sbatch options (not the dependency), one per line.
sbatch_opts() {
    local s=$1 nodes tpn cpus gpus time exports words
    nodes=$(res "$s" nodes)
    tpn=$(res "$s" tasks_per_node)
    cpus=$(res "$s" cpus_per_task)
    gpus=$(res "$s" gpus_per_node)
    time=$(res "$s" time)
    echo "--job-name=$name-$s"
    echo "--comment=bellows-pipeline:$workdir:$s"
    echo "--chdir=$config_dir"
    if [[ $s == curate && $curate_k -gt 0 ]]; then
        echo "--output=$workdir/logs/curate-%A_%a.out"
    else
        echo "--output=$workdir/logs/$s-%j.out"
    fi
    # The allocation: NODES x TASKS_PER_NODE tasks (--ntasks too: it would win over the
    # command line's --ntasks-per-node if a template's header set it).
    echo "--nodes=${nodes:-1}"
    echo "--ntasks-per-node=${tpn:-1}"
    echo "--ntasks=$((${nodes:-1} * ${tpn:-1}))"
    [[ -z $cpus ]] || echo "--cpus-per-task=$cpus"
    [[ -z $gpus || $gpus == 0 ]] || echo "--gpus-per-node=$gpus"
    [[ -z $time ]] || echo "--time=$time"
    [[ -z ${cfg[partition]:-} ]] || echo "--partition=${cfg[partition]}"
    [[ -z ${cfg[account]:-} ]] || echo "--account=${cfg[account]}"
    exports=ALL
    [[ -z $bin ]] || exports+=",BELLOWS_BIN=$bin"
    [[ $s != curate* || $curate_k -eq 0 ]] || exports+=",BELLOWS_CURATE_PARTS=$curate_k"
    echo "--export=$exports"
    read -r -a words <<<"$(get sbatch_args) $(get "${s}_sbatch_args")"
    ((${#words[@]} == 0)) || printf '%s\n' "${words[@]}"
}

# --- decide --------------------------------------------------------------------------------------
# First every stage's fate, in order (a refusal must come before anything is submitted):
#   skip    outputs complete and nothing it reads is made again;
#   queued  a job of it is still in the queue (reused);
#   submit  anything else: its upstream (the stages it reads that are queued or submitted) are
#           its dependencies, and an output already there is replaced (--overwrite) or refused.
declare -A state=() jobid=() upstream=() extra=() array=() evidence_of=()
stamp=
for s in "${STAGES[@]}"; do
    up=()
    for n in ${needs[$s]}; do
        [[ ${state[$n]} == skip ]] || up+=("$n")
    done
    upstream[$s]=${up[*]}
    if [[ -n ${queued[$s]:-} ]]; then
        state[$s]=queued
        jobid[$s]=${queued[$s]}
        continue
    fi
    if complete "$s" && ((${#up[@]} == 0)); then
        state[$s]=skip
        evidence_of[$s]=$evidence
        continue
    fi
    state[$s]=submit
    o=${out[$s]}
    case $s in
    pretrain | lora | dpo)
        if ((${#up[@]})) && [[ -e $o/checkpoints/latest ]]; then
            die "stage $s must run again because ${up[*]} runs again, but $o holds a run trained on the old ${up[*]} output: move it away or delete it (its --resume auto would continue the old run)"
        fi
        ;;
    curate)
        if ((curate_k)); then
            a=$(missing_parts)
            # The parts on disk must come from this very split (same K, corpus and options).
            stamp="parts=$curate_k corpus=${corpus[*]} args=$(get curate_args)"
            if [[ -f $o/split.txt ]]; then
                [[ $(<"$o/split.txt") == "$stamp" ]] ||
                    die "$o holds the parts of another split ($(<"$o/split.txt")); delete it to split again as: $stamp"
            elif [[ $a != "$(seq -s, 0 $((curate_k - 1)))" ]]; then
                die "$o holds parts of an unknown split (no split.txt); delete it to split again"
            fi
            [[ $a != "$(seq -s, 0 $((curate_k - 1)))" ]] || a=0-$((curate_k - 1))
            array[$s]=$a
        elif [[ -e $o ]]; then
            extra[$s]=--overwrite
        fi
        ;;
    *) [[ ! -e $o ]] || extra[$s]=--overwrite ;;
    esac
done

# --- submit ------------------------------------------------------------------------------------
submitted_ids=()
log_file=$workdir/logs/submitted-$(date '+%Y%m%d-%H%M%S').sh # written with the first submission
if ((dry_run)); then
    echo "# $prog --dry-run $config: the sbatch lines it would run; nothing is submitted"
fi

# quoted WORD... — the words as shell input: plain when safe, else in single quotes.
quoted() {
    local w line=
    for w in "$@"; do
        if [[ $w =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
            line+=" $w"
        else
            line+=" '${w//\'/\'\\\'\'}'"
        fi
    done
    echo "${line# }"
}

# report STAGE TEXT — the stage's line (a comment in a dry run).
report() {
    if ((dry_run)); then
        printf '# %-14s %s\n' "$1" "$2"
    else
        printf '%-14s %s\n' "$1" "$2"
    fi
}

for s in "${STAGES[@]}"; do
    # Jobs of this stage that can never run (what they waited for failed): cancel them; the stage
    # is submitted again below unless its outputs are complete.
    if [[ -n ${dead[$s]:-} ]]; then
        if ((dry_run)); then
            echo "scancel ${dead[$s]}  # $s: can never run (DependencyNeverSatisfied)"
        else
            # shellcheck disable=SC2086  # job ids
            scancel ${dead[$s]} || true
            report "$s" "cancelled job ${dead[$s]} (could never run: DependencyNeverSatisfied)"
        fi
    fi
    case ${state[$s]} in
    skip)
        report "$s" "skipped: complete (${evidence_of[$s]})"
        continue
        ;;
    queued)
        submitted_ids+=("${jobid[$s]}")
        report "$s" "already queued: job ${jobid[$s]} (from an earlier run; not submitted again)"
        continue
        ;;
    esac

    # sbatch OPTIONS TEMPLATE TOOL_ARGS [--overwrite] STAGE_ARGS
    mapfile -t opts < <(sbatch_opts "$s")
    [[ -z ${array[$s]:-} ]] || opts+=("--array=${array[$s]}")
    if [[ -n ${upstream[$s]} ]]; then
        dep=afterok
        for n in ${upstream[$s]}; do dep+=":${jobid[$n]}"; done
        opts+=("--dependency=$dep")
    fi
    mapfile -t args < <(tool_args "$s")
    [[ -z ${extra[$s]:-} ]] || args+=("${extra[$s]}")
    if [[ $s == curate_merge ]]; then
        read -r -a more <<<"$(get curate_args) $(get curate_merge_args)"
    else
        read -r -a more <<<"$(get "${s}_args")"
    fi
    cmd=(sbatch --parsable "${opts[@]}" "$here/${template[$s]}" "${args[@]}" "${more[@]}")

    if ((dry_run)); then
        line=$(quoted "${cmd[@]}")
        # Dependencies on jobs submitted by these lines are their shell variables.
        line=${line//:DRYRUN_/:\$}
        echo "$s=\$($line)"
        jobid[$s]=DRYRUN_$s
        continue
    fi

    if [[ ! -f $log_file ]]; then
        mkdir -p "$workdir/logs"
        echo "# $prog $(readlink -f "$config"), $(date '+%F %T')" >"$log_file"
    fi
    case $s in
    export_*) mkdir -p "$workdir/export" ;;
    curate) [[ -z $stamp ]] || { mkdir -p "${out[curate]}" && echo "$stamp" >"${out[curate]}/split.txt"; } ;;
    esac
    quoted "${cmd[@]}" >>"$log_file"
    if ! answer=$("${cmd[@]}" 2>&1); then
        echo "$prog: error: sbatch failed for stage $s: ${answer//$'\n'/ }" >&2
        if ((${#submitted_ids[@]})); then
            echo "$prog: the jobs submitted so far stay queued (${submitted_ids[*]}): fix the cause and run again, they are reused (or scancel them)" >&2
        fi
        exit 1
    fi
    id=${answer%%;*}
    if ! [[ $id =~ ^[0-9]+$ ]]; then
        echo "$prog: error: sbatch gave no job id for stage $s: $answer" >&2
        exit 1
    fi
    echo "# $s: job $id" >>"$log_file"
    jobid[$s]=$id
    submitted_ids+=("$id")
    what="submitted: job $id"
    [[ -z ${array[$s]:-} ]] || what+=", array ${array[$s]}"
    if [[ -n ${upstream[$s]} ]]; then
        what+=", after"
        for n in ${upstream[$s]}; do what+=" $n (${jobid[$n]}),"; done
        what=${what%,}
    fi
    [[ -z ${extra[$s]:-} ]] || what+=", ${extra[$s]}"
    report "$s" "$what"
done

# --- how to follow them -------------------------------------------------------------------------
if ((dry_run)); then
    exit 0
fi
if ((${#submitted_ids[@]} == 0)); then
    echo "nothing to do: every stage is complete (outputs under $workdir)"
    exit 0
fi
ids=$(
    IFS=,
    echo "${submitted_ids[*]}"
)
echo "jobs: $ids (logs: $workdir/logs/STAGE-JOBID.out; sbatch lines: $log_file)"
echo "follow: squeue -j $ids -o '%.10i %.24j %.10T %.10M %.30E %R'"
