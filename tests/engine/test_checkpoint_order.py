"""Checkpoint saving never leaves the work dir without a complete checkpoint.

mmengine's ``CheckpointHook`` removes the checkpoint beyond
``max_keep_ckpts`` (and the previous best one) before it writes the new
file; ``mobilenet_mm.AtomicCheckpointHook`` writes first, then points
``last_checkpoint`` at the new file, then removes. Checked here:

* with a real mmengine Runner (in process): a save that fails (disk full)
  keeps the previous interval and best checkpoints, and the failure is one
  :class:`CheckpointSaveError` naming what is kept; a save that succeeds
  removes the outdated files after the new ones exist;
* with ``tools/train.py`` on the tiny segmentation config and
  ``max_keep_ckpts=1`` (what the demos ship): a SIGKILL during the write of
  a checkpoint, then ``--resume``, which goes on from the previous complete
  checkpoint (not from scratch) and then meets a full disk at the same
  checkpoint: one error line, the previous checkpoint is kept.

Faults are injected by tests/configs/checkpoint_write_fault.py.
"""
import errno
import glob
import os
import os.path as osp
import re
import signal
import time

import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader, TensorDataset

import mobilenet_mm  # noqa: F401  (atomic backend, hooks)
from mobilenet_mm.datasets import generate_cityscapes_segmentation
from mobilenet_mm.engine import AtomicLocalBackend
from mobilenet_mm.utils import (CheckpointSaveError, find_resume_checkpoint,
                                is_complete_checkpoint, read_last_checkpoint)

from tests.conftest import REPO, run_tool, start_tool  # noqa: E402
CONFIGS = osp.join(REPO, 'tests', 'configs')
TRAIN = osp.join(REPO, 'tools', 'train.py')
FAULT_ENV = 'MOBILENET_MM_TEST_CKPT_FAULT'


# ------------------------------------------------ in process, real Runner --

class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return {'loss': ((out - labels)**2).mean()}
        return [out]


class RisingScore(BaseMetric):
    """A score that improves at every validation: every one is a new best."""
    calls = 0

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        RisingScore.calls += 1
        return {'score': float(RisingScore.calls)}


def toy_runner(work_dir, name):
    data = TensorDataset(torch.randn(8, 2), torch.randn(8, 1))
    RisingScore.calls = 0
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        default_scope='mmengine',
        train_dataloader=DataLoader(data, batch_size=4),
        val_dataloader=DataLoader(data, batch_size=4),
        val_evaluator=Evaluator(RisingScore()),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=2),
        default_hooks=dict(
            checkpoint=dict(
                type='mobilenet_mm.AtomicCheckpointHook', interval=2,
                by_epoch=False, max_keep_ckpts=1, save_best='score',
                rule='greater')))


def fail_writes_of(monkeypatch, names):
    real_put = AtomicLocalBackend.put

    def put(self, obj, filepath):
        if osp.basename(str(filepath)) in names:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                          str(filepath))
        return real_put(self, obj, filepath)

    monkeypatch.setattr(AtomicLocalBackend, 'put', put)


def checkpoints(work_dir):
    return sorted(n for n in os.listdir(work_dir) if n.endswith('.pth'))


def test_successful_saves_remove_outdated_files_after_writing(tmp_path):
    toy_runner(tmp_path, 'ok').train()
    # iter 2: iter_2 and best_score_iter_2; iter 4 replaces both.
    assert checkpoints(tmp_path) == ['best_score_iter_4.pth', 'iter_4.pth']
    named, _ = read_last_checkpoint(str(tmp_path))
    assert osp.basename(named) == 'iter_4.pth'
    assert all(
        is_complete_checkpoint(str(tmp_path / n))
        for n in checkpoints(tmp_path))


