# Cityscapes, fine annotations (data/cityscapes, mmseg's layout and its
# base config), with the data recipe of TF DeepLab, where the MobileNetV3
# LR-ASPP models were trained (tensorflow/models research/deeplab:
# g3doc/model_zoo.md, train.py flags): 769x769 crops, random scale 0.5-2.0
# in steps of 0.25, horizontal flip, no colour jitter. Evaluation on the
# full 1024x2048 image ([V3] Table 7), mmseg's IoUMetric.
_base_ = ['mmseg::_base_/datasets/cityscapes.py']

custom_imports = dict(
    imports=['mobilenet_mm', 'mobilenet_mm.datasets.seg_transforms',
             'mobilenet_mm.datasets.seg_datasets'],
    allow_failed_imports=False)

# mmseg's CityscapesDataset that names a 0-byte or undecodable image or
# label map in one line (mobilenet_mm/datasets/seg_datasets.py); the
# pipeline keeps mmcv's LoadImageFromFile, which the inferencers look up.
dataset_type = 'mobilenet_mm.CityscapesSegmentation'
num_classes = 19
crop_size = (769, 769)
# TF DeepLab's min_scale_factor=0.5, max_scale_factor=2.0,
# scale_factor_step_size=0.25, of the 2048x1024 image.
scale_steps = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # Label ids >= num_classes become 255 (ignored); a missing label file
    # or one of another size stops with the file named.
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(
        type='RandomChoiceResize',
        scales=[(int(2048 * s), int(1024 * s)) for s in scale_steps],
        keep_ratio=True),
    # Crops larger than the scaled image are padded by the data
    # preprocessor (image 0, label 255), as TF pads with the ignore label.
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
# 16 images per iteration: 4 GPUs x 4 (TF DeepLab: "large batch size (> 8)"
# so that BN is trained well, research/deeplab/g3doc/cityscapes.md).
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader
