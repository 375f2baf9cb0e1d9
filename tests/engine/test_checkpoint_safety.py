"""Safe checkpoint loading (torch >= 2.6) and atomic checkpoint writing."""
import os
import os.path as osp
import pickle
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch
import torch.nn as nn
from mmengine.fileio import get_file_backend
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel, BaseModule
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (CheckpointLoader, _load_checkpoint,
                                        save_checkpoint)
from torch.utils.data import DataLoader, TensorDataset

import mobilenet_mm  # noqa: F401  (installs the loader and the backend)
from mobilenet_mm.engine import AtomicLocalBackend, load_from_local_safe
from mobilenet_mm.utils import (CheckpointLoadError, UnsafeCheckpointError,
                                atomic_write, checkpoint_safe_globals,
                                find_resume_checkpoint, safe_torch_load)

from tests.conftest import REPO


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return {'loss': ((out - labels)**2).mean()}
        return out


def make_runner(work_dir, max_iters, name, **kwargs):
    data = TensorDataset(torch.randn(16, 2), torch.randn(16, 1))
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        default_scope='mmengine',
        train_dataloader=DataLoader(data, batch_size=4),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False)),
        **kwargs)


@pytest.fixture(scope='module')
def mmengine_checkpoint(tmp_path_factory):
    """A checkpoint written by a real mmengine Runner (message hub and all)."""
    work = tmp_path_factory.mktemp('toy')
    make_runner(work, 2, 'toy_ckpt').train()
    return work / 'iter_2.pth'


def write_evil_checkpoint(path, marker):
    """A checkpoint whose unpickling would run ``touch marker``."""
    code = textwrap.dedent(f'''
        import os, torch
        class Evil:
            def __reduce__(self):
                return (os.system, ('touch {marker}',))
        torch.save({{'state_dict': {{}}, 'meta': Evil()}}, {str(path)!r})
    ''')
    subprocess.run([sys.executable, '-c', code], check=True)
    assert path.is_file() and not marker.exists()


def test_plain_torch_load_refuses_mmengine_checkpoints(mmengine_checkpoint):
    # The problem being solved: torch's default (weights_only=True) cannot
    # read what mmengine writes, and our loader did not switch that off.
    safe_torch_load(mmengine_checkpoint)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(mmengine_checkpoint)


def test_safe_load_reads_message_hub(mmengine_checkpoint):
    ckpt = safe_torch_load(mmengine_checkpoint)
    assert ckpt['meta']['iter'] == 2
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert len(buffer.data[0]) == 2
    # The restricted getattr gave back the real statistics methods.
    assert buffer.statistics('mean') == pytest.approx(buffer.mean())
    assert ckpt['optimizer']['state'][0]['step'] == 2


def test_runner_resume_through_mmengine(mmengine_checkpoint, tmp_path):
    runner = make_runner(tmp_path, 3, 'toy_resume', resume=True,
                         load_from=str(mmengine_checkpoint))
    runner.train()
    assert runner.iter == 3
    final = safe_torch_load(tmp_path / 'iter_3.pth')
    assert final['optimizer']['state'][0]['step'] == 3  # continued, not 1


def test_mmengine_uses_safe_loader():
    assert CheckpointLoader._get_checkpoint_loader('/a/b.pth') is \
        load_from_local_safe
    assert isinstance(get_file_backend('/a/b.pth'), AtomicLocalBackend)


def test_allow_list_is_exact():
    entries = checkpoint_safe_globals()
    named = {name: obj for obj, name in
             (e for e in entries if isinstance(e, tuple))}
    # getattr itself is never allowed, only the HistoryBuffer stand-in.
    assert named['builtins.getattr'] is not getattr
    classes = [e for e in entries if not isinstance(e, tuple)]
    for cls in classes:
        assert cls.__module__.split('.')[0] in ('numpy', 'mmengine'), cls
    import numpy as np
    assert type(np.dtype(object)) not in classes
    assert type(np.dtype('U3')) not in classes


@pytest.mark.parametrize('through', ['safe_torch_load', 'mmengine',
                                     'init_cfg'])
def test_malicious_checkpoint_is_refused(tmp_path, through):
    evil, marker = tmp_path / 'evil.pth', tmp_path / 'PWNED'
    write_evil_checkpoint(evil, marker)
    with pytest.raises(UnsafeCheckpointError) as err:
        if through == 'safe_torch_load':
            safe_torch_load(evil)
        elif through == 'mmengine':
            _load_checkpoint(str(evil), map_location='cpu')
        else:
            module = BaseModule(
                init_cfg=dict(type='Pretrained', checkpoint=str(evil)))
            module.linear = nn.Linear(2, 1)
            module.init_weights()
    message = str(err.value)
    assert str(evil) in message
    assert f'{os.system.__module__}.system' in message
    assert '\n' not in message
    assert not marker.exists()


