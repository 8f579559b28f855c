#!/bin/bash
# mpirun as the tests need it on a CI machine: as root, in a container, more ranks than cores.
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Containers often forbid the ptrace-based single-copy mechanism of the shared-memory transport.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
exec mpirun --oversubscribe "$@"
