"""Shared by ``tools/train.py`` and ``tools/test.py``.

Bad input from the command line or the config ends in one line on stderr and
exit status 1 (argparse's usage errors: 2), never a traceback: the checks
here run before the expensive parts and raise :class:`CLIError` with the
message; :func:`run_cli` prints it. Each message names the bad value and
where it came from. Errors met later (a bad image or label file inside the
data loader, a NaN loss) are printed the same way by :func:`run_cli`.

Distributed training without a GPU (``--launcher pytorch|slurm|mpi`` on a
CPU-only machine) is set up here too: :func:`init_cpu_distributed` starts a
gloo process group and selects ``CPUDistributedDataParallel``
(:mod:`mobilenet_mm.engine.cpu_ddp`), which runs SyncBN layers as
``CPUSyncBatchNorm``.
"""
import os
import os.path as osp
import re
import sys
import warnings
from typing import Callable, Iterable, List, Optional, Sequence


# The host library (and registry scope) of each task.
TASK_SCOPES = {'det': 'mmdet', 'seg': 'mmseg'}


class CLIError(Exception):
    """An error the user fixes by changing the command line or config."""


def run_cli(main: Callable[[Optional[Sequence[str]]], int],
            argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)``; a :class:`CLIError` or a checkpoint that cannot
    be loaded becomes one line on stderr and exit status 1."""
    # setuptools < 81 is pinned on purpose (mmengine resolves ``mmdet::``
    # bases with pkg_resources); its deprecation notice on every run would
    # bury the one line that matters.
    warnings.filterwarnings(
        'ignore', message='pkg_resources is deprecated', category=UserWarning)
    prog = osp.basename(sys.argv[0]) or 'mobilenet_mm'
    try:
        return main(argv) or 0
    except Exception as e:  # noqa: B902  (re-raised unless a user error)
        if not isinstance(e, _user_error_types()):
            raise
        print(f'{prog}: error: {one_line(e)}', file=sys.stderr)
        return 1
    finally:
        destroy_process_group()


def destroy_process_group() -> None:
    """Shut the default process group down, if one was started.

    Gloo's worker threads must stop while the interpreter is still alive: a
    process that exits with the group up can abort at finalisation
    (SIGABRT, "terminate called without an active exception"), which turns
    a finished distributed run into a failed one.
    """
    import torch.distributed as torch_dist
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _user_error_types() -> tuple:
    """Errors whose message says all the user needs: bad command line or
    config, a checkpoint that cannot be loaded, bad data (image, label,
    annotation file) and a non-finite loss. Imported here, when an error
    is being handled, so that the tools start without them."""
    from mobilenet_mm.datasets.seg_transforms import SegLabelError
    from mobilenet_mm.deploy.ort_model import OnnxExportError
    from mobilenet_mm.deploy.quantize import CalibrationDataError
    from mobilenet_mm.engine.nan_guard import NonFiniteLossError
    from mobilenet_mm.utils.checkpoint import CheckpointLoadError
    return (CLIError, CheckpointLoadError, NonFiniteLossError, SegLabelError,
            OnnxExportError, CalibrationDataError)


_WORKER_PREFIX = re.compile(r'^[\w.]+: ')


def one_line(error: BaseException) -> str:
    """The message of ``error`` as one line.

    An error raised in a data loader worker reaches the main process with
    torch's wrapper text ("Caught X in DataLoader worker process 0",
    "Original Traceback ...") in front of it; the original message is the
    last line, after the exception's qualified name.
    """
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if 'Original Traceback' in text and lines:
        return _WORKER_PREFIX.sub('', lines[-1].strip(), count=1)
    return ' '.join(line.strip() for line in lines)


# ------------------------------------------------------------------ config --

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


def has_accelerator() -> bool:
    """Whether mmengine finds a device it can run distributed/AMP on."""
    from mmengine.device import (is_cuda_available, is_mlu_available,
                                 is_musa_available, is_npu_available)
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def set_launcher(cfg, launcher: str, local_rank: int) -> None:
    """Record the launcher; torchrun passes LOCAL_RANK itself, older
    launchers pass ``--local_rank``. Without a GPU, :func:`build_runner`
    starts the process group itself (:func:`init_cpu_distributed`)."""
    cfg.launcher = launcher
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


# --------------------------------------------------- distributed on the CPU --
#
# mmengine's init_dist binds every process to a GPU (torch.cuda.set_device)
# and its DDP wrapper passes device_ids=[LOCAL_RANK]; both fail without a
# GPU. mmengine skips init_dist when a process group exists, so on a CPU-only
# machine the tools start a gloo group themselves and wrap the model with
# CPUDistributedDataParallel (no device_ids; mobilenet_mm.engine.cpu_ddp).
# torch's SyncBatchNorm has no CPU kernels and DDP refuses it on CPU modules,
# so that wrapper replaces it with CPUSyncBatchNorm (gloo all-reduces).


def _env_int(name: str, launcher: str) -> int:
    value = os.environ.get(name)
    if value is None:
        hint = {
            'pytorch': 'start the tool with torchrun (tools/dist_train.sh)',
            'slurm': 'start the tool with srun',
            'mpi': 'start the tool with mpirun'
        }[launcher]
        raise CLIError(f'--launcher {launcher}: the environment variable '
                       f'{name} is not set; {hint}')
    return int(value)


def _cpu_dist_env(launcher: str, port: Optional[int] = None):
    """(rank, world size) of this process, from the launcher's environment;
    sets MASTER_ADDR/MASTER_PORT as mmengine's init_dist does."""
    if launcher == 'pytorch':  # torchrun sets all four
        rank = _env_int('RANK', launcher)
        world_size = _env_int('WORLD_SIZE', launcher)
        for name in ('MASTER_ADDR', 'MASTER_PORT'):
            if name not in os.environ:
                raise CLIError(f'--launcher pytorch: the environment '
                               f'variable {name} is not set; start the tool '
                               'with torchrun (tools/dist_train.sh)')
    elif launcher == 'slurm':
        rank = _env_int('SLURM_PROCID', launcher)
        world_size = _env_int('SLURM_NTASKS', launcher)
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
        if port is not None:
            os.environ['MASTER_PORT'] = str(port)
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            import subprocess
            nodes = os.environ.get('SLURM_NODELIST', '')
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {nodes} | head -n1')
    elif launcher == 'mpi':
        rank = _env_int('OMPI_COMM_WORLD_RANK', launcher)
        world_size = _env_int('OMPI_COMM_WORLD_SIZE', launcher)
        os.environ['LOCAL_RANK'] = os.environ.get(
            'OMPI_COMM_WORLD_LOCAL_RANK', '0')
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            raise CLIError('--launcher mpi: set MASTER_ADDR to the address '
                           'of the first node')
    else:
        raise CLIError(f'unknown launcher {launcher!r}')
    os.environ['RANK'] = str(rank)
    os.environ['WORLD_SIZE'] = str(world_size)
    return rank, world_size


