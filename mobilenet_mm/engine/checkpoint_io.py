"""How mmengine reads and writes checkpoints through mobilenet_mm.

Everything goes through mmengine's own extension points; no mmengine
function is replaced:

* Reading: ``CheckpointLoader.register_scheme(prefixes='', force=True)``
  makes :func:`load_from_local_safe` the loader of local paths. Runner
  resume, ``load_from`` and ``init_cfg=dict(type='Pretrained')`` all load
  through ``CheckpointLoader``, so all get safe loading
  (:func:`mobilenet_mm.utils.safe_torch_load`). URL schemes keep mmengine's
  loaders.
* Writing checkpoints: mmengine's ``save_checkpoint`` serialises to bytes and
  hands them to the storage backend of the path
  (``get_file_backend(filename).put``). :class:`AtomicLocalBackend`, a
  ``LocalBackend`` whose ``put``/``put_text`` are atomic, is registered as
  the ``'local'`` backend (prefix ``''``) with ``register_backend(...,
  force=True)``; every local write through mmengine's file I/O becomes
  atomic, checkpoints included.
* Writing ``last_checkpoint``: mmengine's ``CheckpointHook`` writes it with
  a plain ``open(osp.join(runner.work_dir, 'last_checkpoint'), 'w')``,
  outside the backend. :class:`AtomicCheckpointHook` (a ``CheckpointHook``;
  ``tools/train.py`` uses it in place of the plain one) lets the parent
  write that file into a staging directory, then publishes it atomically.
"""
import os
import os.path as osp
import shutil

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.runner.checkpoint import CheckpointLoader

from ..registry import HOOKS
from ..utils.checkpoint import atomic_write, safe_torch_load


def load_from_local_safe(filename: str, map_location=None):
    """mmengine checkpoint loader for local paths, with safe unpickling.

    (mmengine logs the loader as ``name[10:]``: "local_safe backend".)
    """
    return safe_torch_load(osp.expanduser(filename),
                           map_location=map_location)


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose writes are atomic (temporary file, fsync,
    ``os.replace``): a killed writer never leaves a partial file under the
    final name, so resume can not pick one up."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj, encoding=encoding)


class _WorkDirView:
    """The runner, except that ``work_dir`` points elsewhere."""

    def __init__(self, runner, work_dir: str):
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name):
        return getattr(self._runner, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose ``last_checkpoint`` file is written
    atomically (checkpoint files already are, via
    :class:`AtomicLocalBackend`).

    The parent writes ``last_checkpoint`` into ``runner.work_dir`` with a
    plain ``open(..., 'w')``: a kill right after it truncated the file
    would leave resume an empty path. Here the parent's save runs against a
    view of the runner whose ``work_dir`` is a staging directory inside the
    real one (same file system); the staged file is then moved into place
    with :func:`~mobilenet_mm.utils.atomic_write`. Everything else the
    parent does (checkpoint saving, ``max_keep_ckpts``, best checkpoints)
    is unchanged. Use it as ``default_hooks.checkpoint.type =
    'mobilenet_mm.AtomicCheckpointHook'`` with CheckpointHook's arguments.
    """

    STAGING_DIR = '.last_checkpoint_staging'

    def _save_checkpoint_with_step(self, runner, step, meta):
        staging = osp.join(runner.work_dir, self.STAGING_DIR)
        if is_main_process():  # only the main process writes the file
            os.makedirs(staging, exist_ok=True)
        super()._save_checkpoint_with_step(
            _WorkDirView(runner, staging), step, meta)
        staged = osp.join(staging, 'last_checkpoint')
        if is_main_process() and osp.isfile(staged):
            with open(staged) as f:
                text = f.read()
            atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), text)
            shutil.rmtree(staging, ignore_errors=True)


_installed = False


def install_checkpoint_io() -> None:
    """Register the safe local loader and the atomic local backend with
    mmengine (idempotent; run when ``mobilenet_mm`` is imported)."""
    global _installed
    if _installed:
        return
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safe, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    _installed = True

