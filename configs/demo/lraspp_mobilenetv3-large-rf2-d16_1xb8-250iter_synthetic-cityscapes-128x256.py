# Embedded demo: the real V3-Large LR-ASPP config (configs/lraspp/
# lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py: same
# segmentor, same head, same loss) with
# only the data and the schedule changed, so that it trains on a CPU in a
# few minutes. The data is the synthetic Cityscapes-format set written by
#  python tools/data/generate_synthetic.py cityscapes data/synthetic_cityscapes
# (256x512 street scenes of 7 Cityscapes classes, an ignored hood; 200
# train / 40 val images), read by mmseg's CityscapesDataset like the real
# one. Then:
#   python tools/train.py THIS_FILE
# Bar: val mIoU >= 75 after the 250 iterations (IoUMetric over the 19
# classes; those absent from both labels and predictions do not count).
# Measured time and mIoU, with the command: configs/demo/README.md. On a
# shared machine set OMP_NUM_THREADS=1 (torch's default thread pool is many
# times slower on a busy machine).
# tests/tools/test_segmentation_demo.py runs a shorter version.
_base_ = '../lraspp/lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py'

# -- data -------------------------------------------------------------
data_root = 'data/synthetic_cityscapes/'
num_classes = 19  # the Cityscapes train ids; the scenes use 7 of them
# Half-size images (128x256) keep a CPU iteration under a second; the
# metric is computed at the label's own 256x512, as Cityscapes at 1024x2048.
crop_size = (128, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(
        type='RandomResize',
        scale=(256, 128),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(data_preprocessor=dict(size=crop_size))

# -- schedule -----------------------------------------------------------
max_iters = 250
# From scratch in a few hundred iterations: AdamW converges much faster
# than the paper's SGD here.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.,
        begin=30,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
