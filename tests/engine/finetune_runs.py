"""Short training runs shared by the end-to-end fine-tuning tests
(test_torchvision_finetune.py, test_torchvision_det_finetune.py): a config
trained for a few AdamW iterations in-process with mmengine's Runner, from
a trained checkpoint through the config's ``mobilenet_mm.FinetuneHook`` or
from scratch (the same config without the hook)."""
import glob
import os.path as osp

import torch

FINETUNE_HOOK = 'mobilenet_mm.FinetuneHook'


def finetune_hooks(hooks, checkpoint):
    """``hooks`` (a config's ``custom_hooks``) with its FinetuneHook
    pointing at ``checkpoint``; without the hook when ``checkpoint`` is
    None (from scratch)."""
    kept = [dict(h) for h in hooks if h['type'] != FINETUNE_HOOK]
    if checkpoint is None:
        return kept
    found = [dict(h, checkpoint=checkpoint) for h in hooks
             if h['type'] == FINETUNE_HOOK]
    assert found, f'the config has no {FINETUNE_HOOK} to point at a checkpoint'
    return kept + found


def short_run(cfg, work_dir, iters, lr, checkpoint=None, validate=True,
              warmup=None):
    """Train ``cfg`` for ``iters`` iterations of AdamW at ``lr`` on one
    thread, seed 0, then (``validate``) evaluate once on its val set. The
    learning rate is constant, or with ``warmup`` iterations the demo's
    schedule: a linear warm-up, then cosine to 0.

    Returns (runner, metrics or None). The checkpoint of the last iteration
    is ``work_dir/iter_{iters}.pth``.
    """
    from mmengine.runner import Runner
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=0)
    cfg.custom_hooks = finetune_hooks(cfg.get('custom_hooks', []),
                                      checkpoint)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].update(num_workers=0, persistent_workers=False)
    cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
        type='AdamW', lr=lr, weight_decay=1e-4))
    cfg.param_scheduler = [] if warmup is None else [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
             end=warmup),
        dict(type='CosineAnnealingLR', T_max=iters - warmup, eta_min=0.,
             by_epoch=False, begin=warmup, end=iters)]
    # val_begin past the end: no validation inside train() (the loop would
    # run one at its last iteration), one by runner.val() below.
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_begin=iters + 1)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.log_processor = dict(by_epoch=False)
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=iters)
    if not validate:
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: tiny runs crawl
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
        return runner, runner.val() if validate else None
    finally:
        torch.set_num_threads(threads)


def run_log(work_dir):
    """The text of the run's log file (mmengine writes
    ``work_dir/<timestamp>/<timestamp>.log``)."""
    paths = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(paths) == 1, f'expected one log under {work_dir}: {paths}'
    with open(paths[0]) as f:
        return f.read()
