from .checkpoint import (CheckpointLoadError, UnsafeCheckpointError,
                         atomic_write, check_state_dict_matches,
                         checkpoint_safe_globals, find_resume_checkpoint,
                         is_complete_checkpoint, load_checkpoint_file,
                         load_state_dict_file, read_state_dict,
                         safe_torch_load, unwrap_state_dict)

__all__ = [
    'CheckpointLoadError', 'UnsafeCheckpointError', 'atomic_write',
    'check_state_dict_matches', 'checkpoint_safe_globals',
    'find_resume_checkpoint', 'is_complete_checkpoint',
    'load_checkpoint_file', 'load_state_dict_file', 'read_state_dict',
    'safe_torch_load', 'unwrap_state_dict'
]