def test_getattr_is_restricted(tmp_path):
    # Python pickles HistoryBuffer methods via getattr; any other attribute
    # must be refused.
    class Sneaky:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, 'update'))

    path = tmp_path / 'sneaky.pth'
    torch.save({'x': Sneaky()}, path)
    with pytest.raises(UnsafeCheckpointError, match="getattr.*'update'"):
        safe_torch_load(path)


def test_pretrained_init_loads_mmengine_checkpoint(mmengine_checkpoint):
    module = BaseModule(
        init_cfg=dict(type='Pretrained', checkpoint=str(mmengine_checkpoint)))
    module.linear = nn.Linear(2, 1)
    module.init_weights()
    saved = safe_torch_load(mmengine_checkpoint)['state_dict']
    assert torch.equal(module.linear.weight, saved['linear.weight'])


def test_truncated_checkpoint_is_a_clear_error(mmengine_checkpoint,
                                               tmp_path):
    cut = tmp_path / 'cut.pth'
    data = mmengine_checkpoint.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointLoadError, match='cannot read checkpoint'):
        safe_torch_load(cut)


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    path = tmp_path / 'sub' / 'file.txt'
    atomic_write(path, 'one')
    assert path.read_text() == 'one'
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)
    os.chmod(path, 0o640)
    atomic_write(path, b'two')
    assert path.read_bytes() == b'two'
    assert (path.stat().st_mode & 0o777) == 0o640
    assert os.listdir(path.parent) == ['file.txt']  # no temporary left


# The writer dies (SIGKILL) after writing the data but before the rename:
# mmengine's save_checkpoint goes through our backend, so the old complete
# checkpoint must still be there. (mmengine's own LocalBackend truncates the
# final name first and never fsyncs: this kill would not even happen there,
# and the script would report 'not killed'.)
KILL_SCRIPT = textwrap.dedent('''
    import os, signal, sys, torch
    import mobilenet_mm
    from mmengine.runner.checkpoint import save_checkpoint
    from mobilenet_mm.utils import atomic_write

    def die(fd):
        os.kill(os.getpid(), signal.SIGKILL)

    os.fsync = die
    target, kind = sys.argv[1], sys.argv[2]
    if kind == 'checkpoint':
        save_checkpoint({'state_dict': {'w': torch.ones(1000, 1000)}}, target)
    else:
        atomic_write(target, 'NEW CONTENT')
    print('not killed')
''')


def test_killed_checkpoint_writer_leaves_old_file(tmp_path):
    path = tmp_path / 'iter_4.pth'
    save_checkpoint({'state_dict': {'w': torch.zeros(2)}}, str(path))
    proc = subprocess.run(
        [sys.executable, '-c', KILL_SCRIPT, str(path), 'checkpoint'],
        capture_output=True, text=True)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    old = safe_torch_load(path)
    assert torch.equal(old['state_dict']['w'], torch.zeros(2))
    # Only a hidden temporary remains besides the intact file, and an
    # automatic resume ignores it.
    others = [n for n in os.listdir(tmp_path) if n != 'iter_4.pth']
    assert all(n.startswith('.iter_4.pth.') for n in others), others
    assert find_resume_checkpoint(str(tmp_path)) == str(path)


def test_killed_last_checkpoint_writer_leaves_old_text(tmp_path):
    path = tmp_path / 'last_checkpoint'
    path.write_text('/old/iter_2.pth')
    proc = subprocess.run(
        [sys.executable, '-c', KILL_SCRIPT, str(path), 'text'],
        capture_output=True, text=True)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    assert path.read_text() == '/old/iter_2.pth'


def test_find_resume_checkpoint_skips_broken_files(mmengine_checkpoint,
                                                   tmp_path):
    assert find_resume_checkpoint(str(tmp_path)) is None
    good = tmp_path / 'iter_2.pth'
    good.write_bytes(mmengine_checkpoint.read_bytes())
    data = good.read_bytes()
    (tmp_path / 'iter_4.pth').write_bytes(data[:len(data) // 3])
    assert not zipfile.is_zipfile(tmp_path / 'iter_4.pth')
    # last_checkpoint names the truncated file: fall back to iter_2.
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == str(good)
    # An empty last_checkpoint (a writer killed after truncating it).
    (tmp_path / 'last_checkpoint').write_text('')
    assert find_resume_checkpoint(str(tmp_path)) == str(good)
    # A complete file named by last_checkpoint wins over newer names.
    (tmp_path / 'iter_9.pth').write_bytes(data)
    (tmp_path / 'last_checkpoint').write_text(str(good))
    assert find_resume_checkpoint(str(tmp_path)) == str(good)
