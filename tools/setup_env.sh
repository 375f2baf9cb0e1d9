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
#   version and the ops it has), so a fresh .venv or a fresh clone does not
#   rebuild it.
#
# Choices (environment variables; `make setup VAR=VALUE` passes them):
# * MMCV_CUDA_OPS=1: build mmcv's CUDA ops too (needs nvcc; without it the
#   set-up stops in one line). Default: CPU ops only, also on a GPU machine
#   (the GPU is hidden from mmcv's build, which would otherwise need a CUDA
#   toolkit); our detectors' NMS then runs torchvision's CUDA kernel.
#   TORCH_CUDA_ARCH_LIST (e.g. 9.0) limits the CUDA build to those GPUs.
# * MOBILENET_MM_TORCH=existing: keep the torch (and torchvision) of
#   $PYTHON instead of installing the pinned pair: .venv sees that
#   interpreter's packages, mmcv is built against its torch (C++ standard
#   from its version), and pip may not replace torch or torchvision.
# * PYTHON (default python3), MOBILENET_MM_CACHE (wheel cache), MAX_JOBS.
# The decisions are made in tools/setup/env_plan.py (tests/tools/test_setup_plan.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON_BIN="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.14.1}"
TORCHVISION_VERSION="${TORCHVISION_VERSION:-0.29.1}"
MMCV_VERSION="2.1.0"
CACHE_ROOT="${MOBILENET_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mobilenet_mm}"
STAMP="$VENV/.mobilenet_mm_setup"
MMCV_STAMP="$VENV/.mobilenet_mm_mmcv"
CONSTRAINTS="$VENV/.mobilenet_mm_constraints.txt"
TORCH_MODE="${MOBILENET_MM_TORCH:-pinned}"
PLAN="$ROOT/tools/setup/env_plan.py"

die() { echo "setup: error: $*" >&2; exit 1; }

case "$TORCH_MODE" in
    pinned|existing) ;;
    *) die "MOBILENET_MM_TORCH must be 'pinned' (default) or 'existing', got '$TORCH_MODE'" ;;
esac

