# RetinaNet with a MobileNetV4 backbone at 384x384 on COCO 2017, as in the
# MobileNetV4 paper (section 7, Table 7): mmdet's RetinaNet and FPN with a
# 256-d FPN on P3-P7 and a 4-layer 256-d separable head.
#
# Layers follow TF Model Garden's mobile RetinaNet (official/vision/configs/
# experiments/retinanet/coco_mobilenetv2_tpu.yaml: use_separable_conv in the
# FPN and the head, BN eps 1e-3 momentum 0.99 (PyTorch 0.01), ReLU6 in the
# head, anchor_size 3, 3 scales x 3 ratios; decoders/fpn.py: P6 from P5's
# output, ReLU before P7). Loss, matching and post-processing are mmdet's
# RetinaNet defaults (the paper gives none).
#
# Recipe ([V4] section 7): 600 epochs, batch 2048, Adam, weight decay 3e-5,
# cosine schedule, stochastic depth 0.2, backbone from ImageNet (set
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...) to our,
# timm's or TF-converted weights); augmentation from the TF mobile
# RetinaNet configs (horizontal flip, scale jitter 0.5-2.0). The paper does
# not give the learning rate or warm-up: 2e-3 after 5 linear warm-up epochs
# is our choice.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
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

input_size = 384
norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mobilenet_mm.MobileNetV4',
        arch='conv_medium',
        out_indices=(2, 3, 4),
        drop_path_rate=0.2,
        # NHWC on the CPU (faster there; see _base_/ssdlite_coco.py)
        channels_last='cpu',
        norm_cfg=norm_cfg),
    neck=dict(
        # == the backbone's out_channels (strides 8, 16, 32)
        in_channels=[80, 160, 960],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        num_outs=5,
        conv_cfg=dict(type='mobilenet_mm.SeparableConv2d'),
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='mobilenet_mm.SepRetinaHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU6'),
        anchor_generator=dict(octave_base_scale=3),
        # mmdet's focal loss (gamma 2, alpha 0.25 from the base), which also
        # trains on a GPU when mmcv has CPU ops only (mmdet's would call
        # mmcv's CUDA kernel; models/losses/portable_focal_loss.py).
        loss_cls=dict(type='mobilenet_mm.PortableFocalLoss')))

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
# 32 GPUs x 64 images = the paper's 2048.
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    batch_sampler=None,
    dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 600
warmup_epochs = 5
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # TF's l2 term with l2_weight_decay 3e-5 has gradient 3e-5 * w: Adam's
    # (coupled) weight_decay.
    optimizer=dict(type='Adam', lr=2e-3, weight_decay=3e-5))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]
# lr 2e-3 is for 2048 images per step; with another total batch size, run
# with --cfg-options auto_scale_lr.enable=True to scale it linearly.
auto_scale_lr = dict(enable=False, base_batch_size=2048)

default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
