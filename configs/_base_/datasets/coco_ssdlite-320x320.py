# COCO 2017 at 320x320 with the SSDLite data recipe of torchvision's
# ssdlite320_mobilenet_v3_large (references/detection/README.md: "ssdlite"
# augmentation = IoU random crop + horizontal flip; 24 images per GPU).
# The model's anchors are laid out for input_size.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

# mmdet's CocoDataset plus checks that end bad data in one clear line
# (mobilenet_mm/datasets/coco_checks.py), and the class-count check.
dataset_type = 'mobilenet_mm.CocoDetection'
# The training guards travel with the config, so that any tool running it
# (ours, mmdet's tools/train.py) has them: a NaN/inf loss stops training
# before it reaches the weights (mobilenet_mm/engine/nan_guard.py), and the
# schedule's checkpoint hook writes last_checkpoint atomically. The notice
# hook logs that `import mobilenet_mm` replaced mmengine's local checkpoint
# I/O (mobilenet_mm/engine/checkpoint_backend.py).
custom_hooks = [
    dict(type='mobilenet_mm.ClassCountCheckHook'),
    dict(type='mobilenet_mm.NanGuardHook'),
    dict(type='mobilenet_mm.CheckpointIONoticeHook'),
]

input_size = 320

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    # torchvision RandomIoUCrop / TF ssd_random_crop: a crop is kept when ONE
    # box reaches the sampled IoU (mmdet's MinIoURandomCrop needs every box;
    # mobilenet_mm/datasets/ssd_crop.py). Options 0-0.9 and 1.0 = no crop,
    # sides 0.3-1 of the image, aspect 0.5-2, 40 trials (its defaults).
    dict(type='mobilenet_mm.SSDIoUCrop'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=24,
    num_workers=4,
    # Every image is resized to input_size: no aspect-ratio grouping.
    batch_sampler=None,
    dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader
