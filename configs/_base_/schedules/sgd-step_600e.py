# The mobile RetinaNet schedule. [V4] section 7 gives 600 epochs and weight
# decay 3e-5 but no learning rate (it names Adam, batch 2048 and a cosine
# schedule). The only published mobile RetinaNet recipe with every value is
# TF Model Garden's retinanet_mobile_coco experiment
# (official/vision/configs/retinanet.py, the same 600 epochs, 3e-5 and
# 384 px; values in its coco_mobilenetv2_tpu.yaml), used here: SGD momentum
# 0.9, lr 0.32 for 256 images, linear warm-up over 2000 steps from 0.0067,
# x0.1 at 263,340 and 272,580 of 277,200 steps (epochs 570 and 590 of 600 at
# 462 steps per epoch), L2 3e-5 on conv kernels only (Keras kernel
# regularisers: no decay on BN and biases). Every item against its
# reference: configs/README.md, "Recipes against their references".
# It inherits mmdet's runtime so that the checkpoint interval, which follows
# the schedule, can be set here (mmengine refuses a key that two sibling
# bases both define).
_base_ = 'mmdet::_base_/default_runtime.py'

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

# last_checkpoint written atomically (mobilenet_mm/engine/checkpoint_io.py)
default_hooks = dict(
    checkpoint=dict(
        type='mobilenet_mm.AtomicCheckpointHook', interval=10,
        max_keep_ckpts=3))
