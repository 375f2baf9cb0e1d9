#!/usr/bin/env bash
# Distributed testing with torchrun:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py arguments...]
# GPUS is the number of processes per node (CPU processes without a GPU).
# Multi-node and interpreter settings: see tools/torchrun.sh.
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py arguments...]" >&2
    exit 2
fi
TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$TOOLS/torchrun.sh" "$3" "$TOOLS/test.py" "$1" "$2" --launcher pytorch "${@:4}"
