"""The set-up's decisions (tools/setup/env_plan.py): which mmcv is built on
which machine, with which C++ standard, and what goes on top of an existing
torch. Every combination of (GPU visible, nvcc present, opt-in, torch
version) is checked; also against the installed torch's headers and
mmengine's metadata, and the shell script's one-line refusals."""
import importlib.metadata
import itertools
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO as ROOT  # noqa: E402
from tools.setup import env_plan as plan  # noqa: E402

PLAN_PATH = osp.join(ROOT, 'tools', 'setup', 'env_plan.py')
NVCC = '/usr/local/cuda-13.0/bin/nvcc'
TORCHES = [('2.11.0+cu130', '13.0', None), ('2.13.0+cpu', None, None),
           ('2.14.1', '13.0', 'c++20'), ('2.14.1+cpu', None, 'c++20'),
           ('3.0.0', '13.2', 'c++20'), ('1.13.1', '11.7', None)]


@pytest.mark.parametrize('gpu,nvcc,opt_in,torch_case', [
    (gpu, nvcc, opt_in, case)
    for gpu, nvcc, opt_in in itertools.product((False, True), (None, NVCC),
                                               (False, True))
    for case in TORCHES])
def test_every_machine_gets_a_plan_or_one_clear_refusal(
        gpu, nvcc, opt_in, torch_case):
    version, cuda, cxx = torch_case
    if opt_in and (cuda is None or nvcc is None):
        with pytest.raises(plan.SetupError) as info:
            plan.plan_mmcv_build(version, cuda, gpu, nvcc, opt_in)
        message = str(info.value)
        assert '\n' not in message and 'MMCV_CUDA_OPS' in message
        assert ('CPU build' in message if cuda is None else
                'there is no nvcc' in message)
        return
    build = plan.plan_mmcv_build(version, cuda, gpu, nvcc, opt_in)
    assert build.cxx_std == cxx
    assert build.env['MMCV_WITH_OPS'] == '1'
    if opt_in:
        assert build.cuda_ops and build.env['FORCE_CUDA'] == '1'
        assert build.env['CUDA_HOME'] == '/usr/local/cuda-13.0'
        assert 'CUDA_VISIBLE_DEVICES' not in build.env
        assert build.cache_tag == f'torch-{version}-cuda-ops'
    else:
        # Whatever the machine has, the GPU is hidden from mmcv's
        # torch.cuda.is_available() and nothing forces another extension.
        assert not build.cuda_ops
        assert build.env['CUDA_VISIBLE_DEVICES'] == ''
        assert all(build.env[f'FORCE_{kind}'] == '0'
                   for kind in ('CUDA', 'MLU', 'MPS', 'NPU'))
        # The pinned CPU path keeps its cache folder (wheels/torch-2.14.1).
        assert build.cache_tag == f'torch-{version}'
        assert 'CPU ops' in build.summary


def test_arch_list_keys_the_cache_and_reaches_the_build():
    build = plan.plan_mmcv_build('2.11.0+cu130', '13.0', True, NVCC, True,
                                 cuda_arch_list='9.0')
    assert build.env['TORCH_CUDA_ARCH_LIST'] == '9.0'
    assert build.cache_tag == 'torch-2.11.0+cu130-cuda-ops-arch9.0'
    other = plan.plan_mmcv_build('2.11.0+cu130', '13.0', True, NVCC, True,
                                 cuda_arch_list='8.0;9.0')
    assert other.cache_tag != build.cache_tag


def test_switch_and_version_errors_are_one_line():
    assert plan.read_switch(None) is False
    assert plan.read_switch('0') is False and plan.read_switch('1') is True
    with pytest.raises(plan.SetupError, match="must be 0 or 1, got 'yes'"):
        plan.read_switch('yes')
    with pytest.raises(plan.SetupError, match='cannot read a torch version'):
        plan.cxx_standard('nightly')


def test_cxx_standard_agrees_with_the_installed_torch_headers():
    """The version rule against the header that enforces it."""
    header = osp.join(osp.dirname(torch.__file__), 'include', 'torch', 'csrc',
                      'api', 'include', 'torch', 'all.h')
    with open(header) as f:
        required = re.search(r'__cplusplus < (\d+)L', f.read()).group(1)
    expected = {'202002': 'c++20', '201703': None}[required]
    assert plan.cxx_standard(torch.__version__) == expected


def test_find_nvcc_follows_torchs_lookup_order(tmp_path):
    home = tmp_path / 'cuda'
    (home / 'bin').mkdir(parents=True)
    nvcc = home / 'bin' / 'nvcc'
    nvcc.write_text('#!/bin/sh\n')
    nvcc.chmod(0o755)
    assert plan.find_nvcc({'CUDA_HOME': str(home), 'PATH': ''}) == str(nvcc)
    assert plan.find_nvcc({'PATH': str(home / 'bin')}) == str(nvcc)
    empty = tmp_path / 'empty'
    empty.mkdir()
    found = plan.find_nvcc({'PATH': str(empty)})
    assert found in (None, '/usr/local/cuda/bin/nvcc')


def test_existing_environment_keeps_its_opencv():
    lines = ['# comment', 'mmengine==0.10.7', 'mmdet>=3.3.0,<3.4.0',
             'opencv-python', 'yapf  # mmcv', '']
    requires = importlib.metadata.requires('mmengine')
    assert any(r.startswith('opencv-python') for r in requires)
    no_deps, resolved = plan.existing_env_requirements(lines, requires, True)
    assert no_deps == ['mmengine==0.10.7']
    names = [plan.requirement_name(r) for r in resolved]
    assert 'opencv-python' not in names and 'mmengine' not in names
    assert 'mmdet' in names and 'yapf' in names
    # mmengine's own requirements come in instead, not its extras.
    for name in ('addict', 'rich', 'termcolor', 'matplotlib'):
        assert name in names
    assert 'pytest' not in names and 'transformers' not in names
    assert len(names) == len(set(names))
    # Without an OpenCV already there, nothing changes.
    assert plan.existing_env_requirements(lines, requires, False) == (
        [], ['mmengine==0.10.7', 'mmdet>=3.3.0,<3.4.0', 'opencv-python',
             'yapf'])


def test_plan_command_prints_bash_assignments():
    env = dict(os.environ, MMCV_CUDA_OPS='0')
    out = subprocess.run(
        [sys.executable, PLAN_PATH, 'mmcv', '--torch-version', '2.14.1'],
        capture_output=True, text=True, env=env, check=True).stdout
    evaluated = subprocess.run(
        ['bash', '-c', out + '\necho "${mmcv_build_env[@]}|$mmcv_cxx_std|'
         '$mmcv_cache_tag"'], capture_output=True, text=True,
        check=True).stdout.strip()
    env_words, cxx, tag = evaluated.split('|')
    assert (cxx, tag) == ('c++20', 'torch-2.14.1')
    assert 'CUDA_VISIBLE_DEVICES=' in env_words.split()
    refused = subprocess.run(
        [sys.executable, PLAN_PATH, 'mmcv'], capture_output=True, text=True,
        env=dict(env, MMCV_CUDA_OPS='maybe'))
    assert refused.returncode == 1 and refused.stdout == ''
    assert refused.stderr.strip().splitlines() == [
        "setup: error: MMCV_CUDA_OPS must be 0 or 1, got 'maybe'"]


def test_setup_script_refuses_an_unknown_torch_mode(tmp_path):
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'setup_env.sh')],
        capture_output=True, text=True,
        env=dict(os.environ, MOBILENET_MM_TORCH='nightly'))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "setup: error: MOBILENET_MM_TORCH must be 'pinned' (default) or "
        "'existing', got 'nightly'"]
