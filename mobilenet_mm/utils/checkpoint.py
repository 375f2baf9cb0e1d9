"""Checkpoint files: loading without executing code, state dicts, writing
atomically. Every checkpoint read of the package goes through here.

Loading
    torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine
    0.10.7 checkpoints do not pass it: their message hub holds
    ``HistoryBuffer`` objects with numpy arrays and scalars. Switching safe
    loading off (``weights_only=False``) would let any checkpoint run code.
    :func:`safe_torch_load` keeps ``weights_only=True`` and adds, only for
    the duration of the call (``torch.serialization.safe_globals``), the
    globals an mmengine checkpoint needs, found by saving real mmengine
    checkpoints (mmdet and mmseg runs) and listing their pickle globals:

    * ``mmengine.logging.history_buffer.HistoryBuffer``;
    * numpy arrays, scalars and dtypes: ``numpy._core.multiarray._reconstruct``
      and ``.scalar`` (also under numpy 1's ``numpy.core`` name),
      ``numpy.ndarray``, ``numpy.dtype`` and the dtype classes of bool and
      fixed-size numbers (``numpy.dtypes.Float64DType``...; no object,
      string or void dtypes). Seen in real checkpoints: int64 and float64
      (message hub buffers), float32 (mmseg's ``best_score`` with
      ``save_best``); the other numeric ones are allowed because a metric
      may log any numpy number;
    * ``builtins.getattr``, which Python uses to pickle the methods
      ``HistoryBuffer.min/max/current/mean`` kept in each buffer. It is
      *not* allowed as such: the name maps to :func:`_history_buffer_method`,
      which returns only those four methods and refuses anything else.

    Anything else (a class or function from any other module) is refused
    with :class:`UnsafeCheckpointError` naming the file and the global,
    before any of it is called.

State dicts
    :func:`unwrap_state_dict` takes the tensors out of an mmengine, timm or
    torchvision checkpoint; :func:`read_state_dict` reads a checkpoint named
    on the command line (a missing file or one without a state dict is a
    :class:`~mobilenet_mm.errors.CLIError`) and
    :func:`check_state_dict_matches` checks it against the built model
    before anything runs.

Writing
    :func:`atomic_write` writes to a temporary name in the target directory,
    flushes, fsyncs and renames with ``os.replace``: a reader sees the old
    file or the complete new one, never a partial one.
    ``mobilenet_mm.engine`` plugs both into mmengine (see there).
"""
import contextlib
import os
import os.path as osp
import pickle
import re
import tempfile
import zipfile
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

from ..errors import (CheckpointLoadError, CheckpointMismatchError,
                      CheckpointSaveError, CLIError, UnsafeCheckpointError)

__all__ = [
    'CheckpointLoadError', 'CheckpointMismatchError', 'CheckpointSaveError',
    'UnsafeCheckpointError', 'checkpoint_safe_globals', 'safe_torch_load',
    'load_checkpoint_file', 'unwrap_state_dict', 'load_state_dict_file',
    'read_state_dict', 'check_state_dict_matches', 'atomic_write',
    'is_complete_checkpoint', 'find_resume_checkpoint', 'read_last_checkpoint'
]


# Methods of HistoryBuffer that buffers keep in ``_statistics_methods``.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(owner: Any, name: str):
    """Stands in for ``builtins.getattr`` while unpickling.

    Python pickles a method such as ``HistoryBuffer.mean`` as
    ``getattr(HistoryBuffer, 'mean')``; a general ``getattr`` would let a
    crafted file walk to any attribute, so only these are given.
    """
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'unsupported global: getattr({getattr(owner, "__name__", owner)!r},'
        f' {name!r})')


_SAFE_GLOBALS: Optional[List[Union[Any, Tuple[Any, str]]]] = None


def checkpoint_safe_globals() -> List[Union[Any, Tuple[Any, str]]]:
    """The allow-list passed to ``torch.serialization.safe_globals``."""
    global _SAFE_GLOBALS
    if _SAFE_GLOBALS is None:
        import numpy as np
        from mmengine.logging import HistoryBuffer
        try:
            multiarray = np._core.multiarray
        except AttributeError:  # numpy 1.x
            multiarray = np.core.multiarray
        entries: List[Union[Any, Tuple[Any, str]]] = [
            HistoryBuffer, np.ndarray, np.dtype,
            (_history_buffer_method, 'builtins.getattr')
        ]
        # numpy 2 pickles as numpy._core, numpy 1 as numpy.core: accept both
        # names for the same two functions.
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
            entries.append((multiarray.scalar, f'{module}.scalar'))
        # Unpickling a dtype sets its state, which torch allows only for
        # listed types: the concrete dtype classes of bool and numbers.
        for char in '?bBhHiIlLqQefdFD':
            entries.append(type(np.dtype(char)))
        _SAFE_GLOBALS = entries
    return _SAFE_GLOBALS


_GLOBAL_REFUSALS = (r'GLOBAL ([\w.]+) was not an allowed global',
                    r'unsupported GLOBAL ([\w.]+)',
                    r'unsupported global: (getattr\([^)]*\))',
                    r'unrecognized function (\S+)',
                    r'but got (<class [^>]+>)')


def _disallowed_global(message: str) -> Optional[str]:
    """Pull the refused global out of torch's (long) error message; None
    when torch refused something else (data that is no pickle at all)."""
    for pattern in _GLOBAL_REFUSALS:
        found = re.search(pattern, message, flags=re.IGNORECASE)
        if found:
            return f'the global {found.group(1)}'
    return None


def _unpickler_detail(message: str) -> str:
    """torch's own reason (after "WeightsUnpickler error:"), without the
    advice around it: re-running with ``weights_only=False`` "will likely
    succeed" is wrong advice for a file that is no pickle, and dangerous
    for one that is not trusted."""
    found = re.search(r'WeightsUnpickler error:\s*(.+?)\s*(?:\n\s*\n|$)',
                      message, flags=re.DOTALL)
    detail = found.group(1) if found else 'no torch pickle data'
    return ' '.join(detail.split())[:200]


def _is_safetensors(path: str) -> bool:
    """A safetensors file: an 8-byte little-endian header size, then a JSON
    header (its ``{``) that fits in the file."""
    with open(path, 'rb') as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b'{':
        return False
    return int.from_bytes(head[:8], 'little') < osp.getsize(path)


def _safe_globals_context():
    serialization = torch.serialization
    if hasattr(serialization, 'safe_globals'):  # torch >= 2.5
        return serialization.safe_globals(checkpoint_safe_globals())
    # Older torch has no scoped allow-list: plain weights_only loading still
    # reads state dicts, and mmengine training checkpoints are refused.
    return contextlib.nullcontext()


def safe_torch_load(path: str, map_location=None) -> Any:
    """``torch.load(path, weights_only=True)`` with the mmengine allow-list.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        UnsafeCheckpointError: the pickle needs a global off the allow-list.
        CheckpointLoadError: the file is truncated or not a torch file.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if _is_safetensors(path):
        raise CheckpointLoadError(
            f'cannot read checkpoint {path}: it is a safetensors file, not a '
            'torch checkpoint; give it the .safetensors extension (tools/'
            'convert_weights.py reads it and writes a .pth)')
    try:
        with _safe_globals_context():
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _disallowed_global(str(e))
        if refused is not None:
            raise UnsafeCheckpointError(path, refused) from None
        raise CheckpointLoadError(
            f'cannot read checkpoint {path}: corrupted or not a torch '
            f'checkpoint ({_unpickler_detail(str(e))}); nothing from the '
            'file was run') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError,
            ValueError) as e:
        # Torch's errors for data that is no checkpoint: KeyError for stray
        # bytes read as a legacy pickle, RuntimeError for a cut zip, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise CheckpointLoadError(
            f'cannot read checkpoint {path}: truncated or not a torch '
            f'checkpoint ({type(e).__name__}: {first[:200]})') from None


def load_checkpoint_file(path: str, map_location='cpu') -> dict:
    """Load a checkpoint (``.pth``/``.pt``/``.bin`` via safe unpickling, or
    ``.safetensors``) and return its top-level dict.

    Raises ``FileNotFoundError`` naming the path when it does not exist and
    the errors of :func:`safe_torch_load`.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path, device=str(map_location))
    return safe_torch_load(path, map_location=map_location)


# -- state dicts ---------------------------------------------------------------
def _without_prefix(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def unwrap_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """Return the tensor dict of a checkpoint saved by mmengine, timm or
    torchvision (``state_dict``/``model`` wrappers, DataParallel ``module.``
    prefixes removed)."""
    for key in ('state_dict', 'model', 'state_dict_ema'):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
            break
    state = OrderedDict()
    for name, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            continue
        state[_without_prefix(name, 'module.')] = value
    return state


def load_state_dict_file(path: str,
                         map_location='cpu') -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (:func:`load_checkpoint_file`, then
    :func:`unwrap_state_dict`)."""
    return unwrap_state_dict(load_checkpoint_file(path, map_location))


def read_state_dict(path: str, what: str = 'checkpoint') -> dict:
    """Safely load the state dict of a checkpoint file (before anything is
    built, so a refused or broken file fails first and quietly)."""
    if not osp.isfile(path):
        raise CLIError(f'{what} file does not exist: {path}')
    checkpoint = safe_torch_load(path, map_location='cpu')
    state = checkpoint
    if isinstance(checkpoint, dict) and isinstance(
            checkpoint.get('state_dict'), dict):
        state = checkpoint['state_dict']
    if not isinstance(state, dict):
        raise CLIError(f'{what} {path} holds no state dict '
                       f'(got {type(state).__name__})')
    # mmengine's load_from strips a leading 'module.' (DDP checkpoints).
    return {_without_prefix(k, 'module.'): v for k, v in state.items()}


def check_state_dict_matches(model, state: dict, path: str,
                             what: str = 'checkpoint',
                             check_shapes: bool = True) -> None:
    """Raise a CLIError unless ``state`` has exactly the model's keys (and,
    with ``check_shapes``, their shapes).

    The message names the first missing and the first unexpected key.
    mmengine itself only warns and goes on with whatever matched, which
    makes a wrong checkpoint look like a bad model.
    """
    model = getattr(model, 'module', model)  # DDP wrapper
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing keys (first: {missing[0]})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys (first: '
                         f'{unexpected[0]})')
        raise CLIError(f'{what} {path} does not match the model: ' +
                       ', '.join(parts))
    if check_shapes:
        for key, tensor in expected.items():
            value = state[key]
            if hasattr(value, 'shape') and tuple(value.shape) != tuple(
                    tensor.shape):
                raise CLIError(
                    f'{what} {path} does not match the model: {key} has '
                    f'shape {tuple(value.shape)} in the file, '
                    f'{tuple(tensor.shape)} in the model')


# -- writing -------------------------------------------------------------------
def _current_umask() -> int:
    # os.umask can only be read by setting it; done once, at import time.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Union[str, os.PathLike],
                 data: Union[bytes, str],
                 encoding: str = 'utf-8') -> None:
    """Replace ``path`` with ``data`` so readers never see a partial file.

    The data goes to a hidden temporary file in the same directory (same
    file system, so the rename is atomic), is flushed and fsynced, then
    ``os.replace`` moves it over ``path`` and the directory is fsynced so
    the rename survives a power cut. A process killed before the rename
    leaves ``path`` untouched and only a ``.<name>.*.tmp`` file behind.
    A symlink at ``path`` is followed (its target is replaced).
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    target = osp.realpath(os.fspath(path))
    directory = osp.dirname(target)
    os.makedirs(directory, exist_ok=True)
    # Keep the mode of the file being replaced, else what open() would give.
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(target)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if hasattr(os, 'O_DIRECTORY'):  # POSIX: make the rename durable
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole torch zip checkpoint (cheap: reads only
    the zip directory at the end of the file, so truncation shows)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, ValueError, zipfile.BadZipFile):  # ValueError: NUL
        return False
    return any(name.endswith('data.pkl') for name in names)


