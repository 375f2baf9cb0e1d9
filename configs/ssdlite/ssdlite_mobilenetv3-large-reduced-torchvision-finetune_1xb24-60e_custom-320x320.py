# Your own COCO-format detection data set, started from torchvision's
# COCO-trained SSDLite320-MobileNetV3 (converted once, see
# ssdlite_mobilenetv3-large-reduced-torchvision_8xb24-660e_coco-320x320.py and README "Start from trained
# weights"). Copy this file and change the lines marked "<-".
#
# Layout read by mmdet's CocoDataset (category names must be those of your
# annotation files; ids may be anything):
#   data/my_coco/annotations/instances_{train,val}.json
#   data/my_coco/images/{train,val}/NAME.jpg
#
# mobilenet_mm.FinetuneHook loads every tensor of the checkpoint except the
# class layers (the last 1x1 conv of each of the six class predictors,
# bbox_head.cls_convs.{0-5}.1), which start fresh for your classes; the log
# names them and the dropped keys. The backbone, the extra layers and the
# box predictors (class-agnostic) carry over.
_base_ = './ssdlite_mobilenetv3-large-reduced-torchvision_8xb24-660e_coco-320x320.py'

classes = ('cat', 'dog', 'person')  # <- your classes
data_root = 'data/my_coco/'  # <- your data
metainfo = dict(classes=classes)

# Your classes, background last; no unused outputs (those are COCO's).
model = dict(
    bbox_head=dict(num_classes=len(classes), unused_class_outputs=0))

train_dataloader = dict(
    batch_size=24,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

custom_hooks = [
    dict(type='mobilenet_mm.ClassCountCheckHook'),
    # A list replaces the base's: its two guards are restated here.
    dict(type='mobilenet_mm.NanGuardHook'),
    dict(type='mobilenet_mm.CheckpointIONoticeHook'),
    dict(
        type='mobilenet_mm.FinetuneHook',
        # <- the converted torchvision checkpoint
        checkpoint='checkpoints/ssdlite320_mobilenet_v3_large_coco_mm.pth'),
]

# A short schedule at a tenth of the from-scratch learning rate (ours, not
# tuned): 60 epochs, 500 warm-up iterations, cosine.
max_epochs = 60
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=0.015))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=500),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.,
         by_epoch=True, begin=0, end=max_epochs),
]
default_hooks = dict(checkpoint=dict(interval=5))
