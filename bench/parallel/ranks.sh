#!/bin/bash
# One process per rank, each pinned to its own core and timed by GNU time (bench/parallel/run.sh's helper).
#
#   ranks.sh pin CORES PREFIX -- CMD...        one rank of an mpirun job: rank R (OMPI_COMM_WORLD_RANK, else RANK)
#                                              runs CMD under taskset -c (the (R mod n)-th core of the list CORES)
#                                              and /usr/bin/time -v -o PREFIX.rankR.time
#   ranks.sh spawn N CORES PREFIX -- CMD...    N ranks started by hand for torch.distributed (init_method env://):
#                                              RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free
#                                              MASTER_PORT in each one's environment, each through `ranks.sh pin`;
#                                              waits for all of them; if one fails the others are ended and the
#                                              exit status is the first failure's.
set -euo pipefail

usage() { echo "usage: ranks.sh pin CORES PREFIX -- CMD... | ranks.sh spawn N CORES PREFIX -- CMD..." >&2; exit 2; }
(($# >= 1)) || usage
mode=$1; shift
case $mode in
    pin)
        if (($# < 4)) || [[ $3 != -- ]]; then usage; fi
        cores=$1 prefix=$2; shift 3
        rank=${OMPI_COMM_WORLD_RANK:-${RANK:-}}
        [[ $rank =~ ^[0-9]+$ ]] || { echo "ranks.sh pin: no OMPI_COMM_WORLD_RANK or RANK in the environment" >&2; exit 2; }
        IFS=, read -ra list <<< "$cores"
        core=${list[rank % ${#list[@]}]}
        exec /usr/bin/time -v -o "$prefix.rank$rank.time" taskset -c "$core" "$@"
        ;;
    spawn)
        if (($# < 5)) || [[ $4 != -- ]]; then usage; fi
        n=$1 cores=$2 prefix=$3; shift 4
        port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        pids=()
        # each rank in its own process group (setsid), so that ending one ends GNU time and what it runs
        stop() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2> /dev/null || true; done; }
        trap 'stop; exit 143' TERM INT
        for ((r = 0; r < n; r++)); do
            RANK=$r LOCAL_RANK=$r WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
                setsid "$0" pin "$cores" "$prefix" -- "$@" &
            pids+=($!)
        done
        rc=0
        # the first failure ends the others (a rank left waiting for a dead peer would hang)
        for ((left = n; left > 0; left--)); do
            st=0; wait -n || st=$?
            if ((st != 0 && rc == 0)); then rc=$st; stop; fi
        done
        exit "$rc"
        ;;
    *) usage ;;
esac
