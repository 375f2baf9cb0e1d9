#!/usr/bin/env python
"""What ``tools/setup_env.sh`` builds, decided in one place.

Standard library only: it runs with the new environment's interpreter
before anything but torch is in it.

    python tools/setup/env_plan.py mmcv --torch-version VERSION
        prints the mmcv build plan as bash assignments (eval them);
        a refused plan is one line on stderr and exit status 1
    python tools/setup/env_plan.py existing-requirements FILE... \
        --part no-deps|resolved
        prints the requirement lines for MOBILENET_MM_TORCH=existing (for
        ``resolved``, after the ``no-deps`` part is installed)

How mmcv 2.1.0's ``setup.py`` (read from the sdist) picks its extension:
``MMCV_WITH_OPS=0`` builds none; otherwise the CUDA extension (every
``.cu`` kernel, ``nvcc`` and ``CUDA_HOME`` needed) when
``torch.cuda.is_available()`` at build time, or ``FORCE_CUDA=1``, or a
ROCm torch with ``ROCM_HOME``; then MLU/MPS/NPU when those are present or
forced; else the CPU ops. So on a GPU machine without a CUDA toolkit (the
usual case with PyPI's torch) a plain build fails. The CPU-ops build here
hides the GPU from the build (``CUDA_VISIBLE_DEVICES=``) and sets every
``FORCE_*`` to 0. ROCm torch is not covered.
"""
import argparse
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

MMCV_VERSION = '2.1.0'
# The opt-in switch, read from the environment by setup_env.sh.
CUDA_OPS_SWITCH = 'MMCV_CUDA_OPS'
# torch 2.14's torch/csrc/api/include/torch/all.h stops any compile below
# C++20 (`__cplusplus < 202002L`); torch 2.13.0's asks for C++17 (both read
# from the wheels). mmcv 2.1.0's setup.py passes -std=c++17 for any torch
# above 1.12.1, so from 2.14 on its flags are raised to C++20.
CXX20_FROM = (2, 14)


class SetupError(Exception):
    """A set-up request that cannot be met; the message is one line."""


def torch_release(version: str) -> Tuple[int, int]:
    """``'2.11.0+cu130'`` -> ``(2, 11)``."""
    match = re.match(r'(\d+)\.(\d+)', version.strip())
    if not match:
        raise SetupError(f'cannot read a torch version from {version!r} '
                         '(expected MAJOR.MINOR[.PATCH][+LOCAL])')
    return int(match.group(1)), int(match.group(2))


def cxx_standard(torch_version: str) -> Optional[str]:
    """The C++ standard mmcv's flags must be raised to for this torch, or
    ``None`` where mmcv's own choice (C++17 for torch > 1.12.1) compiles."""
    return 'c++20' if torch_release(torch_version) >= CXX20_FROM else None


@dataclass(frozen=True)
class MmcvBuild:
    """How mmcv is built: which ops, which C++ standard, with which
    environment, and under which key its wheel is cached."""
    cuda_ops: bool
    cxx_std: Optional[str]
    env: Dict[str, str] = field(default_factory=dict)
    cache_tag: str = ''
    summary: str = ''


def _arch_tag(arch_list: str) -> str:
    return re.sub(r'[^0-9A-Za-z.+]+', '_', arch_list.strip())


