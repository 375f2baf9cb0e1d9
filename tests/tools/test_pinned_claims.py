"""Defensive checks and README claims, each by a test that fails when the
check or the feature is switched off.

* The unpickling allow-list, as an exact set of names.
* The weight converter's tensor-kind check (shapes alone would pass).
* The shape check of ``tools/test.py`` and ``tools/train.py --resume``
  (mmengine alone only warns and loads what fits).
* ``tools/train.py``: ``last_checkpoint`` and the checkpoints are written
  to a temporary file and renamed (never opened for writing under their
  own name), and ``--resume`` skips an empty ``last_checkpoint`` and a
  truncated newest checkpoint.
* ``--amp`` without a GPU is refused in one line.
* ``--launcher slurm`` takes the master from ``SLURM_NODELIST``.
* A NaN loss on one process stops every process at the same iteration.
"""
import importlib
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import mobilenet_mm  # noqa: F401
from mobilenet_mm.datasets import generate_coco_detection
from mobilenet_mm.errors import CLIError
from mobilenet_mm.utils.checkpoint import check_state_dict_matches
from mobilenet_mm.utils import checkpoint_safe_globals

from tests import conftest  # noqa: E402
from tests.conftest import REPO  # noqa: E402
CONFIGS = osp.join(REPO, 'tests', 'configs')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')


def run_tool(*args, **env):
    extra = [env.pop('PYTHONPATH')] if 'PYTHONPATH' in env else []
    return conftest.run_tool(*args, paths=extra, env=env)


