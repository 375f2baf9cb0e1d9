# The RetinaNet recipe of [V4] section 7: 600 epochs, batch 2048, Adam,
# weight decay 3e-5, cosine schedule. The paper does not give the learning
# rate or warm-up: 2e-3 after 5 linear warm-up epochs is our choice.
# It inherits mmdet's runtime so that the checkpoint interval, which follows
# the schedule, can be set here (mmengine refuses a key that two sibling
# bases both define).
_base_ = 'mmdet::_base_/default_runtime.py'

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

# last_checkpoint written atomically (mobilenet_mm/engine/checkpoint_io.py)
default_hooks = dict(
    checkpoint=dict(
        type='mobilenet_mm.AtomicCheckpointHook', interval=10,
        max_keep_ckpts=3))
