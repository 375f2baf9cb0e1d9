"""The embedded LR-ASPP demo (configs/demo/lraspp_mobilenetv3-large-rf2-d16_
1xb8-250iter_synthetic-cityscapes-128x256.py): it is the real V3-Large
LR-ASPP config with only data and schedule changed, and it learns.
The short version here trains 120 iterations on 64x128 synthetic scenes
and must clear mIoU 40 and pixel accuracy 80 (the bars leave room for
seed-to-seed spread; the full demo's figure: configs/demo/README.md)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO

DEMO = osp.join(
    REPO, 'configs', 'demo', 'lraspp_mobilenetv3-large-rf2-d16_1xb8-250iter_'
    'synthetic-cityscapes-128x256.py')
REAL = osp.join(
    REPO, 'configs', 'lraspp',
    'lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py')

# Top-level keys the demo may change: data and schedule.
DATA_KEYS = {'data_root', 'crop_size', 'train_pipeline', 'test_pipeline',
             'train_dataloader', 'val_dataloader', 'test_dataloader'}
SCHEDULE_KEYS = {'max_iters', 'optim_wrapper', 'param_scheduler',
                 'train_cfg', 'default_hooks'}
SHORT_ITERS = 120
BAR = 40.0


def test_demo_changes_only_data_and_schedule():
    demo, real = Config.fromfile(DEMO), Config.fromfile(REAL)
    changed = {key for key in set(demo) | set(real)
               if demo.get(key) != real.get(key)}
    assert changed <= DATA_KEYS | SCHEDULE_KEYS | {'model'}, changed
    # In the model only the batch padding size follows the crop.
    demo_model, real_model = demo.model.to_dict(), real.model.to_dict()
    assert demo_model['data_preprocessor'].pop('size') == demo.crop_size
    real_model['data_preprocessor'].pop('size')
    assert demo_model == real_model
    assert demo.train_cfg.max_iters == 250


@pytest.fixture(scope='module')
def small_scenes(tmp_path_factory):
    from mobilenet_mm.datasets import generate_cityscapes_segmentation
    return generate_cityscapes_segmentation(
        str(tmp_path_factory.mktemp('synthetic_cityscapes')), num_train=48,
        num_val=8, size=(64, 128), seed=0)


def short_demo_config(root, work_dir):
    cfg = Config.fromfile(DEMO)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root
    height, width = 64, 128
    resize, crop = cfg.train_dataloader.dataset.pipeline[2:4]
    assert (resize.type, crop.type) == ('RandomResize', 'RandomCrop')
    resize.scale, crop.crop_size = (width, height), (height, width)
    cfg.val_dataloader.dataset.pipeline[1].scale = (width, height)
    cfg.model.data_preprocessor.size = (height, width)
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = SHORT_ITERS
    warmup, poly = cfg.param_scheduler
    warmup.end = poly.begin = SHORT_ITERS // 5
    poly.end = SHORT_ITERS
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1,
                                        save_last=False)
    cfg.randomness = dict(seed=0)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    return cfg


def test_short_demo_learns(small_scenes, tmp_path):
    from mmengine.runner import Runner
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared 2-core machine, see the demo config
    try:
        runner = Runner.from_cfg(short_demo_config(small_scenes,
                                                   str(tmp_path)))
        runner.train()
        metrics = runner.val_loop.run()
    finally:
        torch.set_num_threads(threads)
    assert metrics['mIoU'] >= BAR, metrics
    # The classes of the scenes are found; absent classes are not invented.
    assert metrics['aAcc'] > 80, metrics
