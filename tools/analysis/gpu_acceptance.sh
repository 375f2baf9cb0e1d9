#!/usr/bin/env bash
# The whole GPU acceptance run on a machine with its own CUDA torch and no
# package index (issue 11): set-up as MOBILENET_MM_TORCH=existing does it,
# from the wheels in WHEELS (tools/setup/download_gpu_wheels.sh fetches
# them elsewhere), then tools/analysis/gpu_check.py; the table, the logs and
# the timings go to OUT.
#   tools/analysis/gpu_acceptance.sh [--cuda-ops]
# Environment: WHEELS (default .gpu_wheels), OUT (default
# work_dirs/gpu_acceptance; the device tool sets it), PYTHON (the
# interpreter with torch, default python3), SETUP_TIMEOUT (s, default 420),
# CHECK_TIMEOUT (s, default 300). --cuda-ops also builds mmcv's CUDA ops
# (MMCV_CUDA_OPS=1, TORCH_CUDA_ARCH_LIST default 9.0): not needed for the
# check, and longer.
# Files in OUT: setup.log, gpu_check.log, gpu_check.md, timings.txt and,
# after a failure, errors.log. Exit status 0 only when both parts pass.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
WHEELS="$(cd "${WHEELS:-$ROOT/.gpu_wheels}" 2>/dev/null && pwd)" || {
    echo "gpu_acceptance: error: no wheel folder (run tools/setup/download_gpu_wheels.sh where there is an index)" >&2; exit 1; }
OUT="${OUT:-$ROOT/work_dirs/gpu_acceptance}"
mkdir -p "$OUT"
TIMINGS="$OUT/timings.txt"
export PYTHON="${PYTHON:-python3}"
export MOBILENET_MM_TORCH=existing
export MOBILENET_MM_CACHE="${MOBILENET_MM_CACHE:-/tmp/mobilenet_mm_cache}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
export PIP_NO_INDEX=1 PIP_FIND_LINKS="$WHEELS" PIP_DISABLE_PIP_VERSION_CHECK=1
if [[ "${1:-}" == --cuda-ops ]]; then
    export MMCV_CUDA_OPS=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
fi

{
    echo "date: $(date -u +%FT%TZ)"
    echo "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n1)"
    echo "python: $("$PYTHON" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1)"
    echo "nvcc: $(nvcc --version 2>/dev/null | tail -n1 || echo none)"
    echo "wheels: $(ls "$WHEELS" | tr '\n' ' ')"
} > "$TIMINGS"

status=0
start=$SECONDS
timeout "${SETUP_TIMEOUT:-420}" bash tools/setup_env.sh > "$OUT/setup.log" 2>&1
setup_rc=$?
echo "setup (make setup MOBILENET_MM_TORCH=existing, MMCV_CUDA_OPS=${MMCV_CUDA_OPS:-0}): exit $setup_rc in $((SECONDS - start)) s" >> "$TIMINGS"
if [[ $setup_rc -ne 0 ]]; then
    status=1
    echo "setup failed: $(grep -v '^WARNING' "$OUT/setup.log" | grep -E 'error|Error' | tail -n1)" >> "$TIMINGS"
    # So the check still runs: everything from the folder, no resolution.
    if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import mmcv.ops" 2>/dev/null; then
        fallback=$SECONDS
        .venv/bin/python -m pip install -q --no-deps "$WHEELS"/*.whl >> "$OUT/setup.log" 2>&1 \
            && .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . >> "$OUT/setup.log" 2>&1
        echo "fallback install (every wheel with --no-deps): exit $? in $((SECONDS - fallback)) s" >> "$TIMINGS"
    fi
fi

if .venv/bin/python -c "import mobilenet_mm, mmcv.ops, mmdet, mmseg" 2>> "$OUT/setup.log"; then
    start=$SECONDS
    PYTHONUNBUFFERED=1 timeout "${CHECK_TIMEOUT:-300}" .venv/bin/python tools/analysis/gpu_check.py \
        --out-dir /tmp/gpu_check --markdown "$OUT/gpu_check.md" > "$OUT/gpu_check.log" 2>&1
    check_rc=$?
    echo "gpu_check: exit $check_rc in $((SECONDS - start)) s" >> "$TIMINGS"
    [[ $check_rc -eq 0 ]] || status=1
    [[ -f /tmp/gpu_check/errors.log ]] && cp /tmp/gpu_check/errors.log "$OUT/errors.log"
else
    echo "gpu_check: not run (the environment does not import; see setup.log)" >> "$TIMINGS"
    status=1
fi
cat "$TIMINGS"
tail -n 30 "$OUT/gpu_check.log" 2>/dev/null
exit $status
