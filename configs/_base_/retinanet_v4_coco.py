# RetinaNet with a MobileNetV4 backbone at 384x384 on COCO 2017, as in the
# MobileNetV4 paper (section 7, Table 7): mmdet's RetinaNet and FPN with a
# 256-d FPN on P3-P7 and a 4-layer 256-d separable head.
#
# Layers follow TF Model Garden's mobile RetinaNet (official/vision/configs/
# experiments/retinanet/coco_mobilenetv2_tpu.yaml: use_separable_conv in the
# FPN and the head, BN eps 1e-3 momentum 0.99 (PyTorch 0.01), ReLU6 in the
# head, anchor_size 3, 3 scales x 3 ratios; decoders/fpn.py: P6 from P5's
# output, ReLU before P7).
#
# Training: [V4] section 7 gives 600 epochs, weight decay 3e-5, stochastic
# depth 0.2 and a backbone from ImageNet, but no learning rate (it names Adam,
# batch 2048 and a cosine schedule). The only published mobile RetinaNet
# recipe with every value is TF Model Garden's retinanet_mobile_coco
# experiment (official/vision/configs/retinanet.py, the same 600 epochs,
# 3e-5 and 384 px; values in its coco_mobilenetv2_tpu.yaml), used here:
# - loss (retinanet.py Losses): focal gamma 1.5, alpha 0.25; Huber box loss
#   delta 0.1 with box_loss_weight 50. Keras' Huber averages the 4
#   coordinates, mmdet's SmoothL1 sums them and divides by beta: Huber_d(x)
#   = d * SmoothL1_beta=d(x), so 50 * 0.1 / 4 = loss_weight 1.25 (both
#   divided by the number of positives, retinanet_task.py build_losses);
# - matcher: IoU >= 0.5 positive, < 0.5 negative (Parser match_threshold /
#   unmatched_threshold 0.5);
# - SGD momentum 0.9, lr 0.32 for 256 images, linear warm-up over 2000 steps
#   from 0.0067, x0.1 at 263,340 and 272,580 of 277,200 steps (epochs 570
#   and 590 of 600 at 462 steps per epoch), L2 3e-5 on conv kernels only
#   (Keras kernel regularisers: no decay on BN and biases);
# - augmentation: horizontal flip, scale jitter 0.5-2.0.
# Every item against its reference: configs/README.md, "Recipes against
# their references".
#
# The backbone starts from ImageNet weights ([V4]): convert timm's
# (mobilenetv4_conv_medium / mobilenetv4_hybrid_medium state dicts) once with
#   python tools/convert_weights.py mobilenetv4_conv_medium.safetensors \
#       checkpoints/mobilenetv4_conv_medium_mm.pth --arch v4_conv_medium
# and train with that path (or pass --cfg-options
# model.backbone.init_cfg.checkpoint=PATH). Nothing is downloaded; a missing
# file stops training when the weights are loaded ("checkpoint file not
# found: PATH"). From scratch: model.backbone.init_cfg=None.
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
# ImageNet weights of the backbone, converted by tools/convert_weights.py
# (see the header); the user provides the file.
backbone_checkpoint = 'checkpoints/mobilenetv4_conv_medium_mm.pth'
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
        norm_cfg=norm_cfg,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
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
        loss_cls=dict(gamma=1.5, alpha=0.25),
        # Huber delta 0.1 x weight 50, averaged over 4 coordinates (header)
        loss_bbox=dict(
            _delete_=True, type='SmoothL1Loss', beta=0.1, loss_weight=1.25)),
    train_cfg=dict(
        assigner=dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.)))

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
# 8 GPUs x 32 images = TF's global batch 256.
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    batch_sampler=None,
    dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 600
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # TF's l2 term (l2_weight_decay / 2) * sum(w^2) has gradient 3e-5 * w:
    # SGD's weight_decay; kernels only.
    optimizer=dict(type='SGD', lr=0.32, momentum=0.9, weight_decay=3e-5),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    # 0.0067 -> 0.32 over TF's 2000 warm-up steps
    dict(
        type='LinearLR',
        start_factor=0.0067 / 0.32,
        by_epoch=False,
        begin=0,
        end=2000),
    dict(
        type='MultiStepLR',
        milestones=[570, 590],
        gamma=0.1,
        by_epoch=True,
        begin=0,
        end=max_epochs),
]
# lr 0.32 is for 256 images per step; with another total batch size, run
# with --cfg-options auto_scale_lr.enable=True to scale it linearly (TF
# scales 0.32 * batch / 256 the same way).
auto_scale_lr = dict(enable=False, base_batch_size=256)

default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
