"""mmengine integration: safe checkpoint loading, atomic writes, hooks.

Importing this package (``import mobilenet_mm`` does) plugs
:mod:`mobilenet_mm.utils.checkpoint` into mmengine for the whole process
(see :func:`install_checkpoint_io`), unless the environment sets
``MOBILENET_MM_NO_CHECKPOINT_BACKEND=1`` (:mod:`.checkpoint_backend`).
"""
from .checkpoint_io import (AtomicCheckpointHook, AtomicLocalBackend,
                            install_checkpoint_io, load_from_local_safe)
from .checkpoint_backend import (CheckpointIONoticeHook,  # noqa: F401
                                 setup_checkpoint_io)
from .cpu_ddp import (CPUDistributedDataParallel, CPUSyncBatchNorm,
                      convert_sync_batchnorm_for_cpu)
from .hooks import DumpSegPredictionsHook
from .nan_guard import NanGuardHook, NonFiniteLossError  # noqa: F401
from .finetune import FinetuneHook, load_for_finetune  # noqa: F401

setup_checkpoint_io()

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'CPUDistributedDataParallel',
    'CPUSyncBatchNorm', 'convert_sync_batchnorm_for_cpu',
    'DumpSegPredictionsHook',
    'install_checkpoint_io', 'load_from_local_safe'
]
