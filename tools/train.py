"""Train a detection (mmdet) or segmentation (mmseg) config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm|mpi]

The task is read from the config (``default_scope``, else ``model.type``);
mobilenet_mm is always imported, so its modules, safe checkpoint loading and
atomic checkpoint writing are in place. Bad input (missing config, data set
paths or checkpoints, a checkpoint that does not fit the model, a broken
COCO annotation file, a bad image or label met during training) and a NaN
or infinite loss end with one line on stderr and exit status 1; checkpoints
already written stay as they are.

Unless the config has its own ``mobilenet_mm.NanGuardHook`` (the shipped
ones do), one is added (``action='stop'``; ``'skip'`` under mixed
precision; a config's guard without an ``action`` gets the same rule).
``--launcher pytorch|slurm|mpi`` on a machine without a GPU trains on the
CPU with the gloo backend (SyncBN included).
"""
import argparse
import os.path as osp
import sys

from mobilenet_mm.apis import (build_runner, detect_task, has_accelerator,
                               load_config, register_host_modules,
                               resolve_work_dir, run_cli, set_launcher)
from mobilenet_mm.datasets.path_checks import (check_data_paths,
                                               check_detection_data)
from mobilenet_mm.errors import CLIError

from mobilenet_mm.datasets.seg_checks import check_segmentation_num_classes
from mobilenet_mm.utils.preflight import check_batch_sizes, check_work_dir

RESUME_AUTO = 'auto'


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Train a detector (mmdet config) or a segmentor (mmseg '
        'config) with mobilenet_mm modules.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const=RESUME_AUTO,
        help='resume from CKPT; without a value, from the latest complete '
        'checkpoint in the work dir (a fresh start when there is none)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision training (needs a GPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, KEY=VALUE pairs (e.g. '
        'train_cfg.max_iters=100)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torchrun sets LOCAL_RANK; torch.distributed.launch passes this flag.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def use_atomic_checkpoint_hook(cfg) -> None:
    """Swap a plain CheckpointHook for ``mobilenet_mm.AtomicCheckpointHook``
    (same arguments; its ``last_checkpoint`` file is written atomically)."""
    hooks = cfg.get('default_hooks') or {}
    checkpoint = hooks.get('checkpoint')
    if isinstance(checkpoint, dict) and checkpoint.get('type') in (
            'CheckpointHook', 'mmengine.CheckpointHook'):
        checkpoint['type'] = 'mobilenet_mm.AtomicCheckpointHook'


def add_nan_guard(cfg) -> None:
    """Add a ``mobilenet_mm.NanGuardHook`` unless the config has one:
    without it a NaN loss silently turns every later checkpoint into NaN
    weights. It stops training, except under mixed precision, where an
    fp16 overflow now and then is expected (the loss scaler skips such
    steps itself): there it skips the step, and stops after 10 in a row."""
    hooks = list(cfg.get('custom_hooks') or [])
    wrapper = str((cfg.get('optim_wrapper') or {}).get('type', ''))
    action = 'skip' if wrapper.split('.')[-1] == 'AmpOptimWrapper' else 'stop'
    guards = [h for h in hooks if isinstance(h, dict) and str(
        h.get('type', '')).split('.')[-1] == 'NanGuardHook']
    if guards:
        # The shipped configs carry the guard (so that mmdet's and mmseg's
        # tools have it too) without an action: the rule above fills it in.
        for guard in guards:
            guard.setdefault('action', action)
        return
    hooks.append(dict(type='mobilenet_mm.NanGuardHook', action=action))
    cfg.custom_hooks = hooks


def enable_amp(cfg) -> None:
    if not has_accelerator():
        raise CLIError('--amp needs a GPU (mmengine\'s AmpOptimWrapper runs '
                       'on CUDA, NPU, MLU or MUSA) and there is none here')
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper'):
        print('--amp: the config already uses AmpOptimWrapper',
              file=sys.stderr)
        return
    if wrapper not in ('OptimWrapper', 'mmengine.OptimWrapper'):
        raise CLIError(f'--amp replaces optim_wrapper.type OptimWrapper, but '
                       f'the config has {wrapper!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def set_resume(cfg, resume: str, work_dir: str) -> None:
    """Turn ``--resume [CKPT]`` into ``cfg.resume`` and ``cfg.load_from``.

    The automatic case is resolved here (:func:`find_resume_checkpoint`
    skips an empty or garbled ``last_checkpoint`` and truncated files, and
    says so, as it does when the checkpoint comes from another directory)
    and the runner gets an explicit path.
    """
    from mobilenet_mm.utils import find_resume_checkpoint
    if resume == RESUME_AUTO:
        found = find_resume_checkpoint(
            work_dir, report=lambda line: print(f'--resume: {line}',
                                                file=sys.stderr))
        if found is None:
            print(f'--resume: no checkpoint in {work_dir}, starting from '
                  'scratch', file=sys.stderr)
            cfg.resume = False
            return
        resume = found
    elif not osp.isfile(resume):
        raise CLIError(f'--resume checkpoint does not exist: {resume}')
    cfg.resume = True
    cfg.load_from = resume


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    task = detect_task(cfg, args.config)
    cfg.setdefault('default_scope',
                   {'det': 'mmdet', 'seg': 'mmseg'}[task])
    cfg.work_dir = resolve_work_dir(cfg, args.work_dir, args.config)
    check_work_dir(cfg.work_dir)
    set_launcher(cfg, args.launcher, args.local_rank)
    if args.amp:
        enable_amp(cfg)
    if args.resume is not None:
        set_resume(cfg, args.resume, cfg.work_dir)
    elif cfg.get('resume') and not cfg.get('load_from'):
        # resume=True in the config means "auto": resolve it safely too.
        set_resume(cfg, RESUME_AUTO, cfg.work_dir)
    loaders = ['train_dataloader']
    evaluators = []
    if cfg.get('val_cfg') and cfg.get('val_dataloader'):
        loaders.append('val_dataloader')
        evaluators.append('val_evaluator')
    check_data_paths(cfg, loaders, evaluators)
    check_batch_sizes(cfg, loaders)
    if task == 'det':
        check_detection_data(cfg, loaders)
    else:
        check_segmentation_num_classes(cfg, loaders)
    load_from = cfg.get('load_from')
    if load_from and '://' not in load_from and not osp.isfile(load_from):
        raise CLIError(f'load_from checkpoint does not exist: '
                       f'{cfg.load_from}')
    use_atomic_checkpoint_hook(cfg)
    add_nan_guard(cfg)

    register_host_modules(task)
    # A load_from/resume checkpoint must have the model's keys; shapes may
    # differ when fine-tuning (e.g. another class count), not when resuming.
    resume = bool(cfg.get('resume'))
    runner = build_runner(
        cfg, load_from,
        what='resume checkpoint' if resume else 'load_from checkpoint',
        check_shapes=resume)
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
