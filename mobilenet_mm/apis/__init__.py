"""What the command-line tools are built from, one concern per module:

* :mod:`.cli`: the protocol (a user error ends in one line, exit status 1);
* :mod:`.config`: loading a config, its task (mmdet or mmseg), work dir;
* :mod:`.launch`: ``--launcher``, distributed training without a GPU;
* :mod:`.runner`: building the runner, with a checked checkpoint.

The errors they raise are in :mod:`mobilenet_mm.errors`; the data path
checks in :mod:`mobilenet_mm.datasets.path_checks`; checkpoint reading in
:mod:`mobilenet_mm.utils.checkpoint`.
"""
from .cli import destroy_process_group, one_line, run_cli
from .config import (TASK_SCOPES, check_file, detect_task, load_config,
                     register_host_modules, resolve_work_dir)
from .launch import has_accelerator, init_cpu_distributed, set_launcher
from .runner import build_runner

__all__ = [
    'run_cli', 'one_line', 'destroy_process_group', 'TASK_SCOPES',
    'check_file', 'load_config', 'detect_task', 'register_host_modules',
    'resolve_work_dir', 'has_accelerator', 'set_launcher',
    'init_cpu_distributed', 'build_runner'
]