def init_cpu_distributed(cfg) -> None:
    """Start a gloo process group for ``cfg.launcher`` and make the runner
    wrap the model with ``CPUDistributedDataParallel``.

    ``env_cfg.dist_cfg`` gives ``timeout`` (seconds) and, for slurm,
    ``port``; a ``backend`` other than gloo (mmdet's and mmseg's runtime
    bases say nccl) is replaced, since gloo is the CPU backend.
    """
    import datetime

    import torch.distributed as torch_dist
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    rank, world_size = _cpu_dist_env(cfg.launcher, dist_cfg.get('port'))
    if dist_cfg.get('backend', 'gloo') != 'gloo' and rank == 0:
        print(f'--launcher {cfg.launcher}: no GPU here, using the gloo '
              f"backend on the CPU instead of {dist_cfg['backend']}",
              file=sys.stderr)
    dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=dist_cfg.get('timeout',
                                                            1800)))
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='CPUDistributedDataParallel',
            broadcast_buffers=False,  # what mmengine's default wrapper does
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper.get('type', 'MMDistributedDataParallel') in (
            'MMDistributedDataParallel', 'mmengine.MMDistributedDataParallel'):
        wrapper['type'] = 'CPUDistributedDataParallel'


# --------------------------------------------------------------- data paths --

def _is_remote(path: str) -> bool:
    return '://' in path


def _join_root(root: Optional[str], path: str) -> str:
    # What mmengine's BaseDataset does: relative paths hang off data_root.
    if root and not osp.isabs(path) and not _is_remote(path):
        return osp.join(root, path)
    return path


