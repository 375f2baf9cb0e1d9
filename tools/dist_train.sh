#!/usr/bin/env bash
# Distributed training with torchrun:
#   tools/dist_train.sh CONFIG GPUS [train.py arguments...]
# GPUS is the number of processes per node, one per GPU, which talk over
# NCCL (the configs' env_cfg.dist_cfg.backend, from mmdet's and mmseg's
# runtime bases; mmengine's init_dist sets each process on its GPU). On a
# machine without a GPU they train on the CPU instead (gloo backend, SyncBN
# included, see mobilenet_mm/apis/launch.py). Multi-node and interpreter
# settings: see tools/torchrun.sh.
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: $0 CONFIG GPUS [train.py arguments...]" >&2
    exit 2
fi
TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$TOOLS/torchrun.sh" "$2" "$TOOLS/train.py" "$1" --launcher pytorch "${@:3}"
