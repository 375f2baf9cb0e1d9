"""A training run killed with SIGKILL and resumed with ``--resume`` ends
exactly where an uninterrupted run with the same seed ends.

The tiny RetinaNet config (tests/configs/tiny_det.py) trains on generated
data with a fixed seed, ``num_workers=0`` and a learning rate that changes
every iteration. One run goes through; a second, identical run is killed
(SIGKILL, no chance to clean up) once a checkpoint is written and at least
one more iteration has run, then resumed from its work dir. The resumed
run's per-iteration losses and learning rates and its final weights,
optimizer state and scheduler state must equal the uninterrupted run's,
and only the iterations after the last checkpoint are repeated.
"""
import glob
import json
import os
import os.path as osp
import re
import signal
import time

import pytest
import torch

from mobilenet_mm.datasets import generate_coco_detection

from tests.conftest import REPO, run_tool, start_tool

TRAIN = osp.join(REPO, 'tools', 'train.py')
MAX_ITERS = 40
INTERVAL = 5  # checkpoint interval


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('crash')
    root = generate_coco_detection(
        str(tmp / 'coco'), num_train=8, num_val=2, size=(96, 96), seed=1)
    path = tmp / 'det.py'
    base = osp.join(REPO, 'tests', 'configs', 'tiny_det.py')
    # The schedule changes the learning rate at every iteration (warm-up,
    # then cosine), so a resumed scheduler at the wrong step shows. Random
    # flips stay in: the data pipeline's randomness must replay too.
    path.write_text(f'''
_base_ = [{base!r}]
train_dataloader = dict(dataset=dict(data_root={root!r}))
val_dataloader = None
val_cfg = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=10,
         end={MAX_ITERS}, eta_min=1e-5),
]
train_cfg = dict(max_iters={MAX_ITERS}, val_interval=10000)
default_hooks = dict(checkpoint=dict(interval={INTERVAL}))
''')
    return str(path)


def train_args(cfg, work_dir, *extra):
    return [TRAIN, cfg, '--work-dir', work_dir, *extra]


def run(args):
    proc = run_tool(*args, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def iteration_records(work_dir):
    """{run dir: {iteration: scalars}} from each run's vis_data/scalars.json
    (full-precision floats, one line per logged iteration)."""
    runs = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        records = {}
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut by the kill
                    continue
                if 'loss' in record:
                    records[record['iter']] = record
        runs[path] = records
    return runs


def kill_after_checkpoint(cfg, work_dir, log_path):
    """Start a run and SIGKILL it once ``last_checkpoint`` names a checkpoint
    and a later iteration has been recorded in scalars.json. Returns the
    last recorded iteration. (mmengine's LoggerHook prints an iteration's
    text line before it appends its scalars, so the text log can be one
    iteration ahead of the records the test compares.)"""
    proc = start_tool(*train_args(cfg, work_dir), log=log_path)
    marker = work_dir / 'last_checkpoint'
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail('the run ended before it could be killed (exit '
                            f'{proc.returncode}): '
                            f'{log_path.read_text()[-2000:]}')
            if marker.is_file():
                named = re.search(r'iter_(\d+)\.pth', marker.read_text())
                if named and last_recorded_iteration(work_dir) > int(
                        named.group(1)):
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.01)
        else:
            pytest.fail('no checkpoint within 300 s')
    finally:
        if proc.poll() is None:  # a failed check above: do not leak it
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return last_recorded_iteration(work_dir)


def last_recorded_iteration(work_dir) -> int:
    """The last iteration with a complete line in any run's scalars.json."""
    return max((max(records) for records in
                iteration_records(work_dir).values() if records), default=0)


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def assert_close(a, b, where):
    """Nested dicts/lists of tensors and numbers are equal (tensors within
    float tolerance)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape, where
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7,
                                       msg=lambda m: f'{where}: {m}')
        else:
            assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), f'{where}: {set(a) ^ set(b)}'
        for key in a:
            assert_close(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f'{where}[{i}]')
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-6, abs=1e-12), where
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def assert_same_training_state(ckpt, ref, where):
    assert ckpt['meta']['iter'] == ref['meta']['iter'], where
    assert_close(ckpt['state_dict'], ref['state_dict'], f'{where} weights')
    assert_close(ckpt['optimizer'], ref['optimizer'], f'{where} optimizer')
    assert_close(ckpt['param_schedulers'], ref['param_schedulers'],
                 f'{where} param_schedulers')


def assert_same_iterations(records, reference, iterations, where):
    for it in iterations:
        for key in ('loss', 'loss_cls', 'loss_bbox', 'lr'):
            assert records[it][key] == pytest.approx(
                reference[it][key], rel=1e-6), f'{where}: iter {it} {key}'


def test_sigkill_then_resume_matches_uninterrupted_run(config, tmp_path):
    ref_dir, crash_dir = tmp_path / 'reference', tmp_path / 'crashed'
    run(train_args(config, ref_dir))
    (reference, ) = iteration_records(ref_dir).values()
    assert sorted(reference) == list(range(1, MAX_ITERS + 1))
    lrs = [reference[i]['lr'] for i in sorted(reference)]
    assert len(set(lrs)) > MAX_ITERS - 5  # the rate really moves

    last_logged = kill_after_checkpoint(config, crash_dir,
                                        tmp_path / 'crashed.log')
    saved = sorted(
        int(m.group(1)) for m in (re.fullmatch(r'iter_(\d+)\.pth', name)
                                  for name in os.listdir(crash_dir)) if m)
    assert saved and saved[-1] < MAX_ITERS, saved
    resumed_from = saved[-1]
    # At most the iterations since the last checkpoint are lost.
    assert resumed_from <= last_logged <= resumed_from + INTERVAL, (
        resumed_from, last_logged)
    # Up to the kill, the crashed run was the reference run.
    (crashed, ) = iteration_records(crash_dir).values()
    assert_same_iterations(crashed, reference, range(1, last_logged + 1),
                           'before the kill')
    assert_same_training_state(
        load(crash_dir / f'iter_{resumed_from}.pth'),
        load(ref_dir / f'iter_{resumed_from}.pth'), 'last checkpoint')

    log = run(train_args(config, crash_dir, '--resume'))
    assert f'resumed epoch: 0, iter: {resumed_from}' in log
    runs = iteration_records(crash_dir)
    resumed = runs[sorted(runs)[-1]]
    # The resumed run repeats the lost iterations and continues: iteration
    # counter, learning rate and losses (hence data order, weights and
    # optimizer state) as in the uninterrupted run.
    assert sorted(resumed) == list(range(resumed_from + 1, MAX_ITERS + 1))
    assert_same_iterations(resumed, reference,
                           range(resumed_from + 1, MAX_ITERS + 1),
                           'after resuming')
    assert_same_training_state(
        load(crash_dir / f'iter_{MAX_ITERS}.pth'),
        load(ref_dir / f'iter_{MAX_ITERS}.pth'), 'final checkpoint')
    steps = {float(s['step']) for s in load(
        crash_dir / f'iter_{MAX_ITERS}.pth')['optimizer']['state'].values()}
    assert steps == {float(MAX_ITERS)}  # AdamW's counter continued
