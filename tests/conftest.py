"""Helpers shared by the test folders (models, datasets, engine, deploy,
tools).

``tests`` is a package, so pytest puts the repository root on ``sys.path``:
the tests import these helpers as ``tests.conftest`` and the command-line
tools as modules of the ``tools`` package (``from tools import train``)
instead of loading script files by path.
"""
import os
import os.path as osp

import torch
import torch.nn as nn

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs')
TEST_CONFIGS = osp.join(REPO, 'tests', 'configs')  # the tiny det/seg configs
TOOLS = osp.join(REPO, 'tools')


def with_repo_on_path(env: dict, *paths: str) -> dict:
    """``env`` with the repository (and ``paths``) in front of its
    PYTHONPATH, so a tool started as a subprocess imports this checkout."""
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO, *paths] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


def tool_env(**extra) -> dict:
    """The environment for a tool run as a subprocess: one intra-op thread
    (torch's default pool slows tiny models down many times on a shared
    2-core machine) and this checkout first on the path."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', **extra)
    return with_repo_on_path(env)


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, and random layer scales
    (``gamma``, initialised at 1e-5), then eval mode: with identity-like
    defaults a wrong layer order, a missing op or a missed BN fold would
    not show in the outputs."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            if module.weight is not None:
                module.weight.data.uniform_(0.5, 1.5, generator=generator)
                module.bias.data.uniform_(-0.5, 0.5, generator=generator)
    for name, param in model.named_parameters():
        if name.endswith('gamma'):  # layer scale
            param.data.uniform_(0.05, 0.2, generator=generator)
    return model.eval()
