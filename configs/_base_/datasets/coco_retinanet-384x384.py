# COCO 2017 at 384x384 with the augmentation of TF Model Garden's mobile
# RetinaNet configs (official/vision/configs/experiments/retinanet/
# coco_mobilenetv2_tpu.yaml: horizontal flip, scale jitter 0.5-2.0), as in
# [V4] section 7.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

# mmdet's CocoDataset plus checks that end bad data in one clear line
# (mobilenet_mm/datasets/coco_checks.py), and the class-count check.
dataset_type = 'mobilenet_mm.CocoDetection'
# The training guards travel with the config, so that any tool running it
# (ours, mmdet's tools/train.py) has them: a NaN/inf loss stops training
# before it reaches the weights (mobilenet_mm/engine/nan_guard.py), and the
# schedule's checkpoint hook writes last_checkpoint atomically. The notice
# hook logs that `import mobilenet_mm` replaced mmengine's local checkpoint
# I/O (mobilenet_mm/engine/checkpoint_backend.py).
custom_hooks = [
    dict(type='mobilenet_mm.ClassCountCheckHook'),
    dict(type='mobilenet_mm.NanGuardHook'),
    dict(type='mobilenet_mm.CheckpointIONoticeHook'),
]

input_size = 384

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomResize',
        scale=(input_size, input_size),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute',
        crop_size=(input_size, input_size),
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=(input_size, input_size)),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
# 8 GPUs x 32 images = TF Model Garden's global batch 256 (its lr 0.32).
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    batch_sampler=None,
    dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader
