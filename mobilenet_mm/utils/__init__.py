from .checkpoint import (CheckpointLoadError, UnsafeCheckpointError,
                         atomic_write, checkpoint_safe_globals,
                         find_resume_checkpoint, is_complete_checkpoint,
                         load_checkpoint_file, safe_torch_load)

__all__ = [
    'CheckpointLoadError', 'UnsafeCheckpointError', 'atomic_write',
    'checkpoint_safe_globals', 'find_resume_checkpoint',
    'is_complete_checkpoint', 'load_checkpoint_file', 'safe_torch_load'
]
