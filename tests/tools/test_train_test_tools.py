"""tools/train.py and tools/test.py, run as users run them (subprocesses).

A tiny mmdet config and a tiny mmseg config (tests/configs/) train a few
iterations on data generated here, resume (iteration counter, optimizer and
scheduler state continue), and are evaluated; bad input gives one line.
"""
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import pytest
import torch

from mobilenet_mm.datasets import (generate_cityscapes_segmentation,
                                   generate_coco_detection)

from tests import conftest
from tests.conftest import REPO

CONFIGS = osp.join(REPO, 'tests', 'configs')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')


def run_tool(*args):
    """Our tool in the repository, tests/configs on the path too (its
    ``state_probe`` module)."""
    return conftest.run_tool(*args, paths=(CONFIGS, ))


def assert_ok(proc):
    assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-3000:])


def assert_one_line_error(proc, *fragments):
    """Exit status != 0 and stderr is one line holding all fragments."""
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write_config(path, base, root, det):
    """A config inheriting ``base`` with its data sets under ``root``."""
    lines = [
        f'_base_ = [{osp.join(CONFIGS, base)!r}]',
        f'root = {root!r}',
        'train_dataloader = dict(dataset=dict(data_root=root))',
        'val_dataloader = dict(dataset=dict(data_root=root))',
        'test_dataloader = val_dataloader',
    ]
    if det:
        lines += [
            "val_evaluator = dict(ann_file=root + "
            "'/annotations/instances_val2017.json')",
            'test_evaluator = val_evaluator',
        ]
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def add_probe(path, base_cfg, probe_file):
    path.write_text(
        f'_base_ = [{base_cfg!r}]\n'
        "custom_imports = dict(imports=['mobilenet_mm', 'state_probe'], "
        'allow_failed_imports=False)\n'
        f"custom_hooks = [dict(type='MobilenetMMStateProbeHook', "
        f'out_file={str(probe_file)!r})]\n')
    return str(path)


