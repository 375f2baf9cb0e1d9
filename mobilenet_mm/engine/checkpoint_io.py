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
* Writing ``last_checkpoint`` and removing old checkpoints: mmengine's
  ``CheckpointHook`` writes ``last_checkpoint`` with a plain ``open(...,
  'w')``, outside the backend, and removes the checkpoint beyond
  ``max_keep_ckpts`` (and the previous best one) before it writes the new
  one. :class:`AtomicCheckpointHook` (a ``CheckpointHook``;
  ``tools/train.py`` uses it in place of the plain one) writes the new
  file, then publishes ``last_checkpoint`` atomically, then removes.
"""
import contextlib
import os
import os.path as osp
import re
import shutil
from typing import List, Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.runner.checkpoint import CheckpointLoader

from ..registry import HOOKS
from ..utils.checkpoint import (CheckpointSaveError, atomic_write,
                                safe_torch_load)


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


class _DeferredRemovals:
    """A file backend whose ``remove``/``rmtree`` are noted, not done.

    mmengine's ``CheckpointHook`` removes the checkpoint beyond
    ``max_keep_ckpts`` (and the previous best one) *before* it writes the new
    file; with ``max_keep_ckpts=1`` a failed or killed write then leaves no
    checkpoint at all. While the parent saves, its ``file_backend`` is this
    wrapper; the noted removals run once the new file is in place.
    """

    def __init__(self, backend):
        self._backend = backend
        self.pending: List[Tuple[str, str]] = []

    def remove(self, filepath) -> None:
        self.pending.append(('remove', str(filepath)))

    def rmtree(self, dir_path) -> None:
        self.pending.append(('rmtree', str(dir_path)))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that never leaves the work dir without a complete
    checkpoint: write first, then point ``last_checkpoint`` at it, then
    delete what is outdated.

    For interval checkpoints and ``save_best`` alike, at every moment at
    least one complete checkpoint exists and ``last_checkpoint`` names a
    complete one:

    1. the new file is written atomically (temporary file, fsync, rename:
       :class:`AtomicLocalBackend`);
    2. ``last_checkpoint`` is replaced atomically: the parent writes it into
       a staging directory inside ``runner.work_dir`` (a view of the runner
       whose ``work_dir`` is that directory), the staged file is then moved
       into place with :func:`~mobilenet_mm.utils.atomic_write`;
    3. only then are the files beyond ``max_keep_ckpts`` and the previous
       best checkpoint removed (the parent's removals are held back by
       :class:`_DeferredRemovals`).

    A save that fails (disk full, file-size limit) raises
    :class:`~mobilenet_mm.utils.CheckpointSaveError` naming the file and
    the checkpoint that is kept; a process killed during a save keeps the
    previous checkpoint and, at worst, one outdated file more than
    ``max_keep_ckpts`` (and a hidden ``.*.tmp`` file, removed at the next
    start). Before training, a ``last_checkpoint`` that is a directory is
    refused (the first save would fail on it).

    Use it as ``default_hooks.checkpoint.type =
    'mobilenet_mm.AtomicCheckpointHook'`` with CheckpointHook's arguments.
    """

    STAGING_DIR = '.last_checkpoint_staging'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deferred: Optional[_DeferredRemovals] = None

    def before_train(self, runner) -> None:
        marker = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isdir(marker):
            raise CheckpointSaveError(
                f'{marker} is a directory; mmengine writes the name of the '
                'latest checkpoint to that path: move the directory away')
        super().before_train(runner)
        if is_main_process():
            self._remove_stale_temporaries(runner)

    def _remove_stale_temporaries(self, runner) -> None:
        """Hidden ``.<checkpoint>.*.tmp`` files of a save that was killed
        (:func:`~mobilenet_mm.utils.atomic_write` names them so)."""
        out_dir = str(self.out_dir)
        if '://' in out_dir or not osp.isdir(out_dir):
            return
        for name in sorted(os.listdir(out_dir)):
            if _STALE_TEMPORARY.match(name):
                os.remove(osp.join(out_dir, name))
                runner.logger.info(
                    f'removed {name} in {out_dir}, left by a checkpoint '
                    'save that did not finish')

    def _best_paths(self) -> List[str]:
        paths = [getattr(self, 'best_ckpt_path', None)]
        paths += list((getattr(self, 'best_ckpt_path_dict', None)
                       or {}).values())
        return [p for p in paths if p]

    @contextlib.contextmanager
    def _removals_after_save(self, what: str, kept: List[str]):
        """Hold back the parent's removals until the body has saved; a
        failed save removes nothing and names ``kept``, the checkpoints
        that were current before it."""
        if self._deferred is not None:  # nested: the outer call removes
            yield
            return
        backend = self.file_backend
        self._deferred = deferred = _DeferredRemovals(backend)
        self.file_backend = deferred
        try:
            yield
        except OSError as e:
            kept = [p for p in kept if p]
            raise CheckpointSaveError(
                f'saving the {what} to {self.out_dir} failed '
                f'({type(e).__name__}: {e}); nothing was removed' +
                (f', {" and ".join(kept)} {"is" if len(kept) == 1 else "are"}'
                 ' kept' if kept else ' (no earlier checkpoint)')) from e
        finally:
            self.file_backend = backend
            self._deferred = None
        in_use = {self.last_ckpt, *self._best_paths()}
        for action, path in deferred.pending:
            if path not in in_use:
                getattr(backend, action)(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        # After a resume only the message hub knows the current checkpoint.
        current = self.last_ckpt or runner.message_hub.get_info('last_ckpt')
        with self._removals_after_save(
                f'checkpoint {self.filename_tmpl.format(step)}', [current]):
            staging = osp.join(runner.work_dir, self.STAGING_DIR)
            if is_main_process():  # only the main process writes the file
                os.makedirs(staging, exist_ok=True)
            super()._save_checkpoint_with_step(
                _WorkDirView(runner, staging), step, meta)
            staged = osp.join(staging, 'last_checkpoint')
            if is_main_process() and osp.isfile(staged):
                with open(staged) as f:
                    text = f.read()
                atomic_write(osp.join(runner.work_dir, 'last_checkpoint'),
                             text)
                shutil.rmtree(staging, ignore_errors=True)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        current = self.last_ckpt or runner.message_hub.get_info('last_ckpt')
        with self._removals_after_save('best checkpoint',
                                       self._best_paths() or [current]):
            super()._save_best_checkpoint(runner, metrics)


# atomic_write's temporaries of checkpoint files: '.iter_4.pth.k3j2.tmp'.
_STALE_TEMPORARY = re.compile(r'^\.[^/]+\.pth\.[^.]+\.tmp$')


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