def assert_ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def one_line_error(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr and len(lines) == 1, \
        proc.stderr[-3000:]
    return lines[0]


# ---------------------------------------------------------- allow-list --

def test_unpickling_allow_list_is_exactly_the_mmengine_types():
    from mobilenet_mm.utils.checkpoint import _history_buffer_method
    names = []
    for entry in checkpoint_safe_globals():
        if isinstance(entry, tuple):
            obj, name = entry
        else:
            obj, name = entry, f'{entry.__module__}.{entry.__qualname__}'
        names.append(name)
        if name == 'builtins.getattr':
            assert obj is _history_buffer_method
    assert len(names) == len(set(names))
    # The dtype classes of bool and the fixed-size numbers (numpy 2 names;
    # np.dtype('l') and np.dtype('q') are both int64 here).
    dtypes = {f'numpy.dtypes.{type(np.dtype(c)).__name__}'
              for c in '?bBhHiIlLqQefdFD'}
    assert dtypes == {
        'numpy.dtypes.BoolDType', 'numpy.dtypes.Int8DType',
        'numpy.dtypes.UInt8DType', 'numpy.dtypes.Int16DType',
        'numpy.dtypes.UInt16DType', 'numpy.dtypes.Int32DType',
        'numpy.dtypes.UInt32DType', 'numpy.dtypes.Int64DType',
        'numpy.dtypes.UInt64DType', 'numpy.dtypes.LongLongDType',
        'numpy.dtypes.ULongLongDType', 'numpy.dtypes.Float16DType',
        'numpy.dtypes.Float32DType', 'numpy.dtypes.Float64DType',
        'numpy.dtypes.Complex64DType', 'numpy.dtypes.Complex128DType'}
    assert set(names) == {
        'mmengine.logging.history_buffer.HistoryBuffer',
        'numpy.ndarray', 'numpy.dtype', 'builtins.getattr',
        'numpy._core.multiarray._reconstruct',
        'numpy._core.multiarray.scalar',
        'numpy.core.multiarray._reconstruct',
        'numpy.core.multiarray.scalar',
    } | dtypes


# ------------------------------------------------------ weight converter --

def test_converter_refuses_a_tensor_of_another_kind_with_the_same_shape():
    from mobilenet_mm.analysis.model_stats import build_reference_classifier
    from mobilenet_mm.models.backbones import MobileNetV3
    from mobilenet_mm.models.weight_conversion import \
        convert_reference_state_dict
    torch.manual_seed(0)
    state = build_reference_classifier('torchvision',
                                       'mobilenet_v3_small').state_dict()
    backbone = MobileNetV3(arch='small')
    converted, _ = convert_reference_state_dict(state, backbone)
    assert converted['stages.0.0.norm.bias'] is state['features.0.1.bias']
    # The stem BN's bias under another name: every tensor of that BN still
    # has the shape (16,), so only the kind tells the pairs apart.
    renamed = {('features.0.1.gamma' if k == 'features.0.1.bias' else k): v
               for k, v in state.items()}
    with pytest.raises(ValueError, match=(
            r'features\.0\.1\.running_mean \(16,\) would load into '
            r'stages\.0\.0\.norm\.bias \(16,\)')):
        convert_reference_state_dict(renamed, backbone)


# ------------------------------------------------- the tools, end to end --

WRITE_PROBE = textwrap.dedent('''
    """Records, into $MM_WRITE_PROBE, every open() for writing of a file
    named last_checkpoint or *.pth and every os.replace()."""
    import builtins
    import json
    import os

    _log, _open, _replace = os.environ['MM_WRITE_PROBE'], builtins.open, \\
        os.replace


    def _record(*event):
        with _open(_log, 'a') as f:
            f.write(json.dumps([str(e) for e in event]) + '\\n')


    def probed_open(file, mode='r', *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(
                c in mode for c in 'wax+'):
            name = os.path.basename(os.fspath(file))
            if name == 'last_checkpoint' or name.endswith('.pth'):
                _record('open', os.path.realpath(file))
        return _open(file, mode, *args, **kwargs)


    def probed_replace(src, dst, *args, **kwargs):
        _record('replace', os.path.realpath(src), os.path.realpath(dst))
        return _replace(src, dst, *args, **kwargs)


    builtins.open, os.replace = probed_open, probed_replace
''')


def config_text(root, *imports):
    return textwrap.dedent(f'''
        _base_ = [{osp.join(CONFIGS, 'tiny_det.py')!r}]
        custom_imports = dict(imports={['mobilenet_mm', *imports]!r},
                              allow_failed_imports=False)
        img_scale = (64, 64)
        train_dataloader = dict(dataset=dict(data_root={root!r}))
        val_dataloader = dict(dataset=dict(data_root={root!r}))
        test_dataloader = val_dataloader
        val_evaluator = dict(
            ann_file={root!r} + '/annotations/instances_val2017.json')
        test_evaluator = val_evaluator
        ''')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """tiny_det trained 4 iterations (checkpoints at 2 and 4) by
    tools/train.py, with the write probe loaded through custom_imports
    (``probed.py``); ``det.py`` is the same config without the probe."""
    tmp = tmp_path_factory.mktemp('pinned_tools')
    root = generate_coco_detection(str(tmp / 'coco'), num_train=4,
                                   num_val=2, size=(64, 64), seed=1)
    (tmp / 'mm_write_probe.py').write_text(WRITE_PROBE)
    (tmp / 'probed.py').write_text(config_text(root, 'mm_write_probe'))
    (tmp / 'det.py').write_text(config_text(root))
    work = tmp / 'work'
    probe_log = tmp / 'writes.jsonl'
    log = assert_ok(run_tool(TRAIN, tmp / 'probed.py', '--work-dir', work,
                             MM_WRITE_PROBE=str(probe_log),
                             PYTHONPATH=str(tmp)))
    events = [json.loads(line) for line in probe_log.read_text().splitlines()]
    return dict(cfg=str(tmp / 'det.py'), work=work, log=log, events=events)


def load_tool(path):
    """The tool at ``path`` as a module of the ``tools`` package."""
    name = osp.splitext(osp.relpath(path, REPO))[0].replace(osp.sep, '.')
    return importlib.import_module(name)


def run_in_process(path, argv, capsys, monkeypatch):
    """``tools/<tool>.py argv`` in this process, as its ``__main__`` runs
    it (conftest.run_tool_in_process): (exit status, stderr lines)."""
    monkeypatch.setenv('LOCAL_RANK', '0')  # set_launcher sets it otherwise
    return conftest.run_tool_in_process(
        osp.relpath(path, osp.join(REPO, 'tools')), argv, capsys)


def test_train_tool_writes_last_checkpoint_and_checkpoints_atomically(
        trained):
    work = osp.realpath(trained['work'])
    marker = osp.join(work, 'last_checkpoint')
    opened = [e[1] for e in trained['events'] if e[0] == 'open']
    replaced = {e[2]: e[1] for e in trained['events'] if e[0] == 'replace'}
    # Nothing opened for writing under its final name ...
    for final in (marker, osp.join(work, 'iter_2.pth'),
                  osp.join(work, 'iter_4.pth')):
        assert final not in opened, trained['events']
        # ... each was renamed into place from a hidden temporary file in
        # the same directory.
        src = replaced[final]
        assert osp.dirname(src) == work
        assert osp.basename(src).startswith(f'.{osp.basename(final)}.')
        assert src.endswith('.tmp') and not osp.exists(src)
    with open(marker) as f:
        assert f.read().strip().endswith('iter_4.pth')


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.fixture
def broken_work_dir(trained, tmp_path):
    """The trained work dir with its newest checkpoint cut in half."""
    import shutil
    work = tmp_path / 'work'
    shutil.copytree(trained['work'], work)
    truncate(work / 'iter_4.pth')
    return work


def test_resume_skips_a_truncated_checkpoint_named_by_last_checkpoint(
        trained, broken_work_dir):
    work = broken_work_dir
    # What a crashed non-atomic writer leaves: the marker names a file
    # that was cut short.
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    logs_before = set(work.glob('*/*.log'))
    assert_ok(run_tool(TRAIN, trained['cfg'], '--work-dir', work,
                       '--resume'))
    (log_file, ) = set(work.glob('*/*.log')) - logs_before
    log = log_file.read_text()
    assert 'resumed epoch: 0, iter: 2' in log, log[-3000:]
    iters = [int(m) for m in re.findall(r'Iter\(train\) \[(\d+)/4\]', log)]
    assert iters == [3, 4]
    assert torch.load(work / 'iter_4.pth', map_location='cpu',
                      weights_only=False)['meta']['iter'] == 4


def test_resume_skips_an_empty_last_checkpoint(broken_work_dir):
    from mmengine.config import Config
    work = broken_work_dir
    (work / 'last_checkpoint').write_text('')  # a writer killed mid-write
    cfg = Config(dict(resume=False, load_from=None))
    load_tool(TRAIN).set_resume(cfg, 'auto', str(work))
    assert cfg.resume is True and cfg.load_from == str(work / 'iter_2.pth')


def test_resume_without_a_marker_takes_the_newest_complete_checkpoint(
        trained, tmp_path):
    import shutil
    from mmengine.config import Config
    work = tmp_path / 'work'
    shutil.copytree(trained['work'], work)
    (work / 'last_checkpoint').write_text('')
    cfg = Config(dict(resume=False, load_from=None))
    load_tool(TRAIN).set_resume(cfg, 'auto', str(work))
    assert cfg.resume is True and cfg.load_from == str(work / 'iter_4.pth')


@pytest.fixture(scope='module')
def reshaped_checkpoint(trained, tmp_path_factory):
    """iter_2.pth with the right keys but one tensor of another shape."""
    saved = torch.load(trained['work'] / 'iter_2.pth', map_location='cpu',
                       weights_only=False)
    key = 'bbox_head.retina_cls.weight'
    shape = tuple(saved['state_dict'][key].shape)
    saved['state_dict'][key] = torch.zeros(shape[0] + 6, *shape[1:])
    path = tmp_path_factory.mktemp('reshaped') / 'reshaped.pth'
    torch.save(saved, path)
    return path, key, shape


def test_check_shapes_refuses_only_when_asked(trained, reshaped_checkpoint):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    path, key, _ = reshaped_checkpoint
    state = torch.load(path, map_location='cpu',
                       weights_only=False)['state_dict']
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(trained['cfg']).model)
    check_state_dict_matches(model, state, str(path), check_shapes=False)
    with pytest.raises(CLIError, match=f'{re.escape(key)} has shape'):
        check_state_dict_matches(model, state, str(path))


