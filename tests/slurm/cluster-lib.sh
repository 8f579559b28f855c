# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
# Helpers shared by start-cluster.sh and stop-cluster.sh (sourced, not run).
#
# Layout of a cluster state directory (STATE_DIR):
#   slurm.conf  mpi.conf  env.sh  lock
#   munge/   munged socket, pid, seed and log (owned by the munge user)
#   run/     slurmctld.pid  slurmd.pid
#   log/     slurmctld.log  slurmd.log  (+ *.stderr: early daemon errors)
#   ctld/    slurmctld StateSaveLocation (wiped at every start)
#   spool/   slurmd SlurmdSpoolDir (wiped at every start)
#   pmix/    PMIx plugin client directories (wiped at every start)

# Canonical absolute path of an existing directory.
canon_dir() { (cd "$1" && pwd -P); }

# True when pid $1 exists and is not a zombie.
pid_alive() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# our_pid NAME PIDFILE MARKER: print the pid stored in PIDFILE when that
# process is alive, is called NAME and has MARKER (a path inside the state
# directory) on its command line, i.e. it is the daemon this state directory
# started, not an unrelated process that reused the pid.
our_pid() {
  local name=$1 pidfile=$2 marker=$3 pid comm cmdline
  [[ -r $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile" 2>/dev/null) || return 1
  pid_alive "$pid" || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ $comm == "$name" ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$marker"* ]] || return 1
  printf '%s\n' "$pid"
}

# Paths derived from STATE_DIR (must be canonical before calling).
set_paths() {
  SD=$1
  CONF=$SD/slurm.conf
  ENV_SH=$SD/env.sh
  MUNGE_DIR=$SD/munge
  MUNGE_SOCKET=$MUNGE_DIR/munged.socket
  MUNGE_PIDFILE=$MUNGE_DIR/munged.pid
  CTLD_PIDFILE=$SD/run/slurmctld.pid
  SLURMD_PIDFILE=$SD/run/slurmd.pid
  LOG_DIR=$SD/log
  # Set in the environment of slurmctld/slurmd (and so of the slurmstepd
  # processes slurmd forks) to recognise stray step daemons at stop time.
  DAEMON_MARK="BELLOWS_SLURM_DAEMON=$SD"
}

munged_pid() { our_pid munged "$MUNGE_PIDFILE" "$MUNGE_SOCKET"; }
slurmctld_pid() { our_pid slurmctld "$CTLD_PIDFILE" "$CONF"; }
# slurmd_pid [NODE]: the single node's slurmd, or node NODE's of a multi-node cluster.
slurmd_pid() {
  if [[ -n ${1:-} ]]; then our_pid slurmd "$SD/run/slurmd-$1.pid" "$CONF"; else our_pid slurmd "$SLURMD_PIDFILE" "$CONF"; fi
}

# --- several nodes on one machine ---------------------------------------------
# A multi-node cluster (start-cluster.sh --nodes N) runs each slurmd in its own
# network namespace (a veth into a bridge that holds the controller's address)
# and UTS namespace (its own hostname), so an allocation really spans hosts as
# MPI and our tools see them. Names derive from STATE_DIR (several clusters can
# coexist); STATE_DIR/net.env records them for stop-cluster.sh.
net_names() { # sets NET_ID BRIDGE SUBNET (first three octets); needs SD
  local sum
  sum=$(printf '%s' "$SD" | cksum | cut -d' ' -f1)
  NET_ID=$(printf '%08x' "$sum")
  BRIDGE=bb$NET_ID
  SUBNET=10.$((100 + sum % 100)).$(((sum / 100) % 250))
}
node_netns() { echo "bellows-$NET_ID-$1"; }       # NODE -> its namespace
node_veth() { echo "$BRIDGE${1#node}"; }           # host end of NODE's veth (<= 15 chars)

# Removes what net.env names: namespaces (their veth ends go with them) and the
# bridge.
teardown_net() {
  [[ -r $SD/net.env ]] || return 0
  local BRIDGE NAMESPACES ns
  # shellcheck disable=SC1091
  . "$SD/net.env"
  for ns in $NAMESPACES; do
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -f "$SD/net.env"
}

# Take an exclusive lock on STATE_DIR/lock (fd 9) so that start and stop of
# the same state directory never run at the same time.
lock_state_dir() {
  exec 9>>"$SD/lock"
  flock -w 60 9 || { echo "$PROG: error: could not lock $SD/lock within 60 s (another start/stop running?)" >&2; exit 1; }
}

# stop_pid NAME PID: SIGTERM, wait up to 20 s, then SIGKILL and wait 5 s more.
stop_pid() {
  local name=$1 pid=$2 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  echo "$PROG: warning: $name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  echo "$PROG: error: $name (pid $pid) is still running after SIGKILL" >&2
  return 1
}
