#!/usr/bin/env bash
# Distributed testing with torchrun:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py arguments...]
# GPUS is the number of processes per node, one per GPU; on a machine
# without a GPU they train on the CPU (gloo backend, SyncBN included, see
# mobilenet_mm/tools_common.py).
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT (defaults: 1, 0,
# 127.0.0.1, 29500) on every node. PYTHON picks the interpreter (default:
# the repo's .venv when present, else python).
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py arguments...]" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