@pytest.mark.parametrize('tool', ['test.py', 'train.py --resume'])
def test_tools_refuse_a_checkpoint_of_another_shape(
        trained, reshaped_checkpoint, tmp_path, tool, capsys, monkeypatch):
    path, key, shape = reshaped_checkpoint
    work = tmp_path / 'work'
    args = ([TEST, trained['cfg'], path] if tool == 'test.py' else
            [TRAIN, trained['cfg'], '--resume', path])
    status, err = run_in_process(
        args[0], args[1:] + ['--work-dir', work, '--cfg-options',
                             f'experiment_name=reshaped_{tmp_path.name}'],
        capsys, monkeypatch)
    assert status == 1 and len(err) == 1, err
    assert f'{path} does not match the model: {key} has shape ' \
        f'({shape[0] + 6}, {", ".join(map(str, shape[1:]))}) in the file, ' \
        f'{shape} in the model' in err[0], err
    assert not list(work.glob('*.pth'))


def test_amp_without_a_gpu_is_refused_in_one_line(tmp_path, monkeypatch,
                                                  capsys):
    import mmengine.device as device
    for name in ('is_cuda_available', 'is_npu_available', 'is_mlu_available',
                 'is_musa_available'):
        monkeypatch.setattr(device, name, lambda: False)
    work = tmp_path / 'work'
    status, err = run_in_process(
        TRAIN, [osp.join(CONFIGS, 'tiny_det.py'), '--amp', '--work-dir',
                work], capsys, monkeypatch)
    assert status == 1 and len(err) == 1, err
    # (The program name in front is the tool's path here, train.py for
    # users.)
    assert err[0].endswith(
        ": error: --amp needs a GPU (mmengine's AmpOptimWrapper runs on "
        'CUDA, NPU, MLU or MUSA) and there is none here'), err
    assert not work.exists()


