"""NanGuardHook: a NaN or infinite loss stops training with a message naming
the iteration (the last checkpoint stays the last good state), or skips the
step when configured; without the guard the weights turn NaN."""
import itertools
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader, TensorDataset

import mobilenet_mm  # noqa: F401  (registers the hook)
from mobilenet_mm.engine import NanGuardHook, NonFiniteLossError

from tests.conftest import REPO, run_tool, with_repo_on_path

BATCH = 2
BAD_ITER = 5  # 1-based, as the log counts


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return {'loss_mse': ((out - targets)**2).mean(),
                    'loss_l1': (out - targets).abs().mean() * 0.1}
        return out


def make_data(bad_iters=(BAD_ITER, ), kind='nan', num_iters=8):
    """Batches in order; the listed iterations get a NaN input or an
    infinite target."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(num_iters * BATCH, 2, generator=gen)
    y = torch.randn(num_iters * BATCH, 1, generator=gen)
    for it in bad_iters:
        rows = slice((it - 1) * BATCH, it * BATCH)
        if kind == 'nan':
            x[rows] = float('nan')
        else:
            y[rows] = float('inf')
    return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False)


class WeightRecorder(Hook):
    """Weights after every iteration."""

    def __init__(self):
        self.after = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        model = runner.model
        self.after[runner.iter + 1] = model.linear.weight.detach().clone()


_RUNS = itertools.count()


def make_runner(work_dir, guard=None, data=None, max_iters=8, hooks=()):
    custom = [guard] if guard is not None else []
    torch.manual_seed(0)
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        # Runners built in the same second would share logger and message
        # hub instances (named after the time) without their own name.
        experiment_name=f'nan_guard_{next(_RUNS)}',
        default_scope='mmengine',
        train_dataloader=data if data is not None else make_data(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom + list(hooks),
        randomness=dict(seed=0))


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.mark.parametrize('kind', ['nan', 'inf'])
def test_stop_names_the_iteration_and_keeps_the_last_checkpoint(
        tmp_path, kind):
    recorder = WeightRecorder()
    runner = make_runner(
        tmp_path, dict(type='mobilenet_mm.NanGuardHook'),
        make_data(kind=kind), hooks=[recorder])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith(f'iteration {BAD_ITER}: non-finite loss ')
    assert f'loss={kind}' in message
    assert f'loss_mse={kind}' in message
    last = tmp_path / f'iter_{BAD_ITER - 1}.pth'
    assert f'last good checkpoint: {last}' in message
    # Nothing after the last good iteration was written.
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith('.pth')) \
        == ['iter_2.pth', 'iter_4.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_4.pth')
    saved = load(last)['state_dict']['linear.weight']
    assert torch.isfinite(saved).all()
    # The bad step never reached the weights.
    assert torch.equal(runner.model.linear.weight.detach(), saved)
    assert torch.equal(recorder.after[BAD_ITER - 1], saved)


def test_skip_leaves_that_step_out_and_trains_on(tmp_path):
    guard = NanGuardHook(action='skip')
    recorder = WeightRecorder()
    runner = make_runner(tmp_path, guard, hooks=[recorder])
    runner.train()
    assert guard.skipped == 1
    w = recorder.after
    assert torch.equal(w[BAD_ITER], w[BAD_ITER - 1])  # skipped: unchanged
    assert not torch.equal(w[BAD_ITER + 1], w[BAD_ITER])  # trains on
    final = load(tmp_path / 'iter_8.pth')
    assert torch.isfinite(final['state_dict']['linear.weight']).all()
    # AdamW stepped on every iteration but the bad one.
    steps = {float(s['step']) for s in final['optimizer']['state'].values()}
    assert steps == {7.0}
    logs = [open(osp.join(root, name)).read()
            for root, _, files in os.walk(tmp_path) for name in files
            if name.endswith('.log')]
    assert any(f'iteration {BAD_ITER}: non-finite loss loss=nan' in log
               and 'the step is skipped' in log for log in logs)
    # The guard is gone after training: the optimizer wrapper's own method.
    assert 'update_params' not in vars(runner.optim_wrapper)


def test_without_the_guard_nan_poisons_every_later_checkpoint(tmp_path):
    # What the guard prevents (and the control showing these tests can
    # fail): mmengine trains on and saves NaN weights.
    make_runner(tmp_path).train()
    for it in (6, 8):
        weight = load(tmp_path / f'iter_{it}.pth')['state_dict'][
            'linear.weight']
        assert torch.isnan(weight).all()


def test_skip_stops_after_too_many_in_a_row(tmp_path):
    data = make_data(bad_iters=range(3, 9))
    runner = make_runner(tmp_path, NanGuardHook('skip',
                                                max_consecutive_skips=2),
                         data)
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    assert str(err.value).startswith('iteration 5: non-finite loss')
    assert '3 iterations in a row (max_consecutive_skips=2)' in str(err.value)
    assert 'last good checkpoint' in str(err.value)


def test_bad_arguments():
    with pytest.raises(ValueError, match='action'):
        NanGuardHook(action='ignore')
    with pytest.raises(ValueError, match='max_consecutive_skips'):
        NanGuardHook(action='skip', max_consecutive_skips=0)


# Two processes, NaN on one of them only: both must skip the same step (one
# process leaving out backward alone would hang the gradient all-reduce)
# and stay identical.
DIST_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    import torch.distributed as dist
    sys.path.insert(0, sys.argv[1])
    from test_nan_guard import ToyModel, make_data
    from mmengine.runner import Runner
    from mobilenet_mm.engine import NanGuardHook
    from mobilenet_mm.apis.launch import init_cpu_distributed
    from mmengine.config import Config

    cfg = Config(dict(launcher='pytorch'))
    init_cpu_distributed(cfg)
    rank = dist.get_rank()
    guard = NanGuardHook(action='skip')
    torch.manual_seed(0)
    runner = Runner(
        model=ToyModel(), work_dir=sys.argv[2], default_scope='mmengine',
        launcher='pytorch', cfg=dict(model_wrapper_cfg=cfg.model_wrapper_cfg),
        train_dataloader=make_data(bad_iters=(3, ) if rank == 1 else ()),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=6),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=6, by_epoch=False)),
        custom_hooks=[guard])
    runner.train()
    weight = runner.model.module.linear.weight.detach().clone()
    others = [torch.zeros_like(weight) for _ in range(2)]
    dist.all_gather(others, weight)
    assert torch.equal(others[0], others[1]), others
    assert torch.isfinite(weight).all()
    state = runner.optim_wrapper.optimizer.state
    steps = {float(s['step']) for s in state.values()}
    assert guard.skipped == 1 and steps == {5.0}, (guard.skipped, steps)
    print(f'rank {rank} ok', flush=True)
''')


def test_distributed_processes_skip_together(tmp_path):
    script = tmp_path / 'nan_dist.py'
    script.write_text(DIST_SCRIPT)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = with_repo_on_path(dict(os.environ, OMP_NUM_THREADS='1'))
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={port}', str(script),
         osp.join(REPO, 'tests', 'engine'),
         str(tmp_path / 'work')],
        capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'rank 0 ok' in out and 'rank 1 ok' in out
    # (mmengine's logger shows rank 0's warnings only.)
    assert 'iteration 3: another process had a non-finite loss; the step ' \
        'is skipped' in out


def test_train_tool_stops_in_one_line_and_keeps_the_checkpoint(tmp_path):
    from mobilenet_mm.datasets import generate_coco_detection
    root = generate_coco_detection(
        str(tmp_path / 'coco'), num_train=4, num_val=2, size=(96, 96), seed=1)
    cfg = tmp_path / 'det.py'
    base = osp.join(REPO, 'tests', 'configs', 'tiny_det.py')
    cfg.write_text(f'_base_ = [{base!r}]\n'
                   f'train_dataloader = dict(dataset=dict(data_root={root!r}))'
                   '\nval_dataloader = None\nval_cfg = None\n'
                   'val_evaluator = None\n')
    work = tmp_path / 'work'

    def train(*extra):
        return run_tool(osp.join(REPO, 'tools', 'train.py'), cfg,
                        '--work-dir', work, *extra)

    proc = train('--cfg-options', 'train_cfg.max_iters=2')
    assert proc.returncode == 0, proc.stderr[-3000:]
    good = (work / 'iter_2.pth').read_bytes()
    # The run goes on from iteration 2 with a loss that turns NaN.
    proc = train('--resume', '--cfg-options', 'train_cfg.max_iters=4',
                 'model.bbox_head.loss_cls.loss_weight=nan')
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        'train.py: error: iteration 3: non-finite loss loss=nan '
        '(loss_cls=nan, loss_bbox='), lines[0]
    assert f'last good checkpoint: {work / "iter_2.pth"}' in lines[0]
    assert (work / 'iter_2.pth').read_bytes() == good
    assert not (work / 'iter_4.pth').exists()
    assert (work / 'last_checkpoint').read_text().endswith('iter_2.pth')


def test_train_tool_adds_a_guard_unless_the_config_has_one():
    from mmengine.config import Config

    from tools import train as train_tool

    def guards(cfg):
        train_tool.add_nan_guard(cfg)
        return [h for h in cfg.custom_hooks if 'NanGuardHook' in h['type']]

    plain = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    assert guards(plain) == [dict(type='mobilenet_mm.NanGuardHook',
                                  action='stop')]
    amp = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper')))
    assert guards(amp)[0]['action'] == 'skip'
    own = Config(dict(custom_hooks=[dict(type='mobilenet_mm.NanGuardHook',
                                         action='skip')]))
    assert guards(own) == [dict(type='mobilenet_mm.NanGuardHook',
                                action='skip')]
