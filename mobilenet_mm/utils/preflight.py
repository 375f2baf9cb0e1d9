"""Checks the tools make before they build or run anything.

Each raises a one-line :class:`~mobilenet_mm.errors.CLIError` naming
the bad value and what is allowed; without them these cases fail late (the
work dir on the first log line or the first save, after the data and model
are built) or with a library traceback (``batch_size=0`` in torch's
``DataLoader``), or silently (a misspelt ``--cfg-options`` key is added as
a new key and ignored).
"""
import difflib
import os
import os.path as osp
import tempfile
from typing import Mapping, Optional, Sequence

from ..errors import CLIError

# Top-level config keys mmengine's Runner.from_cfg reads even when a config
# does not set them: a --cfg-options key close to one of these is a typo.
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name',
    'model_wrapper_cfg', 'custom_imports', 'runner_type', 'compile',
    'find_unused_parameters')
_TYPO_CUTOFF = 0.85  # difflib ratio: 'max_iter' vs 'max_iters' is 0.94


def _can_write_in(directory: str) -> bool:
    """Whether a file can be created in ``directory`` (tried, not guessed
    from the mode bits: read-only mounts and ACLs count too)."""
    try:
        fd, probe = tempfile.mkstemp(prefix='.write-probe-', dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def check_work_dir(work_dir: str) -> None:
    """``work_dir`` is a writable directory, or can be created."""
    path = osp.abspath(work_dir)
    if osp.exists(path) and not osp.isdir(path):
        raise CLIError(f'work dir {work_dir} is a file, not a directory; '
                       'pass --work-dir with a directory')
    existing = path
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise CLIError(f'work dir {work_dir} cannot be created: {existing} '
                       'is a file')
    if not _can_write_in(existing):
        what = 'work dir' if existing == path else \
            f'work dir {work_dir} cannot be created: its parent'
        raise CLIError(f'{what} {existing} is not writable; pass --work-dir '
                       'with a directory you can write to')


def check_batch_sizes(cfg, loaders: Sequence[str]) -> None:
    """Every given dataloader's ``batch_size`` is an int >= 1."""
    for key in loaders:
        loader = cfg.get(key)
        if not isinstance(loader, Mapping) or 'batch_size' not in loader:
            continue
        size = loader['batch_size']
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise CLIError(f'{key}.batch_size must be an int >= 1, got '
                           f'{size!r}')


def _close_key(name: str, keys) -> Optional[str]:
    keys = [k for k in keys if isinstance(k, str)]
    found = difflib.get_close_matches(name, keys, n=1, cutoff=_TYPO_CUTOFF)
    return found[0] if found else None


def check_cfg_options(cfg, options: Optional[Mapping]) -> None:
    """Refuse a ``--cfg-options`` key that is not in the config but is one
    edit away from a key that is (``train_cfg.max_iter`` for ``max_iters``):
    mmengine would add it as a new key, which the code never reads. New
    keys unlike any existing one are allowed (a new argument)."""
    root = cfg if isinstance(cfg, Mapping) else dict(cfg.items())  # Config
    for dotted in options or {}:
        node = root
        parts = str(dotted).split('.')
        for depth, part in enumerate(parts):
            if isinstance(node, (list, tuple)):
                if not part.isdigit() or int(part) >= len(node):
                    break  # mmengine reports list indices itself
                node = node[int(part)]
                continue
            if not isinstance(node, Mapping):
                break
            if part in node:
                node = node[part]
                continue
            if depth == 0 and part in RUNNER_KEYS:
                break  # a Runner argument the config may leave out
            siblings = list(node.keys())
            if depth == 0:
                siblings += list(RUNNER_KEYS)
            close = _close_key(part, siblings)
            if close is not None:
                where = '.'.join(parts[:depth])
                suggestion = '.'.join(parts[:depth] + [close])
                raise CLIError(
                    f'--cfg-options {dotted}: the config has no key {part!r}'
                    f'{" under " + where if where else ""}; did you mean '
                    f'{suggestion}? (a new key this close to an existing one'
                    ' is taken for a typo)')
            break