# The stamp records what the environment was built from; setup is skipped
# only when none of it changed.
fingerprint() {
    {
        cat "$ROOT/tools/setup_env.sh" "$PLAN" "$ROOT/setup.py" \
            "$ROOT/requirements/"*.txt
        if [[ "$TORCH_MODE" == existing ]]; then
            echo "torch: existing $("$PYTHON_BIN" -c 'import torch; print(torch.__version__)' 2>&1)"
        fi
        if [[ -n "${MMCV_CUDA_OPS:-}" && "${MMCV_CUDA_OPS}" != 0 ]]; then
            echo "mmcv cuda ops: ${MMCV_CUDA_OPS} ${TORCH_CUDA_ARCH_LIST:-}"
        fi
    } | sha256sum | cut -d' ' -f1
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(fingerprint)" ]] \
        && "$VENV/bin/python" -c "import mobilenet_mm, mmcv.ops, mmdet, mmseg" 2>/dev/null; then
    echo "setup: .venv is up to date ($VENV)"
    exit 0
fi

# A .venv made in the other torch mode is not converted silently.
made_on_existing=no
[[ -f "$VENV/.mobilenet_mm_base.txt" ]] && made_on_existing=yes
if [[ -x "$VENV/bin/python" ]]; then
    if [[ "$TORCH_MODE" == existing && "$made_on_existing" == no ]] \
            || [[ "$TORCH_MODE" == pinned && "$made_on_existing" == yes ]]; then
        die "$VENV was built with MOBILENET_MM_TORCH=$([[ $made_on_existing == yes ]] && echo existing || echo pinned); run 'make clean-venv' first to build it with MOBILENET_MM_TORCH=$TORCH_MODE"
    fi
fi

echo "setup: building $VENV (torch: $TORCH_MODE)"
start_s=$SECONDS
if [[ "$TORCH_MODE" == existing ]]; then
    "$PYTHON_BIN" -c "import torch, torchvision" 2>/dev/null \
        || die "MOBILENET_MM_TORCH=existing: torch and torchvision must import in $PYTHON_BIN (set PYTHON to the interpreter that has them)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        # Without ensurepip there (a distribution's Python), the venv uses
        # the pip of $PYTHON, visible through the .pth file below.
        "$PYTHON_BIN" -m venv "$VENV" 2>/dev/null \
            || { rm -rf "$VENV"; "$PYTHON_BIN" -m venv --without-pip "$VENV"; }
        # The venv's own packages come first; $PYTHON's (torch included) are
        # visible after them. A .pth file rather than --system-site-packages:
        # that flag exposes the base interpreter's packages, not those of a
        # venv that $PYTHON may itself be.
        site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        "$PYTHON_BIN" -c "import site; print('\n'.join(site.getsitepackages()))" \
            > "$VENV/.mobilenet_mm_base.txt"
        mapfile -t base_sites < "$VENV/.mobilenet_mm_base.txt"
        # addsitedir also reads the .pth files of those folders.
        "$VENV/bin/python" -c "import sys; print('import site; ' + '; '.join(f'site.addsitedir({p!r})' for p in sys.argv[1:]))" \
            "${base_sites[@]}" > "$site/_mobilenet_mm_base.pth"
    fi
    # pip's own view of the versions (a wheel's __version__ may add +cu130)
    "$VENV/bin/python" -c "from importlib.metadata import version as v; print(f'torch=={v(\"torch\")}\ntorchvision=={v(\"torchvision\")}')" \
        > "$CONSTRAINTS"
    echo "setup: on the existing $(tr '\n' ' ' < "$CONSTRAINTS")from $PYTHON_BIN"
else
    [[ -x "$VENV/bin/python" ]] || "$PYTHON_BIN" -m venv "$VENV"
    : > "$CONSTRAINTS"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q -c "$CONSTRAINTS" "setuptools>=77,<81" wheel ninja
if [[ "$TORCH_MODE" == pinned ]]; then
    "${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
    torch_key="$TORCH_VERSION"
else
    torch_key=$("$VENV/bin/python" -c "import torch; print(torch.__version__)")
fi

# What mmcv gets (CPU or CUDA ops, C++ standard, cache key): env_plan.py.
plan=$("$VENV/bin/python" "$PLAN" mmcv --torch-version "$torch_key") || exit 1
eval "$plan"
if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null \
        || [[ "$(cat "$MMCV_STAMP" 2>/dev/null)" != "$mmcv_cache_tag" ]]; then
    wheel_cache="$CACHE_ROOT/wheels/$mmcv_cache_tag"
    py_tag=$("$VENV/bin/python" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
    mkdir -p "$wheel_cache"
    wheel=$(ls "$wheel_cache"/mmcv-"$MMCV_VERSION"-"$py_tag"-*.whl 2>/dev/null | head -n1 || true)
    if [[ -z "$wheel" ]]; then
        echo "setup: building $mmcv_summary"
        build_dir=$(mktemp -d)
        trap 'rm -rf "$build_dir"' EXIT
        # --no-build-isolation: mmcv's setup.py needs torch and pkg_resources
        # even to report its metadata, and picks its extension then too,
        # hence the plan's environment here as well.
        env "${mmcv_build_env[@]}" "${PIP[@]}" download -q --no-deps \
            --no-binary :all: --no-build-isolation \
            "mmcv==$MMCV_VERSION" -d "$build_dir"
        tar -xzf "$build_dir"/mmcv-"$MMCV_VERSION".tar.gz -C "$build_dir"
        src="$build_dir/mmcv-$MMCV_VERSION"
        if [[ -n "$mmcv_cxx_std" ]]; then
            sed -i -e "s/-std=c++14/-std=$mmcv_cxx_std/g" \
                -e "s/-std=c++17/-std=$mmcv_cxx_std/g" "$src/setup.py"
        fi
        # Build into the temp dir, then move: a killed build never leaves a
        # partial wheel in the cache.
        build_s=$SECONDS
        env "${mmcv_build_env[@]}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "${PIP[@]}" wheel -q --no-build-isolation --no-deps \
            -w "$build_dir/dist" "$src"
        echo "setup: mmcv built in $((SECONDS - build_s)) s"
        built=$(ls "$build_dir"/dist/mmcv-*.whl)
        mv "$built" "$wheel_cache/"
        wheel="$wheel_cache/$(basename "$built")"
    fi
    "${PIP[@]}" install -q --no-deps --force-reinstall "$wheel"
    echo "$mmcv_cache_tag" > "$MMCV_STAMP"
fi

if [[ "$TORCH_MODE" == existing ]]; then
    # Keep what $PYTHON has (an OpenCV wheel of another name included):
    # see existing_env_requirements in env_plan.py.
    reqs=("$ROOT/requirements/runtime.txt" "$ROOT/requirements/tests.txt")
    mapfile -t no_deps < <("$VENV/bin/python" "$PLAN" existing-requirements "${reqs[@]}" --part no-deps)
    if [[ ${#no_deps[@]} -gt 0 ]]; then
        "${PIP[@]}" install -q --no-deps -c "$CONSTRAINTS" "${no_deps[@]}"
    fi
    "$VENV/bin/python" "$PLAN" existing-requirements "${reqs[@]}" --part resolved \
        > "$VENV/.mobilenet_mm_requirements.txt"
    "${PIP[@]}" install -q -c "$CONSTRAINTS" -r "$VENV/.mobilenet_mm_requirements.txt"
else
    "${PIP[@]}" install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
fi
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c "import mobilenet_mm, mmcv.ops, mmdet, mmseg, timm, torchvision"
fingerprint > "$STAMP"
echo "setup: done in $((SECONDS - start_s)) s"
