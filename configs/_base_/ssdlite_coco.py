# SSDLite on COCO 2017 at 320x320: everything but the backbone's taps.
# Each configs/ssdlite_*.py inherits this file and sets the backbone and the
# two in_channels that follow its taps.
#
# Architecture: MobileNetV2 paper section 6.2 and MobileNetV3 paper section
# 6.2, as built by TF object_detection (ssd_mobilenet_v3_feature_extractor,
# samples/configs/ssdlite_mobilenet_v3_large_320x320_coco.config):
# two backbone maps (stride 16 and 32), four extra layers of 512/256/256/128
# channels, separable 3x3 predictors on all six maps, SSD anchors with scales
# 0.2-0.95 (3 boxes on the first map, 6 on the others), BN eps 1e-3 and
# decay 0.97 (momentum 0.03), ReLU6; softmax loss with hard negative mining
# 3:1 (MobileNetV2 paper; TF ssdlite_mobilenet_v2_coco.config; torchvision).
#
# Recipe: torchvision's ssdlite320_mobilenet_v3_large (references/detection/
# README.md: 8 GPUs x 24 images, SGD lr 0.15 momentum 0.9, weight decay
# 4e-5, cosine over 660 epochs after a 1000-iteration linear warm-up,
# "ssdlite" augmentation = IoU random crop + horizontal flip, inputs scaled
# to [-1, 1]), which reaches 21.3 mAP with this head design. The backbone
# starts from scratch, as in the TF release ("initialized from scratch") and
# torchvision, with their init (normal std 0.03 everywhere); to start from
# ImageNet weights set
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...).
# Every recipe item against its reference: configs/README.md, "Recipes
# against their references" (issue 14).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mobilenet_mm', 'mobilenet_mm.datasets.coco_checks'],
    allow_failed_imports=False)
# mmdet's CocoDataset plus checks that end bad data in one clear line
# (mobilenet_mm/datasets/coco_checks.py), and the class-count check.
dataset_type = 'mobilenet_mm.CocoDetection'
custom_hooks = [dict(type='mobilenet_mm.ClassCountCheckHook')]

input_size = 320
# TF batch norm decay 0.97 == PyTorch momentum 0.03; also in the backbone
# (TF override_base_feature_extractor_hyperparams, torchvision norm_layer).
norm_cfg = dict(type='BN', eps=1e-3, momentum=0.03)
# Channels-last (NHWC) tensors on the CPU: ~20% faster training and 4-27%
# faster inference there (tools/analysis/benchmark.py); GPUs keep NCHW,
# unmeasured here. Set False for a head that views feature maps.
channels_last = 'cpu'
# From scratch every conv is normal(0, 0.03), as torchvision's
# ssdlite320_mobilenet_v3_large (_normal_init when weights_backbone is None)
# and TF (truncated_normal_initializer stddev 0.03,
# ssdlite_mobilenet_v3_large_320x320_coco.config) do; the neck and head set
# the same std themselves (init_std). Configs that replace the backbone dict
# keep it with init_cfg={{_base_.scratch_init}}.
scratch_init = dict(type='Normal', layer='Conv2d', std=0.03)

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # TF and torchvision SSDLite map pixels to [-1, 1].
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='mobilenet_mm.MobileNetV3',
        arch='large',
        out_indices=(3, 4),
        out_types=('expansion', 'output'),
        channels_last=channels_last,
        norm_cfg=norm_cfg,
        # ImageNet weights: dict(type='Pretrained', checkpoint=...)
        init_cfg=scratch_init),
    # in_channels == the backbone's out_channels (tests check every config).
    neck=dict(
        type='mobilenet_mm.SSDLiteNeck',
        in_channels=(672, 960),
        extra_channels=(512, 256, 256, 128),
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='mobilenet_mm.SSDLiteHead',
        num_classes=80,
        in_channels=(672, 960, 512, 256, 256, 128),
        norm_cfg=norm_cfg,
        anchor_generator=dict(
            type='mobilenet_mm.SSDLiteAnchorGenerator',
            input_size=input_size,
            min_scale=0.2,
            max_scale=0.95),
        # TF faster_rcnn_box_coder scales (10, 10, 5, 5).
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0., 0., 0., 0.],
            target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
    # TF argmax matcher: IoU >= 0.5 positive, < 0.5 negative, every box gets
    # its best anchor (force_match_for_each_row).
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
        debug=False),
    # TF post-processing: NMS IoU 0.6, at most 100 detections.
    test_cfg=dict(
        nms_pre=1000,
        # split_thr=0: mmcv's batched_nms runs NMS class by class (it
        # splits when there are more boxes than split_thr) instead of once
        # over every box with class offsets. Same detections; NMS is
        # quadratic in its input, so 80 small runs beat one over ~6,000
        # boxes (~15% faster end to end on the CPU, docs/performance.md).
        nms=dict(type='nms', iou_threshold=0.6, split_thr=0),
        min_bbox_size=0,
        score_thr=0.001,
        max_per_img=100))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    # torchvision RandomIoUCrop / TF ssd_random_crop: a crop is kept when ONE
    # box reaches the sampled IoU (mmdet's MinIoURandomCrop needs every box;
    # mobilenet_mm/datasets/ssd_crop.py). Options 0-0.9 and 1.0 = no crop,
    # sides 0.3-1 of the image, aspect 0.5-2, 40 trials (its defaults).
    dict(type='mobilenet_mm.SSDIoUCrop'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=24,
    num_workers=4,
    # Every image is resized to input_size: no aspect-ratio grouping.
    batch_sampler=None,
    dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 660
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.15, momentum=0.9, weight_decay=4e-5))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        eta_min=0.,
        by_epoch=True,
        begin=0,
        end=max_epochs),
]
# lr 0.15 is for 8 GPUs x 24 images; with another total batch size, run with
# --cfg-options auto_scale_lr.enable=True to scale it linearly.
auto_scale_lr = dict(enable=False, base_batch_size=192)

default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