# -------------------------------------------------------------- slurm --

def test_slurm_master_is_the_first_node_of_the_nodelist(tmp_path,
                                                        monkeypatch):
    from mobilenet_mm.apis.launch import _cpu_dist_env
    calls = tmp_path / 'scontrol_calls'
    scontrol = tmp_path / 'scontrol'
    # What slurm's scontrol prints: one host name per line.
    scontrol.write_text(textwrap.dedent(f'''\
        #!/bin/sh
        echo "$@" >> {calls}
        echo gpu-node07
        echo gpu-node08
        echo gpu-node12
        '''))
    scontrol.chmod(0o755)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    for name in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE',
                 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('SLURM_NODELIST', 'gpu-node[07-08],gpu-node12')
    monkeypatch.setenv('SLURM_PROCID', '5')
    monkeypatch.setenv('SLURM_NTASKS', '8')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    assert _cpu_dist_env('slurm') == (5, 8)
    assert calls.read_text().split() == ['show', 'hostname',
                                         'gpu-node[07-08],gpu-node12']
    assert os.environ['MASTER_ADDR'] == 'gpu-node07'
    assert os.environ['MASTER_PORT'] == '29500'
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'],
            os.environ['LOCAL_RANK']) == ('5', '8', '1')
    # dist_cfg.port (mmengine's slurm option) wins over the default.
    monkeypatch.delenv('MASTER_PORT')
    _cpu_dist_env('slurm', port=29611)
    assert os.environ['MASTER_PORT'] == '29611'


# ------------------------------------------------ NaN: stop together --

DIST_STOP_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    from mmengine.config import Config
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader, TensorDataset

    from mobilenet_mm.engine import NanGuardHook, NonFiniteLossError
    from mobilenet_mm.apis.launch import init_cpu_distributed


    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, targets=None, mode='tensor'):
            out = self.linear(inputs)
            if mode == 'loss':
                return {'loss': ((out - targets) ** 2).mean()}
            return out


    cfg = Config(dict(launcher='pytorch',
                      env_cfg=dict(dist_cfg=dict(timeout=60))))
    init_cpu_distributed(cfg)
    rank = dist.get_rank()
    gen = torch.Generator().manual_seed(rank)
    x, y = torch.randn(16, 2, generator=gen), torch.randn(16, 1, generator=gen)
    if rank == 1:
        x[4:6] = float('nan')  # iteration 3 of batches of 2, on rank 1 only
    torch.manual_seed(0)
    runner = Runner(
        model=Toy(), work_dir=sys.argv[1], default_scope='mmengine',
        launcher='pytorch', cfg=dict(model_wrapper_cfg=cfg.model_wrapper_cfg),
        train_dataloader=DataLoader(TensorDataset(x, y), batch_size=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=8),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=2, by_epoch=False)),
        custom_hooks=[NanGuardHook(action='stop')])
    try:
        runner.train()
        print(f'rank {rank} trained on', flush=True)
    except NonFiniteLossError as error:
        weight = runner.model.module.linear.weight.detach().clone()
        both = [torch.zeros_like(weight) for _ in range(2)]
        dist.all_gather(both, weight)
        assert torch.equal(both[0], both[1]) and torch.isfinite(weight).all()
        print(f'rank {rank} stopped at {runner.iter + 1}: {error}',
              flush=True)
    dist.destroy_process_group()
''')


def test_nan_on_one_process_stops_every_process_together(tmp_path):
    script = tmp_path / 'nan_stop.py'
    script.write_text(DIST_STOP_SCRIPT)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={port}', str(script), str(tmp_path / 'work')],
        capture_output=True, text=True, env=conftest.tool_env(), timeout=240)
    out = assert_ok(proc)
    assert 'trained on' not in out, out[-3000:]
    assert re.search(r'rank 0 stopped at 3: iteration 3: another process had'
                     r' a non-finite loss; training stopped', out), out[-3000:]
    assert re.search(r'rank 1 stopped at 3: iteration 3 \(rank 1\): '
                     r'non-finite loss loss=nan', out), out[-3000:]
    # The last good checkpoint is the one before the bad step.
    assert 'last good checkpoint: ' in out and 'iter_2.pth' in out
    assert not (tmp_path / 'work' / 'iter_4.pth').exists()
