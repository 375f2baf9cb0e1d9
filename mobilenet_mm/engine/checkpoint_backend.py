"""Whether ``import mobilenet_mm`` plugs its checkpoint I/O into mmengine,
and saying so in the run's log.

Importing the package (every shipped config does, through
``custom_imports``) calls :func:`install_checkpoint_io` for the whole
process: local checkpoints are then read with safe unpickling (what lets
``--resume`` and ``load_from`` read mmengine checkpoints on torch >= 2.6,
whose ``torch.load`` refuses their numpy/mmengine objects by default) and
written atomically. ``MOBILENET_MM_NO_CHECKPOINT_BACKEND=1`` in the
environment keeps mmengine's own loader and ``'local'`` backend.
:class:`CheckpointIONoticeHook` (in the shipped configs' ``custom_hooks``)
names whichever is in effect once in the log of each runner.
"""
import os

from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..registry import HOOKS
from .checkpoint_io import (AtomicLocalBackend, install_checkpoint_io,
                            load_from_local_safe)

OPT_OUT_ENV = 'MOBILENET_MM_NO_CHECKPOINT_BACKEND'
_YES = ('1', 'true', 'yes', 'on')
_NO = ('', '0', 'false', 'no', 'off')


def checkpoint_backend_opted_out() -> bool:
    """Whether :data:`OPT_OUT_ENV` asks to keep mmengine's checkpoint I/O."""
    value = os.environ.get(OPT_OUT_ENV, '').strip().lower()
    if value not in _YES + _NO:
        raise ValueError(f'{OPT_OUT_ENV}={os.environ[OPT_OUT_ENV]!r}: use 1 '
                         "(keep mmengine's checkpoint backend) or 0")
    return value in _YES


def setup_checkpoint_io() -> bool:
    """Install mobilenet_mm's checkpoint I/O unless opted out; return
    whether it was installed."""
    if checkpoint_backend_opted_out():
        return False
    install_checkpoint_io()
    return True


def checkpoint_io_in_effect() -> bool:
    """Whether mmengine's local loader and backend are ours right now."""
    from mmengine.fileio.backends.registry_utils import prefix_to_backends
    from mmengine.runner.checkpoint import CheckpointLoader
    return (CheckpointLoader._schemes.get('') is load_from_local_safe
            and prefix_to_backends.get('') is AtomicLocalBackend)


def checkpoint_io_notice() -> str:
    """One line saying which checkpoint I/O this process uses."""
    if checkpoint_io_in_effect():
        return ('mobilenet_mm: `import mobilenet_mm` replaced mmengine\'s '
                'local checkpoint loader and backend for this process '
                '(safe unpickling, atomic writes; mobilenet_mm/engine/'
                f'checkpoint_io.py); {OPT_OUT_ENV}=1 keeps mmengine\'s')
    reason = (f'{OPT_OUT_ENV} is set' if checkpoint_backend_opted_out() else
              'they were replaced after import')
    return ("mobilenet_mm: mmengine's own local checkpoint loader and "
            f'backend are in use ({reason}): writes are not atomic, and on '
            'torch >= 2.6 resuming an mmengine checkpoint may fail '
            '(torch.load weights_only)')


@HOOKS.register_module()
class CheckpointIONoticeHook(Hook):
    """Log :func:`checkpoint_io_notice` once, when the run starts.

    Registered as ``mobilenet_mm.CheckpointIONoticeHook``.
    """

    priority = 'VERY_LOW'

    def before_run(self, runner) -> None:
        print_log(checkpoint_io_notice(), logger='current')
