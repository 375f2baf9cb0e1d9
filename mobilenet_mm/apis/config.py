"""Loading a config for the tools: the file, the task it belongs to
(detection with mmdet, segmentation with mmseg) and the work directory.
Problems the user fixes are :class:`~mobilenet_mm.errors.CLIError`."""
import os.path as osp
from typing import Iterable, Optional

from ..errors import CLIError

__all__ = [
    'TASK_SCOPES', 'check_file', 'load_config', 'detect_task',
    'register_host_modules', 'resolve_work_dir'
]

# The host library (and registry scope) of each task.
TASK_SCOPES = {'det': 'mmdet', 'seg': 'mmseg'}


def check_file(path: str, what: str) -> str:
    """Return ``path`` if it is a file, else raise naming it."""
    if not osp.isfile(path):
        state = 'is a directory' if osp.isdir(path) else 'does not exist'
        raise CLIError(f'{what} {state}: {path}')
    return path


def load_config(path: str, cfg_options: Optional[dict] = None):
    """Load an mmengine config; a missing or broken file is a CLIError."""
    check_file(path, 'config file')
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, FileNotFoundError, KeyError,
            ModuleNotFoundError) as e:
        # Errors in the file (syntax, a missing _base_ file or variable, a
        # custom_imports module that is not installed): the deep mmengine
        # trace does not help. Other errors keep their traceback.
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise CLIError(f'cannot load config {path}: {type(e).__name__}: '
                       f'{first}') from None
    if cfg_options:
        from ..utils.preflight import check_cfg_options
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    return cfg


def detect_task(cfg, path: str) -> str:
    """``'det'`` or ``'seg'``: from ``default_scope``, else from the scope
    prefix of ``model.type``, else from which host registers ``model.type``.
    """
    scope = cfg.get('default_scope')
    for task, host in TASK_SCOPES.items():
        if scope == host:
            return task
    model = cfg.get('model')
    model_type = model.get('type') if isinstance(model, dict) else None
    if isinstance(model_type, str):
        for task, host in TASK_SCOPES.items():
            if model_type.startswith(host + '.'):
                return task
        found = [task for task in TASK_SCOPES
                 if model_type in _host_model_names(task)]
        if len(found) == 1:
            return found[0]
    raise CLIError(
        f'cannot tell whether {path} is a detection or a segmentation config'
        f' (default_scope={scope!r}, model.type={model_type!r}): set '
        "default_scope = 'mmdet' or 'mmseg'")


def _host_model_names(task: str) -> Iterable[str]:
    register_host_modules(task)
    if task == 'det':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS.module_dict.keys()


def register_host_modules(task: str) -> None:
    """Register mmdet's or mmseg's modules (and ours), without changing the
    default scope: the runner sets it from the config."""
    import mobilenet_mm  # noqa: F401
    if task == 'det':
        from mmdet.utils import register_all_modules
    else:
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)


def resolve_work_dir(cfg, work_dir: Optional[str], config_path: str) -> str:
    """``--work-dir``, else the config's ``work_dir``, else
    ``./work_dirs/<config name>`` (OpenMMLab's order)."""
    if work_dir:
        return work_dir
    if cfg.get('work_dir'):
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
