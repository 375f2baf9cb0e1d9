"""Fine-tuning from a trained LR-ASPP in torchvision's layout
(the torchvision LR-ASPP fine-tuning config) beats training from
scratch on the same short schedule: the "trained" checkpoint is the
torchvision config's model (21 classes) trained here on one generated
split; the user's data set is another split with 3 classes."""
import glob
import os
import os.path as osp

from mmengine.config import Config

from mobilenet_mm.datasets import generate_cityscapes_segmentation

from tests.conftest import REPO as ROOT  # noqa: E402
from tests.engine.finetune_runs import run_log, short_run
CUSTOM = osp.join(ROOT, 'configs', 'lraspp',
                  'lraspp_mobilenetv3-large-d16-torchvision-finetune_1xb8-10k_'
                  'custom-480x480.py')
SIZE = (64, 128)  # (h, w) of the generated scenes
CLASS_KEYS = ['decode_head.conv_seg.weight', 'decode_head.conv_seg.bias',
              'decode_head.conv_seg_low.weight',
              'decode_head.conv_seg_low.bias']


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


def tiny_run(work_dir, data_root, num_classes, iters, checkpoint=None,
             validate=True):
    """The custom config as a user runs it, at the scenes' size, a short
    AdamW schedule, without (checkpoint=None) or with the fine-tune hook;
    returns the val metrics (``validate``)."""
    cfg = Config.fromfile(CUSTOM)
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
    cfg.train_dataloader.batch_size = 4
    cfg.test_dataloader = cfg.val_dataloader
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    return short_run(cfg, work_dir, iters, lr=4e-3, checkpoint=checkpoint,
                     validate=validate)[1]


def test_finetuning_from_a_trained_checkpoint_beats_scratch(tmp_path):
    trained_data = user_layout(str(tmp_path / 'pretrain'), 24, 1, seed=1)
    user_data = user_layout(str(tmp_path / 'user'), 8, 4, seed=2)
    # "trained": torchvision's 21-class layout, on the other split
    tiny_run(str(tmp_path / 'trained'), trained_data, 21, iters=100,
             validate=False)
    checkpoint = str(tmp_path / 'trained' / 'iter_100.pth')
    # the user's data set: 3 classes (road, sidewalk, building; the
    # other ids are ignored), the same short schedule twice
    finetuned_miou = tiny_run(str(tmp_path / 'finetune'), user_data, 3,
                              iters=15, checkpoint=checkpoint)['mIoU']
    scratch_miou = tiny_run(str(tmp_path / 'scratch'), user_data, 3,
                            iters=15)['mIoU']
    print(f'\nmIoU after 15 iterations: from the trained checkpoint '
          f'{finetuned_miou:.1f}, from scratch {scratch_miou:.1f}')
    assert finetuned_miou > scratch_miou + 15
    # what was re-initialised, and why, is in the log
    assert ('class layers decode_head.conv_seg, decode_head.conv_seg_low '
            "keep their new initialisation (they predict the checkpoint's "
            "classes, not this data set's); dropped checkpoint keys: " +
            ', '.join(CLASS_KEYS)) in run_log(str(tmp_path / 'finetune'))