def _check_dataset(dataset, where: str) -> None:
    if not isinstance(dataset, dict):
        return
    # Dataset wrappers (RepeatDataset, ConcatDataset, ...) hold the real ones.
    if isinstance(dataset.get('dataset'), dict):
        _check_dataset(dataset['dataset'], f'{where}.dataset')
    if isinstance(dataset.get('datasets'), (list, tuple)):
        for i, sub in enumerate(dataset['datasets']):
            _check_dataset(sub, f'{where}.datasets[{i}]')
    backend = (dataset.get('backend_args') or {}).get('backend', 'local')
    if backend not in ('local', 'disk'):
        return  # remote storage: nothing to check on this disk
    root = dataset.get('data_root')
    if isinstance(root, str) and root and not _is_remote(root):
        if not osp.isdir(root):
            raise CLIError(
                f'dataset root does not exist: {root} ({where}.data_root)')
    ann_file = dataset.get('ann_file')
    if isinstance(ann_file, str) and ann_file:
        path = _join_root(root, ann_file)
        if not _is_remote(path) and not osp.exists(path):
            raise CLIError(
                f'annotation file does not exist: {path} ({where}.ann_file)')
    prefixes = dataset.get('data_prefix')
    if isinstance(prefixes, dict):
        for key, value in prefixes.items():
            if not isinstance(value, str) or not value:
                continue
            path = _join_root(root, value)
            if not _is_remote(path) and not osp.exists(path):
                raise CLIError(f'dataset folder does not exist: {path} '
                               f'({where}.data_prefix.{key})')


def check_data_paths(cfg, loaders: Sequence[str],
                     evaluators: Sequence[str] = ()) -> None:
    """Check ``data_root``, ``ann_file`` and ``data_prefix`` of the
    datasets in the given dataloaders, and ``ann_file`` of the evaluators,
    before anything is built."""
    for key in loaders:
        loader = cfg.get(key)
        if isinstance(loader, dict):
            _check_dataset(loader.get('dataset'), f'{key}.dataset')
    for key in evaluators:
        evaluator = cfg.get(key)
        metrics = evaluator if isinstance(evaluator, (list, tuple)) else [
            evaluator
        ]
        for i, metric in enumerate(metrics):
            if not isinstance(metric, dict):
                continue
            ann_file = metric.get('ann_file')
            if (isinstance(ann_file, str) and ann_file
                    and not _is_remote(ann_file)
                    and not osp.exists(ann_file)):
                where = key if len(metrics) == 1 else f'{key}[{i}]'
                raise CLIError(f'annotation file does not exist: {ann_file}'
                               f' ({where}.ann_file)')


def check_detection_data(cfg, loaders: Sequence[str]) -> None:
    """COCO-format annotation files of the given dataloaders (valid JSON,
    known category and image ids, boxes with width and height >= 0, every
    annotated category among the config's classes) and the head's
    ``num_classes``: :func:`mobilenet_mm.datasets.coco_checks.
    check_detection_config`, whose errors are one-line CLIErrors."""
    from mobilenet_mm.datasets.coco_checks import check_detection_config
    check_detection_config(cfg, loaders)


# ------------------------------------------------------------- checkpoints --

def _strip_prefix(keys: Iterable[str], prefix: str) -> List[str]:
    return [k[len(prefix):] if k.startswith(prefix) else k for k in keys]


def read_state_dict(path: str, what: str = 'checkpoint') -> dict:
    """Safely load the state dict of a checkpoint file (before anything is
    built, so a refused or broken file fails first and quietly)."""
    from mobilenet_mm.utils.checkpoint import safe_torch_load
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
    return dict(zip(_strip_prefix(state, 'module.'), state.values()))


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


def build_runner(cfg, checkpoint: Optional[str] = None,
                 what: str = 'checkpoint', check_shapes: bool = True):
    """Build the runner from ``cfg``; with ``checkpoint``, first load it
    safely and, once the model exists, check that it fits.

    Warnings raised while building are held back and shown only when the
    checks pass, so a refused checkpoint really ends in one line.
    """
    # URLs (http://, open-mmlab://...) are left to mmengine's loaders.
    check = bool(checkpoint) and not _is_remote(checkpoint)
    state = read_state_dict(checkpoint, what) if check else None
    if cfg.get('launcher', 'none') != 'none' and not has_accelerator():
        init_cpu_distributed(cfg)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    with warnings.catch_warnings(record=True) as caught:
        runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else
                  RUNNERS.build(cfg))
        if state is not None:
            check_state_dict_matches(runner.model, state, checkpoint, what,
                                     check_shapes)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return runner
