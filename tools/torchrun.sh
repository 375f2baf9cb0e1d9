#!/usr/bin/env bash
# Shared launcher of dist_train.sh and dist_test.sh:
#   tools/torchrun.sh NPROC_PER_NODE SCRIPT [script arguments...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT (defaults: 1, 0,
# 127.0.0.1, 29500) on every node. PYTHON picks the interpreter (default:
# the repo's .venv when present, else python).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NPROC=$1
SCRIPT=$2
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
    --nproc_per_node="$NPROC" \
    "$SCRIPT" "${@:3}"
