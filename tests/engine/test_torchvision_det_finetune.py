"""Fine-tuning from a trained SSDLite in torchvision's layout (the
torchvision SSDLite fine-tuning config) beats training from scratch on the
same short schedule: the "trained" checkpoint is the torchvision config's
model (91 outputs: COCO's 80 classes, background, ten unused ids) trained
here on one generated split whose annotation file lists COCO's categories;
the user's data set is another split with its own 5 classes, evaluated by
mmdet's CocoMetric."""
import json
import os
import os.path as osp

from mmengine.config import Config

from mobilenet_mm.datasets import DET_CLASSES, generate_coco_detection
from mobilenet_mm.models.torchvision_conversion import coco_category_ids
from tests.conftest import CONFIGS
from tests.engine.finetune_runs import run_log, short_run

TORCHVISION = osp.join(CONFIGS, 'ssdlite',
                       'ssdlite_mobilenetv3-large-reduced-torchvision_'
                       '8xb24-660e_coco-320x320.py')
CUSTOM = osp.join(CONFIGS, 'ssdlite',
                  'ssdlite_mobilenetv3-large-reduced-torchvision-finetune_'
                  '1xb24-60e_custom-320x320.py')
SIZE = 96  # the generated images' side; the anchors' input_size follows
# One large shape per image: the detector learns it within a test's budget.
SHAPES = dict(max_objects=1, radius_range=(0.25, 0.45))
ITERS = dict(trained=140, user=45)
WARMUP = dict(trained=15, user=5)
MARGIN = 0.02  # bbox mAP; measured: configs/README.md, "Fine-tuning"
CLASS_KEYS = [f'bbox_head.cls_convs.{i}.1.{p}' for i in range(6)
              for p in ('weight', 'bias')]


def coco_layout(root, num_train, num_val, seed):
    """A generated split whose annotation files list COCO's 80 categories
    (real ids, with the gaps), the shapes drawn as its first five: what
    the torchvision config reads on COCO."""
    from mmdet.datasets import CocoDataset
    generate_coco_detection(root, num_train=num_train, num_val=num_val,
                            size=(SIZE, SIZE), seed=seed, **SHAPES)
    names = CocoDataset.METAINFO['classes']
    ids = coco_category_ids()
    for split in ('train', 'val'):
        path = osp.join(root, 'annotations', f'instances_{split}2017.json')
        with open(path) as f:
            data = json.load(f)
        for ann in data['annotations']:  # shape k (id k + 1) -> COCO class k
            ann['category_id'] = ids[ann['category_id'] - 1]
        data['categories'] = [dict(id=i, name=n, supercategory='thing')
                              for i, n in zip(ids, names)]
        with open(path, 'w') as f:
            json.dump(data, f)
    return root + '/'


def user_layout(root, num_train, num_val, seed):
    """A generated split in the custom config's layout
    (annotations/instances_{train,val}.json, images/{train,val}/)."""
    generate_coco_detection(root, num_train=num_train, num_val=num_val,
                            size=(SIZE, SIZE), seed=seed, **SHAPES)
    os.makedirs(osp.join(root, 'images'))
    for split in ('train', 'val'):
        os.rename(osp.join(root, 'annotations', f'instances_{split}2017.json'),
                  osp.join(root, 'annotations', f'instances_{split}.json'))
        os.rename(osp.join(root, f'{split}2017'),
                  osp.join(root, 'images', split))
    return root + '/'


def at_size(cfg, data_root, batch_size):
    """``cfg`` on ``data_root`` at the generated size: the anchors'
    input_size and both resizes follow it; no IoU crop (as the demo
    config, a short schedule learns faster without it)."""
    cfg.model.bbox_head.anchor_generator.input_size = SIZE
    train, test = cfg.train_dataloader, cfg.test_dataloader
    train.dataset.pipeline = [
        step for step in train.dataset.pipeline
        if step['type'] != 'mobilenet_mm.SSDIoUCrop']
    for loader in (train, test):
        for step in loader.dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (SIZE, SIZE)
        loader.dataset.data_root = data_root
    train.batch_size = test.batch_size = batch_size
    cfg.val_dataloader = test
    cfg.val_evaluator.ann_file = data_root + test.dataset.ann_file
    cfg.test_evaluator = cfg.val_evaluator
    return cfg


def user_run(work_dir, data_root, checkpoint=None):
    """The custom config as a user runs it (the lines marked "<-": data
    root, classes, checkpoint), at the generated size and the short
    schedule; returns mmdet's CocoMetric on the val split."""
    cfg = Config.fromfile(CUSTOM)
    cfg.model.bbox_head.num_classes = len(DET_CLASSES)
    for key in ('train_dataloader', 'test_dataloader'):
        cfg[key].dataset.metainfo = dict(classes=DET_CLASSES)
    cfg = at_size(cfg, data_root, batch_size=8)
    _, metrics = short_run(cfg, work_dir, ITERS['user'], lr=4e-3,
                           checkpoint=checkpoint, warmup=WARMUP['user'])
    return metrics


def figures(metrics):
    return (f'{metrics["coco/bbox_mAP"]:.3f} '
            f'({metrics["coco/bbox_mAP_50"]:.3f})')


def test_finetuning_from_a_trained_detector_beats_scratch(tmp_path):
    trained_data = coco_layout(str(tmp_path / 'coco'), 400, 0, seed=1)
    user_data = user_layout(str(tmp_path / 'user'), 96, 24, seed=2)
    # "trained": the torchvision config (COCO's classes) on the other
    # split, with He init as the demo config (from scratch in a short run
    # it learns faster than the recipe's normal(0, 0.03))
    cfg = at_size(Config.fromfile(TORCHVISION), trained_data, batch_size=8)
    cfg.model.backbone.init_cfg = None
    short_run(cfg, str(tmp_path / 'trained'), ITERS['trained'], lr=8e-3,
              validate=False, warmup=WARMUP['trained'])
    checkpoint = str(tmp_path / 'trained' / f'iter_{ITERS["trained"]}.pth')
    # the user's data set, 5 classes; the same short schedule twice
    finetuned = user_run(str(tmp_path / 'finetune'), user_data, checkpoint)
    scratch = user_run(str(tmp_path / 'scratch'), user_data)
    print(f'\nafter {ITERS["user"]} iterations, bbox mAP (AP50): from the '
          f'trained checkpoint {figures(finetuned)}, from scratch '
          f'{figures(scratch)}')
    assert finetuned['coco/bbox_mAP'] > scratch['coco/bbox_mAP'] + MARGIN
    # what was re-initialised, and why, is in the log
    layers = ', '.join(f'bbox_head.cls_convs.{i}.1' for i in range(6))
    assert (f'class layers {layers} keep their new initialisation (they '
            "predict the checkpoint's classes, not this data set's); "
            'dropped checkpoint keys: ' + ', '.join(CLASS_KEYS)
            ) in run_log(str(tmp_path / 'finetune'))
