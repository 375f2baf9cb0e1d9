# The LR-ASPP-V3-Small Cityscapes config made tiny for
# tests/tools/test_host_tools.py:
# what the shipped config carries (hooks, LoadSegAnnotations, the relative
# gate pool, channels-last backbone, mmseg base files) stays; the backbone
# is narrow, images are 64x128, the data are generated (the test sets
# data_root) and 2 iterations are a run.
_base_ = [
    '../../configs/lraspp/'
    'lraspp_mobilenetv3-small-rf2-d16_4xb4-90k_cityscapes-769x769.py'
]

data_root = 'data/synthetic_cityscapes/'
crop_size = (64, 128)
num_classes = 19

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(widen_factor=0.5),
    # == MobileNetV3(arch='small', widen_factor=0.5, out_indices=(2, 4),
    # out_types=('depthwise', 'output'), reduced_tail='segmentation',
    # output_stride=16).out_channels
    decode_head=dict(in_channels=(56, 144), channels=32))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(type='Resize', scale=(crop_size[1], crop_size[0]), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(crop_size[1], crop_size[0]), keep_ratio=True),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=2, val_begin=1000)  # no validation in training
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=2,
         by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=1, max_keep_ckpts=-1, save_best=None))
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
