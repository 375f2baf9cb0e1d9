"""Distributed launch for the tools (``--launcher pytorch|slurm|mpi``).

mmengine's init_dist binds every process to a GPU (torch.cuda.set_device)
and its DDP wrapper passes device_ids=[LOCAL_RANK]; both fail without a
GPU. mmengine skips init_dist when a process group exists, so on a CPU-only
machine the tools start a gloo group themselves and wrap the model with
CPUDistributedDataParallel (no device_ids; mobilenet_mm.engine.cpu_ddp).
torch's SyncBatchNorm has no CPU kernels and DDP refuses it on CPU modules,
so that wrapper replaces it with CPUSyncBatchNorm (gloo all-reduces).
"""
import os
import sys
from typing import Optional

from ..errors import CLIError

__all__ = ['has_accelerator', 'set_launcher', 'init_cpu_distributed']


def has_accelerator() -> bool:
    """Whether mmengine finds a device it can run distributed/AMP on."""
    from mmengine.device import (is_cuda_available, is_mlu_available,
                                 is_musa_available, is_npu_available)
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def set_launcher(cfg, launcher: str, local_rank: int) -> None:
    """Record the launcher; torchrun passes LOCAL_RANK itself, older
    launchers pass ``--local_rank``. Without a GPU, ``build_runner``
    starts the process group itself (:func:`init_cpu_distributed`)."""
    cfg.launcher = launcher
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


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