@pytest.mark.parametrize('failing, kept, named', [
    # The interval save at iteration 4 fails: both files of iteration 2
    # stay.
    ('iter_4.pth', ['best_score_iter_2.pth', 'iter_2.pth'], 'iter_2.pth'),
    # iter_4.pth is written (and iter_2.pth, beyond max_keep_ckpts=1, then
    # removed); the new best fails: the previous best stays.
    ('best_score_iter_4.pth', ['best_score_iter_2.pth', 'iter_4.pth'],
     'best_score_iter_2.pth'),
])
def test_failed_save_keeps_previous_checkpoints(tmp_path, monkeypatch,
                                                failing, kept, named):
    fail_writes_of(monkeypatch, {failing})
    with pytest.raises(CheckpointSaveError) as info:
        toy_runner(tmp_path, 'fail').train()
    message = str(info.value)
    assert '\n' not in message
    assert 'No space left on device' in message and 'nothing was removed' \
        in message, message
    assert f'{tmp_path / named} is kept' in message, message
    assert checkpoints(tmp_path) == kept
    assert all(
        is_complete_checkpoint(str(tmp_path / n))
        for n in checkpoints(tmp_path))
    named, _ = read_last_checkpoint(str(tmp_path))
    assert is_complete_checkpoint(named), named
    assert find_resume_checkpoint(str(tmp_path)) == named


def test_last_checkpoint_directory_is_refused_before_training(tmp_path):
    (tmp_path / 'last_checkpoint').mkdir()
    runner = toy_runner(tmp_path, 'dir')
    with pytest.raises(CheckpointSaveError, match='is a directory'):
        runner.train()
    assert checkpoints(tmp_path) == []


# --------------------------------------------- tools/train.py, subprocess --

@pytest.fixture(scope='module')
def seg_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('order')
    root = generate_cityscapes_segmentation(
        str(tmp / 'city'), num_train=4, num_val=1, size=(64, 128), seed=0)
    path = tmp / 'seg.py'
    path.write_text(f'''
_base_ = [{osp.join(CONFIGS, 'tiny_seg.py')!r}]
custom_imports = dict(imports=['mobilenet_mm', 'checkpoint_write_fault'],
                      allow_failed_imports=False)
train_dataloader = dict(dataset=dict(data_root={root!r}))
val_dataloader = None
val_cfg = None
val_evaluator = None
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=1))
''')
    return str(path)


def train(cfg, work_dir, *extra, fault=None):
    return run_tool(TRAIN, cfg, '--work-dir', work_dir, *extra,
                    paths=[CONFIGS], env={FAULT_ENV: fault} if fault else {})


def assert_only_complete_iter(work_dir, step):
    """``iter_<step>.pth`` is the one checkpoint, complete, and
    ``last_checkpoint`` names it."""
    assert checkpoints(work_dir) == [f'iter_{step}.pth']
    assert is_complete_checkpoint(str(work_dir / f'iter_{step}.pth'))
    named, problem = read_last_checkpoint(str(work_dir))
    assert named is not None, problem
    assert osp.basename(named) == f'iter_{step}.pth'


def test_killed_then_failed_save_resumes_from_previous_checkpoint(
        seg_config, tmp_path):
    work = tmp_path / 'work'
    # 1. Killed (SIGKILL) while iter_4.pth is half written: iter_2.pth and
    #    the last_checkpoint naming it stay.
    proc = start_tool(TRAIN, seg_config, '--work-dir', work,
                      log=tmp_path / 'killed.log', paths=[CONFIGS],
                      env={FAULT_ENV: 'stall:iter_4.pth'})
    deadline = time.time() + 240
    partial = []
    while not partial and time.time() < deadline:
        assert proc.poll() is None, (tmp_path / 'killed.log').read_text()
        partial = glob.glob(str(work / '.iter_4.pth.*.tmp'))
        time.sleep(0.2)
    assert partial, 'the write of iter_4.pth never started'
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert_only_complete_iter(work, 2)

    # 2. --resume goes on from iteration 2 (not from scratch), removes the
    #    killed writer's temporary file, and meets a full disk at iter_4:
    #    one error line, iter_2.pth is kept.
    proc = train(seg_config, work, '--resume', fault='enospc:iter_4.pth')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert 'resumed epoch: 0, iter: 2' in out, out[-3000:]
    assert re.search(r'removed \.iter_4\.pth\.\S+\.tmp', out), out[-3000:]
    assert not glob.glob(str(work / '.*.tmp'))
    # Warnings of the build may come first; the error is the last line.
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if ': error: ' in line]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0]), \
        proc.stderr[-3000:]
    assert 'iter_4.pth' in errors[0] and 'No space left' in errors[0] and \
        f'{work}/iter_2.pth is kept' in errors[0], errors[0]
    assert_only_complete_iter(work, 2)
