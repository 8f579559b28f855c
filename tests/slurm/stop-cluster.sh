#!/usr/bin/env bash
# stop-cluster.sh STATE_DIR — stop the test cluster started by
# start-cluster.sh STATE_DIR: cancel its jobs, then stop slurmd, slurmctld and
# munged. Only processes whose pid files live in STATE_DIR (and whose command
# line names STATE_DIR) are signalled — never anything found by name.
# Stopping an already stopped (or never started) cluster is not an error.
# State, logs and slurm.conf stay in STATE_DIR; env.sh is removed.
#
# Exit codes: 0 stopped; 1 a daemon would not die; 2 usage.
set -euo pipefail

PROG=stop-cluster
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=cluster-lib.sh
. "$HERE/cluster-lib.sh"

[[ $# -eq 1 && -n $1 && $1 != -* ]] || { echo "$PROG: error: usage: stop-cluster.sh STATE_DIR" >&2; exit 2; }
if [[ ! -d $1 ]]; then
  echo "$PROG: $1 does not exist; nothing to stop"
  exit 0
fi
T0=$SECONDS
set_paths "$(canon_dir "$1")"
lock_state_dir
export SLURM_CONF=$CONF
rc=0
stopped=()

# 1. Cancel jobs while slurmctld can still do it, so no job step is orphaned.
if slurmctld_pid >/dev/null; then
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
  if [[ -n $jobs ]]; then
    echo "$PROG: cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
    # shellcheck disable=SC2086  # one job id per word
    timeout 10 scancel $jobs 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do # KillWait is 5 s in our slurm.conf
      [[ -z $(timeout 5 squeue -h -t R,CG,PD,S -o %A 2>/dev/null || true) ]] && break
      sleep 0.1
    done
  fi
fi

# 2. Daemons, compute side first.
if pid=$(slurmd_pid); then
  stop_pid slurmd "$pid" || rc=1
  stopped+=("slurmd:$pid")
fi
for pidfile in "$SD"/run/slurmd-*.pid; do # the nodes of a multi-node cluster
  [[ -e $pidfile ]] || continue
  n=${pidfile##*/slurmd-}
  n=${n%.pid}
  if pid=$(slurmd_pid "$n"); then
    stop_pid "slurmd of $n" "$pid" || rc=1
    stopped+=("slurmd-$n:$pid")
  fi
done
# Step daemons (slurmstepd) inherit $DAEMON_MARK from our slurmd; any still
# alive were orphaned (e.g. slurmctld was already down so the jobs could not be
# cancelled). slurmstepd ignores SIGTERM, so each one is stopped together with
# its descendants (the job's processes): SIGSTOP all, then SIGKILL all.
descendants() { # print pid $1 and all its descendants
  local -A kids=()
  local stat_file stat ppid p queue=("$1")
  for stat_file in /proc/[0-9]*/stat; do
    stat=$(cat "$stat_file" 2>/dev/null) || continue
    p=${stat%% *}
    stat=${stat##*) }
    read -r _ ppid _ <<<"$stat"
    kids[$ppid]+=" $p"
  done
  while ((${#queue[@]})); do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    echo "$p"
    # shellcheck disable=SC2206  # split the space-separated pid list
    queue+=(${kids[$p]:-})
  done
}
for env_file in /proc/[0-9]*/environ; do
  pid=${env_file#/proc/}
  pid=${pid%/environ}
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == slurmstepd ]] || continue
  { tr '\0' '\n' <"$env_file"; } 2>/dev/null | grep -qxF -- "$DAEMON_MARK" || continue
  mapfile -t tree < <(descendants "$pid")
  echo "$PROG: warning: killing orphaned slurmstepd and its job processes (pids ${tree[*]})" >&2
  kill -STOP "${tree[@]}" 2>/dev/null || true
  kill -KILL "${tree[@]}" 2>/dev/null || true
  for p in "${tree[@]}"; do
    stop_pid "slurmstepd/job process" "$p" || rc=1
  done
done
if pid=$(slurmctld_pid); then
  stop_pid slurmctld "$pid" || rc=1
  stopped+=("slurmctld:$pid")
fi
if pid=$(munged_pid); then
  stop_pid munged "$pid" || rc=1
  stopped+=("munged:$pid")
fi
rm -f "$ENV_SH"
teardown_net

if ((${#stopped[@]} == 0)); then
  echo "$PROG: no daemons of $SD were running"
else
  echo "$PROG: stopped ${stopped[*]} in $((SECONDS - T0))s (logs kept in $SD/log and $SD/munge)"
fi
exit "$rc"
