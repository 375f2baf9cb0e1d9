#!/usr/bin/env bash
# Fetch, on a machine with a package index, what tools/analysis/
# gpu_acceptance.sh installs on a GPU machine without one (Python 3.12,
# x86_64, torch/torchvision/timm/onnx/onnxruntime/numpy/scipy/matplotlib/
# opencv already there):
#   tools/setup/download_gpu_wheels.sh [DIR]     (default: .gpu_wheels)
# The OpenMMLab packages and the small dependencies such an image lacks, as
# wheels for Python 3.12, plus the mmcv 2.1.0 sdist (built there). DIR is
# git-ignored; the wheels are never committed (about 10 MB).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${1:-$ROOT/.gpu_wheels}"
PYTHON_BIN="${PYTHON:-$ROOT/.venv/bin/python}"
PY_VERSION="${PY_VERSION:-3.12}"
mkdir -p "$DIR"
PIP=("$PYTHON_BIN" -m pip --disable-pip-version-check)
# One version of each, no dependencies pulled in: this list is the set.
PACKAGES=(
    mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 pycocotools
    "setuptools==80.9.0"            # < 81: mmengine needs pkg_resources
    addict yapf platformdirs termcolor  # mmengine, mmcv
    shapely terminaltables              # mmdet
    prettytable wcwidth ftfy            # mmseg
)
"${PIP[@]}" download -q --no-deps --only-binary=:all: \
    --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DIR" "${PACKAGES[@]}"
# The sdist: its setup.py needs torch and pkg_resources even for metadata.
"${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
    mmcv==2.1.0 -d "$DIR"
ls -l "$DIR"
du -sh "$DIR"
