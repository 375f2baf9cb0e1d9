"""Helpers shared by the test folders (models, datasets, engine, deploy,
tools).

``tests`` is a package, so pytest puts the repository root on ``sys.path``:
the tests import these helpers as ``tests.conftest`` and the command-line
tools as modules of the ``tools`` package (``from tools import train``)
instead of loading script files by path.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
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


def tool_env(*paths: str, **extra) -> dict:
    """The environment for a tool run as a subprocess: one intra-op thread
    (torch's default pool slows tiny models down many times on a shared
    2-core machine) and this checkout (then ``paths``) first on the path."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', **extra)
    return with_repo_on_path(env, *paths)


def run_tool(*args, cwd: str = REPO, paths=(), timeout: float = 300):
    """``python ARGS`` as a user runs it: a subprocess in ``cwd`` with
    :func:`tool_env` (``paths`` after this checkout on PYTHONPATH), its
    output captured as text."""
    return subprocess.run([sys.executable, *map(str, args)],
                          capture_output=True, text=True,
                          env=tool_env(*paths), timeout=timeout, cwd=cwd)


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


def _current_scope():
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    return current.scope_name if current is not None else None


# The default scope a test module sets when it is imported (many call
# init_default_scope('mmdet') at the top): its tests run in that scope
# whichever module was imported, or ran, last.
_MODULE_SCOPES = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    if not isinstance(collector, pytest.Module):
        yield
        return
    before = _current_scope()
    yield
    after = _current_scope()
    if after is not None and after != before:
        _MODULE_SCOPES[str(collector.path)] = after


@pytest.fixture(autouse=True)
def _restore_default_scope(request):
    """Each test starts in its module's scope and leaves mmengine's default
    scope as it found it: a test that sets 'mmseg' must not change how a
    later test's bare type names resolve (the tests run in any order, and
    in parallel workers)."""
    from mmengine.registry import DefaultScope, init_default_scope
    saved = DefaultScope._instance_dict.copy()
    scope = _MODULE_SCOPES.get(str(request.path))
    if scope is not None:
        init_default_scope(scope)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
