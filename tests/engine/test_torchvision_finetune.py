"""Fine-tuning from a trained LR-ASPP in torchvision's layout
(the torchvision LR-ASPP fine-tuning config) beats training from
scratch on the same short schedule: the "trained" checkpoint is the
torchvision config's model (21 classes) trained here on one generated
split; the user's data set is another split with 3 classes."""
import glob
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mobilenet_mm.datasets import generate_cityscapes_segmentation

from tests.conftest import REPO as ROOT  # noqa: E402
CUSTOM = osp.join(ROOT, 'configs', 'lraspp',
                  'lraspp_mobilenetv3-large-d16-torchvision-finetune_1xb8-10k_'
                  'custom-480x480.py')
SIZE = (64, 128)  # (h, w) of the generated scenes
CLASS_KEYS = ['decode_head.conv_seg.weight', 'decode_head.conv_seg.bias',
              'decode_head.conv_seg_low.weight',
              'decode_head.conv_seg_low.bias']


@pytest.fixture(autouse=True, scope='module')
def restore_default_scope():
    """The mmseg models built here switch mmengine's default scope; later
    test files expect the one they found."""
    from mmengine.registry import DefaultScope, init_default_scope
    before = DefaultScope.get_current_instance()
    yield
    if before is not None:
        init_default_scope(before.scope_name)


def user_layout(root, num_train, num_val, seed):
    """A data set in the custom config's layout (images/, labels/) from the
    synthetic Cityscapes generator."""
    source = generate_cityscapes_segmentation(
        osp.join(root, 'src'), num_train=num_train, num_val=num_val,
        size=SIZE, seed=seed)
    for split in ('train', 'val'):
        for folder, kind in (('leftImg8bit', 'images'),
                             ('gtFine', 'labels')):
            os.makedirs(osp.join(root, kind, split))
            for path in glob.glob(osp.join(source, folder, split, '*',
                                           '*.png')):
                name = osp.basename(path).replace(
                    '_leftImg8bit', '').replace('_gtFine_labelTrainIds', '')
                os.rename(path, osp.join(root, kind, split, name))
    return root


def tiny_run(work_dir, data_root, num_classes, iters, checkpoint=None):
    """The custom config as a user runs it, at the scenes' size, a short
    AdamW schedule, without (checkpoint=None) or with the fine-tune hook."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(CUSTOM)
    cfg.work_dir = work_dir
    cfg.model.decode_head.num_classes = num_classes
    cfg.model.data_preprocessor.size = SIZE
    load = dict(type='mobilenet_mm.LoadSegAnnotations',
                num_classes=num_classes)
    train_pipeline = [dict(type='LoadImageFromFile'), load,
                      dict(type='RandomFlip', prob=0.5),
                      dict(type='PackSegInputs')]
    test_pipeline = [dict(type='LoadImageFromFile'), load,
                     dict(type='PackSegInputs')]
    names = [f'class{i}' for i in range(num_classes)]
    for loader, pipeline in ((cfg.train_dataloader, train_pipeline),
                             (cfg.val_dataloader, test_pipeline)):
        loader.dataset.update(data_root=data_root, img_suffix='.png',
                              pipeline=pipeline,
                              metainfo=dict(classes=names,
                                            palette=[[0, 0, 0]] *
                                            num_classes))
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.train_dataloader.batch_size = 4
    cfg.test_dataloader = cfg.val_dataloader
    cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
        type='AdamW', lr=4e-3, weight_decay=1e-4))
    cfg.param_scheduler = []
    cfg.train_cfg.update(max_iters=iters, val_interval=10 * iters)
    cfg.custom_hooks = [] if checkpoint is None else [
        dict(type='mobilenet_mm.FinetuneHook', checkpoint=checkpoint)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        by_epoch=False, interval=iters)
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    cfg.randomness = dict(seed=0)
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner, runner.val()['mIoU']


def test_finetuning_from_a_trained_checkpoint_beats_scratch(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trained_data = user_layout(str(tmp_path / 'pretrain'), 24, 1, seed=1)
        user_data = user_layout(str(tmp_path / 'user'), 8, 4, seed=2)
        # "trained": torchvision's 21-class layout, on the other split
        tiny_run(str(tmp_path / 'trained'), trained_data, 21, iters=100)
        checkpoint = str(tmp_path / 'trained' / 'iter_100.pth')
        # the user's data set: 3 classes (road, sidewalk, building; the
        # other ids are ignored), the same short schedule twice
        finetuned, finetuned_miou = tiny_run(
            str(tmp_path / 'finetune'), user_data, 3, iters=15,
            checkpoint=checkpoint)
        _, scratch_miou = tiny_run(str(tmp_path / 'scratch'), user_data, 3,
                                   iters=15)
    finally:
        torch.set_num_threads(threads)
    print(f'\nmIoU after 15 iterations: from the trained checkpoint '
          f'{finetuned_miou:.1f}, from scratch {scratch_miou:.1f}')
    assert finetuned_miou > scratch_miou + 15
    # what was re-initialised, and why, is in the log
    log = open(glob.glob(osp.join(str(tmp_path / 'finetune'), '*',
                                  '*.log'))[0]).read()
    assert ('class layers decode_head.conv_seg, decode_head.conv_seg_low '
            "keep their new initialisation (they predict the checkpoint's "
            "classes, not this data set's); dropped checkpoint keys: " +
            ', '.join(CLASS_KEYS)) in log
