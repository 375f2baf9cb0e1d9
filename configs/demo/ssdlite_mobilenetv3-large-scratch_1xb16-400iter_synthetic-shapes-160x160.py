# The demo: the SSDLite-V3 config (SSDLite + MobileNetV3-Large, from
# scratch) trained on the CPU in minutes on the synthetic COCO-format shapes
# data set (mobilenet_mm.datasets.generate_coco_detection; tools/demo.py
# writes it). Only data and schedule differ from the real config: the data
# root, the five classes (num_classes follows them), 160x160 images (the
# anchors' input_size follows them), no IoU crop, and a short schedule
# (optimizer, lr, iterations). No pretrained weights.
# The backbone keeps He init (init_cfg=None), not the recipe's normal(0,
# 0.03): the demo's figure (README.md beside this file) was measured with He
# init.
_base_ = '../ssdlite/ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py'

data_root = 'data/synthetic_coco/'
classes = ('circle', 'square', 'triangle', 'star', 'cross')
metainfo = dict(classes=classes)
input_size = 160

model = dict(
    backbone=dict(init_cfg=None),
    bbox_head=dict(
        num_classes=len(classes),
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
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# Schedule: 400 iterations of 16 images (about 6 epochs) instead of 660
# epochs, one evaluation at the end. From scratch in so few steps AdamW
# gets much further than the recipe's SGD (figures: configs/demo/README.md).
max_iters = 400
warmup_iters = 30
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=8e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters,
         eta_min=0., by_epoch=False, begin=warmup_iters, end=max_iters),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='mobilenet_mm.AtomicCheckpointHook', by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
