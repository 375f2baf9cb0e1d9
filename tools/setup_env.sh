#!/usr/bin/env bash
# Build the project's virtual environment in .venv (idempotent).
#
# Why this pinning (measured on Python 3.11, x86_64, CPU only):
# * mmcv has no wheels on PyPI: it is built from its sdist with its CPU ops
#   (mmdet's SSD path needs mmcv.ops.batched_nms; mmcv-lite lacks it).
# * torch 2.14.1 + torchvision 0.29.1 is the newest pair whose torchvision
#   imports (timm needs torchvision). torch 2.14's headers need C++20 while
#   mmcv 2.1.0's setup.py asks for C++14/17, so the sdist is patched to C++20.
# * setuptools must stay < 81: mmengine imports pkg_resources to resolve
#   `mmdet::` / `mmseg::` scoped base configs.
# * The built mmcv wheel is cached outside the tree (keyed by the torch
#   version), so a fresh .venv or a fresh clone does not rebuild it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON_BIN="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.14.1}"
TORCHVISION_VERSION="${TORCHVISION_VERSION:-0.29.1}"
MMCV_VERSION="2.1.0"
CACHE_ROOT="${MOBILENET_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mobilenet_mm}"
WHEEL_CACHE="$CACHE_ROOT/wheels/torch-$TORCH_VERSION"
STAMP="$VENV/.mobilenet_mm_setup"

# The stamp records what the environment was built from; setup is skipped
# only when none of it changed.
fingerprint() {
    cat "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" "$ROOT/requirements/"*.txt \
        | sha256sum | cut -d' ' -f1
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(fingerprint)" ]] \
        && "$VENV/bin/python" -c "import mobilenet_mm, mmcv.ops, mmdet, mmseg" 2>/dev/null; then
    echo "setup: .venv is up to date ($VENV)"
    exit 0
fi

echo "setup: building $VENV"
[[ -x "$VENV/bin/python" ]] || "$PYTHON_BIN" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q "setuptools>=77,<81" wheel ninja
"${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null; then
    mkdir -p "$WHEEL_CACHE"
    wheel=$(ls "$WHEEL_CACHE"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [[ -z "$wheel" ]]; then
        echo "setup: building mmcv $MMCV_VERSION with CPU ops (about 8 minutes on 2 cores)"
        build_dir=$(mktemp -d)
        trap 'rm -rf "$build_dir"' EXIT
        # --no-build-isolation: mmcv's setup.py needs torch and pkg_resources even
        # to report its metadata.
        "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
            "mmcv==$MMCV_VERSION" -d "$build_dir"
        tar -xzf "$build_dir"/mmcv-"$MMCV_VERSION".tar.gz -C "$build_dir"
        src="$build_dir/mmcv-$MMCV_VERSION"
        sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
        # Build into the temp dir, then move: a killed build never leaves a
        # partial wheel in the cache.
        MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" FORCE_CUDA=0 \
            "${PIP[@]}" wheel -q --no-build-isolation --no-deps -w "$build_dir/dist" "$src"
        built=$(ls "$build_dir"/dist/mmcv-*.whl)
        mv "$built" "$WHEEL_CACHE/"
        wheel="$WHEEL_CACHE/$(basename "$built")"
    fi
    "${PIP[@]}" install -q --no-deps "$wheel"
fi

"${PIP[@]}" install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c "import mobilenet_mm, mmcv.ops, mmdet, mmseg, timm, torchvision"
fingerprint > "$STAMP"
echo "setup: done"
