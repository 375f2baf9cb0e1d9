# configs/ssdlite_v3.py made tiny for tests/tools/test_host_tools.py: what the
# shipped config carries (hooks, dataset class, channels-last backbone,
# mmdet base files) stays; the backbone is narrow, images are 128x128, the
# data are generated (the test sets data_root) and 2 iterations are a run.
_base_ = ['../../configs/ssdlite_v3.py']

data_root = 'data/synthetic_coco/'
classes = ('circle', 'square', 'triangle', 'star', 'cross')
metainfo = dict(classes=classes)
input_size = 128

model = dict(
    backbone=dict(arch='small', widen_factor=0.5),
    # == MobileNetV3(arch='small', widen_factor=0.5, out_indices=(3, 4),
    # out_types=('expansion', 'output')).out_channels
    neck=dict(in_channels=(144, 288), extra_channels=(64, 32, 32, 16)),
    bbox_head=dict(
        num_classes=len(classes),
        in_channels=(144, 288, 64, 32, 32, 16),
        anchor_generator=dict(input_size=input_size)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=2, val_begin=1000)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval=1, max_keep_ckpts=-1))
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
