# The SSDLite schedule of torchvision's ssdlite320_mobilenet_v3_large
# (references/detection/README.md: 8 GPUs x 24 images, SGD lr 0.15 momentum
# 0.9, weight decay 4e-5, cosine over 660 epochs after a 1000-iteration
# linear warm-up), which reaches 21.3 mAP with this head design.
# It inherits mmdet's runtime so that the checkpoint interval, which follows
# the schedule, can be set here (mmengine refuses a key that two sibling
# bases both define).
_base_ = 'mmdet::_base_/default_runtime.py'

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

# last_checkpoint written atomically (mobilenet_mm/engine/checkpoint_io.py)
default_hooks = dict(
    checkpoint=dict(
        type='mobilenet_mm.AtomicCheckpointHook', interval=10,
        max_keep_ckpts=3))
