from .checkpoint import (CheckpointLoadError, CheckpointMismatchError,
                         CheckpointSaveError, UnsafeCheckpointError,
                         atomic_write, check_state_dict_matches,
                         checkpoint_safe_globals, find_resume_checkpoint,
                         is_complete_checkpoint, load_checkpoint_file,
                         load_state_dict_file, read_last_checkpoint,
                         read_state_dict, safe_torch_load, unwrap_state_dict)

__all__ = [
    'CheckpointLoadError', 'CheckpointMismatchError', 'CheckpointSaveError',
    'UnsafeCheckpointError', 'atomic_write', 'check_state_dict_matches',
    'checkpoint_safe_globals', 'find_resume_checkpoint',
    'is_complete_checkpoint', 'load_checkpoint_file', 'load_state_dict_file',
    'read_last_checkpoint', 'read_state_dict', 'safe_torch_load',
    'unwrap_state_dict'
]