def plan_mmcv_build(torch_version: str,
                    torch_cuda: Optional[str],
                    gpu_visible: bool,
                    nvcc: Optional[str],
                    cuda_ops_requested: bool,
                    cuda_arch_list: Optional[str] = None) -> MmcvBuild:
    """The mmcv build for this machine.

    Args:
        torch_version: the torch the wheel is built against (also its
            cache key).
        torch_cuda: ``torch.version.cuda`` (``None`` for a CPU build).
        gpu_visible: ``torch.cuda.is_available()`` here.
        nvcc: path of the CUDA compiler, or ``None``.
        cuda_ops_requested: ``MMCV_CUDA_OPS=1``.
        cuda_arch_list: ``TORCH_CUDA_ARCH_LIST`` for the CUDA build.

    Without the opt-in, mmcv gets its CPU ops whatever the machine has (the
    GPU hidden from the build). With it, the CUDA ops, which need ``nvcc``
    and a CUDA build of torch; otherwise :class:`SetupError`.
    """
    cxx_std = cxx_standard(torch_version)
    std_note = (f', flags raised to {cxx_std.upper()} for torch '
                f'{torch_version}' if cxx_std else '')
    if not cuda_ops_requested:
        # mmcv's setup.py builds CUDA ops when torch sees a GPU: hide it.
        env = dict(MMCV_WITH_OPS='1', FORCE_CUDA='0', FORCE_MLU='0',
                   FORCE_MPS='0', FORCE_NPU='0', CUDA_VISIBLE_DEVICES='')
        where = ('the GPU hidden from the build; set MMCV_CUDA_OPS=1 for its '
                 'CUDA ops' if gpu_visible else 'no GPU here')
        return MmcvBuild(
            cuda_ops=False, cxx_std=cxx_std, env=env,
            cache_tag=f'torch-{torch_version}',
            summary=f'mmcv {MMCV_VERSION} with its CPU ops ({where}'
            f'{std_note}; about 8 minutes on 2 cores)')
    if torch_cuda is None:
        raise SetupError(
            f'{CUDA_OPS_SWITCH}=1 builds mmcv\'s CUDA ops, but this torch '
            f'({torch_version}) is a CPU build; install a CUDA build of '
            f'torch or unset {CUDA_OPS_SWITCH}')
    if not nvcc:
        raise SetupError(
            f'{CUDA_OPS_SWITCH}=1 builds mmcv\'s CUDA ops with nvcc, and '
            'there is no nvcc here (looked in $CUDA_HOME/bin, on PATH and in '
            '/usr/local/cuda/bin); install the CUDA toolkit (CUDA '
            f'{torch_cuda}, as torch) or unset {CUDA_OPS_SWITCH} for the CPU '
            'ops')
    cuda_home = os.path.dirname(os.path.dirname(os.path.abspath(nvcc)))
    env = dict(MMCV_WITH_OPS='1', FORCE_CUDA='1', CUDA_HOME=cuda_home)
    tag = f'torch-{torch_version}-cuda-ops'
    archs = ''
    if cuda_arch_list and cuda_arch_list.strip():
        env['TORCH_CUDA_ARCH_LIST'] = cuda_arch_list.strip()
        tag += f'-arch{_arch_tag(cuda_arch_list)}'
        archs = f', architectures {cuda_arch_list.strip()}'
    visible = '' if gpu_visible else ', no GPU visible: built for ' \
        'TORCH_CUDA_ARCH_LIST or torch\'s own list'
    return MmcvBuild(
        cuda_ops=True, cxx_std=cxx_std, env=env, cache_tag=tag,
        summary=f'mmcv {MMCV_VERSION} with its CPU and CUDA ops (nvcc '
        f'{nvcc}{archs}{visible}{std_note}; build time not measured here)')


