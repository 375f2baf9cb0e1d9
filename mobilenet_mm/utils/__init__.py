from .checkpoint import (CheckpointLoadError, CheckpointMismatchError,
                         CheckpointSaveError,
                         UnsafeCheckpointError, atomic_write,
                         checkpoint_safe_globals, find_resume_checkpoint,
                         is_complete_checkpoint, load_checkpoint_file,
                         read_last_checkpoint, safe_torch_load)

__all__ = [
    'CheckpointLoadError', 'CheckpointMismatchError', 'CheckpointSaveError',
    'UnsafeCheckpointError',
    'atomic_write', 'checkpoint_safe_globals', 'find_resume_checkpoint',
    'is_complete_checkpoint', 'load_checkpoint_file', 'read_last_checkpoint',
    'safe_torch_load'
]
