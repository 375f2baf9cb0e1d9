# Tiny FCN on mobilenet_mm.MobileNetV3 (small, x0.5) for tool tests.
# data_root is a placeholder: tests generate data with
# mobilenet_mm.datasets.generate_cityscapes_segmentation and override it.
_base_ = ['./tiny_runtime.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mobilenet_mm'], allow_failed_imports=False)

data_root = 'data/synthetic_cityscapes/'
crop_size = (64, 128)  # (h, w); the generated images have this size

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
        arch='small',
        widen_factor=0.5,
        out_indices=(3, ),
        output_stride=16),
    # in_channels = MobileNetV3(arch='small', widen_factor=0.5,
    # out_indices=(3, )).out_channels[0]
    decode_head=dict(
        type='FCNHead',
        in_channels=24,
        channels=32,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=19,
        norm_cfg=dict(type='BN'),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(crop_size[1], crop_size[0]), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(crop_size[1], crop_size[0]), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CityscapesDataset',
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CityscapesDataset',
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    visualization=dict(type='SegVisualizationHook'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