_CKPT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def read_last_checkpoint(work_dir: str) -> Tuple[Optional[str], str]:
    """The path ``work_dir/last_checkpoint`` names, and why there is none.

    Returns ``(path, '')``, ``(None, '')`` when there is no such file, or
    ``(None, reason)`` when it is empty, a directory or holds no path (NUL
    bytes or binary garbage: what a power cut leaves behind a writer that
    is not atomic).
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isdir(marker):
        return None, f'{marker} is a directory'
    if not osp.isfile(marker):
        return None, ''
    with open(marker, 'rb') as f:
        raw = f.read(4097)
    try:
        named = raw.decode('utf-8').strip()
    except UnicodeDecodeError:
        named = None
    if named is None or len(raw) > 4096 or not named.isprintable():
        size = 'over 4096' if len(raw) > 4096 else str(len(raw))
        return None, (f'{marker} holds no path ({size} bytes of binary '
                      'data, e.g. left by a power cut)')
    if not named:
        return None, f'{marker} is empty'
    return named, ''


def find_resume_checkpoint(
        work_dir: str,
        report: Optional[Callable[[str], None]] = None) -> Optional[str]:
    """The checkpoint an automatic resume should use, or None.

    mmengine's own ``find_latest_checkpoint`` trusts ``last_checkpoint``
    blindly; a file that is empty, holds binary garbage, names a missing or
    truncated checkpoint (e.g. written by an older, non-atomic run) would
    make resume fail. Here the file named by ``last_checkpoint`` is used when
    it is complete, else the newest complete ``iter_N.pth``/``epoch_N.pth``
    in ``work_dir``.

    A work dir copied elsewhere still names the original directory's
    checkpoint (mmengine writes the path it saved to): when the work dir
    holds a complete file of the same name, that one is used. ``report``
    (e.g. ``print``) gets one line for each of these decisions: an unusable
    ``last_checkpoint``, a checkpoint taken from the work dir instead of the
    named one, or a named checkpoint outside the work dir.
    """
    report = report or (lambda message: None)
    named, problem = read_last_checkpoint(work_dir)
    if named is not None:
        if not osp.isabs(named) and not osp.exists(named):
            named = osp.join(work_dir, osp.basename(named))
        named_dir = osp.dirname(osp.realpath(named))
        here = osp.join(work_dir, osp.basename(named))
        named_is_complete = is_complete_checkpoint(named)
        if named_dir != osp.realpath(work_dir):
            if is_complete_checkpoint(here):
                report(f'last_checkpoint names {named}, outside the work dir'
                       f' {work_dir} (a copied work dir?); using the copy in'
                       f' the work dir, {here}')
                return here
            if named_is_complete:
                report(f'using {named}: last_checkpoint names this '
                       f'checkpoint in {osp.dirname(named) or "."}, not in '
                       f'the work dir {work_dir}')
                return named
        if named_is_complete:
            return named
        problem = (f'last_checkpoint names {named}, which is missing or '
                   'incomplete')
    if not osp.isdir(work_dir):
        return None
    found = []
    for name in os.listdir(work_dir):
        match = _CKPT_NAME.match(name)
        if match:
            found.append((int(match.group(1)), name))
    for _, name in sorted(found, reverse=True):
        path = osp.join(work_dir, name)
        if is_complete_checkpoint(path):
            if problem:
                report(f'{problem}; using the newest complete checkpoint '
                       f'in the work dir, {path}')
            return path
    return None