def find_nvcc(environ: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The CUDA compiler, looked up where torch's ``cpp_extension`` looks
    for ``CUDA_HOME``: ``$CUDA_HOME``/``$CUDA_PATH``, then ``PATH``, then
    ``/usr/local/cuda``."""
    environ = os.environ if environ is None else environ
    candidates = [os.path.join(environ[key], 'bin', 'nvcc')
                  for key in ('CUDA_HOME', 'CUDA_PATH') if environ.get(key)]
    on_path = shutil.which('nvcc', path=environ.get('PATH'))
    candidates += [on_path] if on_path else []
    candidates.append('/usr/local/cuda/bin/nvcc')
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def read_switch(value: Optional[str]) -> bool:
    """``MMCV_CUDA_OPS``: unset, empty or ``0`` is off, ``1`` is on."""
    if value in (None, '', '0'):
        return False
    if value == '1':
        return True
    raise SetupError(f'{CUDA_OPS_SWITCH} must be 0 or 1, got {value!r}')


# -- requirements on top of an existing environment ------------------------
OPENCV_DISTRIBUTIONS = ('opencv-python', 'opencv-python-headless',
                        'opencv-contrib-python',
                        'opencv-contrib-python-headless')
# mmengine is the one requirement that declares opencv-python (mmcv's wheel
# goes in with --no-deps already): on top of an environment that has
# another OpenCV wheel it goes in with --no-deps too, and its other
# requirements are listed instead.
NO_DEPS_WITH_OPENCV = ('mmengine', )


def requirement_name(line: str) -> str:
    """The normalised project name of a requirement line ('' for none)."""
    text = line.split('#')[0].strip()
    match = re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', text)
    return re.sub(r'[-_.]+', '-', match.group(0)).lower() if match else ''


def existing_env_requirements(lines: Sequence[str],
                              dependency_requires: Sequence[str],
                              opencv_present: bool
                              ) -> Tuple[List[str], List[str]]:
    """``(no_deps, resolved)``: the requirement lines to install without
    their dependencies and those to resolve normally, for an environment
    that keeps its own packages.

    ``dependency_requires``: ``Requires-Dist`` entries of the packages in
    :data:`NO_DEPS_WITH_OPENCV` (read after those are installed). Without
    an OpenCV already present nothing changes: everything is resolved.
    """
    wanted = [line.split('#')[0].strip() for line in lines]
    wanted = [line for line in wanted if line]
    if not opencv_present:
        return [], wanted
    no_deps = [r for r in wanted
               if requirement_name(r) in NO_DEPS_WITH_OPENCV]
    resolved = [r for r in wanted if r not in no_deps
                and requirement_name(r) not in OPENCV_DISTRIBUTIONS]
    for entry in dependency_requires:
        if re.search(r'\bextra\s*==', entry):
            continue  # belongs to an optional extra
        name = requirement_name(entry)
        if name in OPENCV_DISTRIBUTIONS:
            continue
        if name not in {requirement_name(r) for r in resolved}:
            resolved.append(entry)
    return no_deps, resolved


# -- command line ------------------------------------------------------------
def _bash_assignments(values: Dict[str, object]) -> str:
    out = []
    for name, value in values.items():
        if isinstance(value, dict):
            items = ' '.join(shlex.quote(f'{k}={v}') for k, v in value.items())
            out.append(f'{name}=({items})')
        else:
            out.append(f'{name}={shlex.quote(str(value))}')
    return '\n'.join(out)


def _mmcv_command(args) -> str:
    import torch  # the environment's own, after it is installed
    plan = plan_mmcv_build(
        torch_version=args.torch_version or torch.__version__,
        torch_cuda=torch.version.cuda,
        gpu_visible=torch.cuda.is_available(),
        nvcc=find_nvcc(),
        cuda_ops_requested=read_switch(os.environ.get(CUDA_OPS_SWITCH)),
        cuda_arch_list=os.environ.get('TORCH_CUDA_ARCH_LIST'))
    return _bash_assignments(dict(
        mmcv_build_env=plan.env, mmcv_cxx_std=plan.cxx_std or '',
        mmcv_cache_tag=plan.cache_tag, mmcv_summary=plan.summary))


def _existing_requirements_command(args) -> str:
    import importlib.util
    lines = []
    for path in args.files:
        with open(path) as f:
            lines += f.read().splitlines()
    import importlib.metadata
    opencv = importlib.util.find_spec('cv2') is not None
    requires = []
    if args.part == 'resolved' and opencv:
        for name in NO_DEPS_WITH_OPENCV:
            requires += importlib.metadata.requires(name) or []
    no_deps, resolved = existing_env_requirements(lines, requires, opencv)
    if args.part == 'no-deps':
        return '\n'.join(no_deps)
    return '\n'.join(resolved)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    mmcv = sub.add_parser('mmcv', help='the mmcv build plan')
    mmcv.add_argument('--torch-version', help='cache key (default: the '
                      'installed torch.__version__)')
    existing = sub.add_parser('existing-requirements')
    existing.add_argument('files', nargs='+')
    existing.add_argument('--part', choices=['no-deps', 'resolved'],
                          default='resolved')
    args = parser.parse_args(argv)
    try:
        if args.command == 'mmcv':
            print(_mmcv_command(args))
        else:
            print(_existing_requirements_command(args))
    except SetupError as e:
        print(f'setup: error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
