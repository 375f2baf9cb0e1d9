# torchvision's lraspp_mobilenet_v3_large (torchvision/models/segmentation/
# lraspp.py), built by our modules so that its trained weights (COCO images,
# the 20 Pascal VOC classes + background) load with identical outputs:
#   python tools/convert_weights.py lraspp_mobilenet_v3_large-d234d4ea.pth \
#       checkpoints/lraspp_mobilenet_v3_large_mm.pth \
#       --config configs/lraspp/lraspp_mobilenetv3-large-d16-torchvision_8xb4-40k_voc12-480x480.py
# torchvision: 57.9 mIoU on its COCO-val subset with VOC labels (its figure,
# not measured here), 3,221,538 parameters. README "Start from trained
# weights".
#
# Where torchvision's model differs from [V3] Table 7 (our
# lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py): the full tail (960-channel last conv, no
# RF2); the 1/8 input is the output of the first 40-channel block
# (features[4], its "C2"), not TF's depthwise tap; dilation 2 already in the
# first block of the last stage; the gate pools globally and its conv has
# no bias; ImageNet mean/std; BN eps 1e-3 in the backbone, 1e-5 in the head.
#
# Data: Pascal VOC 2012 (mmseg's base config; the same 21 classes in the same
# order). torchvision's recipe (references/segmentation: 8 GPUs x 4 images,
# SGD lr 0.02 momentum 0.9, weight decay 1e-6, poly 0.9, random resize of the
# 520 base size by 0.5-2.0, flip, 480x480 crops; evaluation at shorter side
# 520) for fine-tuning; the iteration count is ours (torchvision: 30 epochs).
_base_ = [
    'mmseg::_base_/datasets/pascal_voc12.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mobilenet_mm', 'mobilenet_mm.datasets.seg_transforms',
             'mobilenet_mm.datasets.seg_datasets'],
    allow_failed_imports=False)

num_classes = 21
crop_size = (480, 480)
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN when not distributed
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size),
    backbone=dict(
        type='mobilenet_mm.MobileNetV3',
        arch='large',
        out_indices=(2, 4),
        # 1/8: the first 40-channel block's output; 1/16: the 960 last conv
        out_types=('first_block', 'output'),
        output_stride=16,
        dilation_rule='torchvision',
        # NHWC on the CPU, the head included (it reads strides; see
        # ../_base_/models/ssdlite_mobilenetv3-large.py)
        channels_last='cpu',
        channels_last_outputs=True,
        # torchvision's MobileNetV3 norm layer (eps 0.001, momentum 0.01)
        norm_cfg=dict(type='SyncBN', eps=1e-3, momentum=0.01,
                      requires_grad=True)),
    decode_head=dict(
        type='mobilenet_mm.LRASPPHead',
        in_channels=(40, 960),
        in_index=(0, 1),
        channels=128,
        pool_kernel=(1., 1.),  # global pooling
        pool_stride=(1., 1.),
        gate_bias=False,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(type='RandomResize', scale=(520, 520), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # shorter side 520 (up to a 3.9:1 aspect ratio), as torchvision's preset
    dict(type='Resize', scale=(2048, 520), keep_ratio=True),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
# mmseg's PascalVOCDataset that names a 0-byte or undecodable image or label
# map in one line (mobilenet_mm/datasets/seg_datasets.py).
dataset_type = 'mobilenet_mm.VOCSegmentation'
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 40000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-6))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    # last_checkpoint written atomically (mobilenet_mm/engine/checkpoint_io.py)
    checkpoint=dict(
        type='mobilenet_mm.AtomicCheckpointHook', by_epoch=False,
        interval=4000))
# The training guards travel with the config (see
# ../_base_/datasets/coco_ssdlite-320x320.py).
custom_hooks = [
    dict(type='mobilenet_mm.NanGuardHook'),
    dict(type='mobilenet_mm.CheckpointIONoticeHook'),
]
# torchvision's total batch: 8 GPUs x 4 images
auto_scale_lr = dict(enable=False, base_batch_size=32)