@pytest.fixture(scope='module')
def det_cfg(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('det')
    root = generate_coco_detection(
        str(tmp / 'coco'), num_train=8, num_val=4, size=(96, 96), seed=1)
    return write_config(tmp / 'det.py', 'tiny_det.py', root, det=True)


@pytest.fixture(scope='module')
def seg_cfg(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('seg')
    root = generate_cityscapes_segmentation(
        str(tmp / 'cityscapes'), num_train=6, num_val=3, size=(64, 128),
        seed=1)
    return write_config(tmp / 'seg.py', 'tiny_seg.py', root, det=False)


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def load_pickle(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


def assert_state_equal(a, b, where='state'):
    """Recursive equality of nested dicts/lists of tensors and numbers."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_state_equal(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_state_equal(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def train_resume_and_check(cfg, tmp_path, resume_arg):
    """Train 4 iterations, resume to 6; check what resume carried over."""
    work = tmp_path / 'work'
    assert_ok(run_tool(TRAIN, cfg, '--work-dir', work))
    for name in ('iter_2.pth', 'iter_4.pth', 'last_checkpoint'):
        assert (work / name).is_file(), name
    assert (work / 'last_checkpoint').read_text().strip().endswith(
        'iter_4.pth')
    # The atomic hook staged last_checkpoint and cleaned up after itself.
    assert not (work / '.last_checkpoint_staging').exists()
    saved = load(work / 'iter_4.pth')
    assert saved['meta']['iter'] == 4
    assert saved['optimizer']['state'], 'optimizer state was not saved'

    probe = tmp_path / 'probe.pth'
    probe_cfg = add_probe(tmp_path / 'probe_cfg.py', cfg, probe)
    resume = ['--resume'] + ([str(work / resume_arg)] if resume_arg else [])
    proc = run_tool(TRAIN, probe_cfg, '--work-dir', work, *resume,
                    '--cfg-options', 'train_cfg.max_iters=6')
    assert_ok(proc)
    log = proc.stdout + proc.stderr
    assert 'AtomicCheckpointHook' in log
    assert 'resumed epoch: 0, iter: 4' in log
    iters = [int(m) for m in re.findall(r'Iter\(train\) \[(\d+)/6\]', log)]
    assert iters == [5, 6], iters
    # What training restarted from is exactly what iter_4.pth held.
    started = load(probe)
    assert started['iter'] == 4
    assert_state_equal(started['optimizer'], saved['optimizer'], 'optimizer')
    assert_state_equal(started['param_schedulers'], saved['param_schedulers'],
                       'param_schedulers')
    final = load(work / 'iter_6.pth')
    assert final['meta']['iter'] == 6
    # AdamW counts steps: 6 means the state continued (a restart gives 2).
    steps = {float(s['step']) for s in final['optimizer']['state'].values()}
    assert steps == {6.0}, steps
    return work


def test_det_train_resume_test(det_cfg, tmp_path):
    work = train_resume_and_check(det_cfg, tmp_path, resume_arg=None)
    out = tmp_path / 'preds.pkl'
    proc = run_tool(TEST, det_cfg, work / 'iter_6.pth', '--work-dir',
                    tmp_path / 'test', '--out', out, '--show-dir', 'painted')
    assert_ok(proc)
    plain_log = proc.stdout
    assert re.search(r'coco/bbox_mAP: [\d.]+',
                     proc.stdout), proc.stdout[-2000:]
    preds = load_pickle(out)
    assert len(preds) == 4
    assert {'img_id', 'img_path', 'pred_instances'} <= set(preds[0])
    assert preds[0]['pred_instances']['bboxes'].shape[-1] == 4
    painted = [f for _, _, files in os.walk(tmp_path / 'test')
               for f in files if f.endswith('.jpg')]
    assert len(painted) == 4

    # --fuse folds the BNs after the checkpoint is loaded: same detections.
    fused_out = tmp_path / 'fused.pkl'
    proc = run_tool(TEST, det_cfg, work / 'iter_6.pth', '--work-dir',
                    tmp_path / 'test_fused', '--out', fused_out, '--fuse')
    assert_ok(proc)
    assert re.search(r'FuseConvBNHook: folded [1-9]\d* batch norms',
                     proc.stdout + proc.stderr)
    metric = re.compile(r'bbox_mAP_copypaste: [-\d. ]+')
    assert metric.search(proc.stdout).group() == metric.search(
        plain_log).group()
    # Sorted scores: float noise may swap two near-equal detections.
    for plain, fused in zip(preds, load_pickle(fused_out)):
        plain, fused = plain['pred_instances'], fused['pred_instances']
        assert len(plain['scores']) == len(fused['scores']) > 0
        torch.testing.assert_close(fused['scores'].sort().values,
                                   plain['scores'].sort().values,
                                   rtol=1e-4, atol=1e-5)


def test_seg_train_resume_test(seg_cfg, tmp_path):
    work = train_resume_and_check(seg_cfg, tmp_path, resume_arg='iter_4.pth')
    out = tmp_path / 'preds.pkl'
    show = tmp_path / 'painted'
    proc = run_tool(TEST, seg_cfg, work / 'iter_6.pth', '--work-dir',
                    tmp_path / 'test', '--out', out, '--show-dir', show)
    assert_ok(proc)
    assert re.search(r'mIoU: [\d.]+', proc.stdout), proc.stdout[-2000:]
    preds = load_pickle(out)
    assert len(preds) == 3
    assert preds[0]['pred_sem_seg'].shape == (64, 128)
    assert preds[0]['img_path'].endswith('_leftImg8bit.png')
    painted = [f for _, _, files in os.walk(show) for f in files
               if f.endswith('.png')]
    assert len(painted) == 3


@pytest.mark.parametrize('tool', [TRAIN, TEST])
def test_missing_config_is_one_line(tool, tmp_path):
    missing = tmp_path / 'no_such_config.py'
    extra = [tmp_path / 'x.pth'] if tool == TEST else []
    assert_one_line_error(run_tool(tool, missing, *extra),
                          f'config file does not exist: {missing}')


@pytest.mark.parametrize('base', ['tiny', 'mmdet'])
def test_missing_data_root_is_one_line(tmp_path, base):
    missing = tmp_path / 'no_such_data'
    if base == 'tiny':
        cfg = write_config(tmp_path / 'cfg.py', 'tiny_det.py', str(missing),
                           det=True)
    else:  # mmdet's own bases (their import path once warned on stderr)
        cfg = tmp_path / 'cfg.py'
        root = str(missing)
        cfg.write_text(
            "_base_ = ['mmdet::_base_/datasets/coco_detection.py',\n"
            "          'mmdet::_base_/default_runtime.py']\n"
            f'train_dataloader = dict(dataset=dict(data_root={root!r}))\n')
    assert_one_line_error(
        run_tool(TRAIN, cfg, '--work-dir', tmp_path / 'work'),
        f'dataset root does not exist: {missing}',
        'train_dataloader.dataset.data_root')


def test_missing_test_data_prefix_is_one_line(seg_cfg, tmp_path):
    ckpt = tmp_path / 'any.pth'
    torch.save({'state_dict': {}}, ckpt)
    assert_one_line_error(
        run_tool(TEST, seg_cfg, ckpt, '--cfg-options',
                 'test_dataloader.dataset.data_prefix.img_path=nowhere'),
        'dataset folder does not exist', 'nowhere',
        'test_dataloader.dataset.data_prefix.img_path')


@pytest.fixture
def wrong_checkpoint(tmp_path):
    path = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'foo.weight': torch.zeros(1)}, 'meta': {}},
               path)
    return path


def test_test_mismatched_checkpoint_is_one_line(det_cfg, wrong_checkpoint,
                                                 tmp_path):
    line = assert_one_line_error(
        run_tool(TEST, det_cfg, wrong_checkpoint, '--work-dir', tmp_path),
        f'{wrong_checkpoint} does not match the model',
        'missing keys (first: backbone.',
        '1 unexpected keys (first: foo.weight)')
    assert line.startswith('test.py: error:')


def test_train_load_from_mismatch_is_one_line(det_cfg, wrong_checkpoint,
                                               tmp_path):
    assert_one_line_error(
        run_tool(TRAIN, det_cfg, '--work-dir', tmp_path / 'work',
                 '--cfg-options', f'load_from={wrong_checkpoint}'),
        'load_from checkpoint', 'does not match the model',
        'missing keys (first: backbone.',
        'unexpected keys (first: foo.weight)')


def test_malicious_checkpoint_refused_by_test_tool(seg_cfg, tmp_path):
    marker = tmp_path / 'PWNED'
    evil = tmp_path / 'evil.pth'
    code = ('import os, sys, torch\n'
            'class Evil:\n'
            '    def __reduce__(self):\n'
            f'        return (os.system, ("touch {marker}",))\n'
            'torch.save({"state_dict": {}, "x": Evil()}, '
            f'{str(evil)!r})\n')
    subprocess.run([sys.executable, '-c', code], check=True)
    assert evil.is_file() and not marker.exists()
    assert_one_line_error(
        run_tool(TEST, seg_cfg, evil, '--work-dir', tmp_path / 'work'),
        f'refusing to load checkpoint {evil}',
        f'{os.system.__module__}.system')
    assert not marker.exists()
