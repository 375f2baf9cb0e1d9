# Your own segmentation data set with another class count, started from
# torchvision's LR-ASPP-MobileNetV3 (COCO images, 21 VOC classes; converted
# once, see lraspp_mobilenetv3-large-d16-torchvision_8xb4-40k_voc12-480x480.py and README "Start from
# trained weights"). Copy this file and change the lines marked "<-".
#
# Layout read by mmseg's BaseSegDataset: an image and a single-channel label
# map of the same size per sample, label value = class index, 255 = ignore
# (other values >= num_classes are ignored too, see
# mobilenet_mm.LoadSegAnnotations):
#   data/my_dataset/images/{train,val}/NAME.jpg
#   data/my_dataset/labels/{train,val}/NAME.png
#
# mobilenet_mm.FinetuneHook loads every tensor except the two class convs
# (decode_head.conv_seg, decode_head.conv_seg_low), which start fresh for
# your classes; the log names them and the dropped keys.
_base_ = './lraspp_mobilenetv3-large-d16-torchvision_8xb4-40k_voc12-480x480.py'

classes = ('background', 'road', 'obstacle')  # <- your classes
palette = [[0, 0, 0], [128, 64, 128], [220, 20, 60]]
num_classes = len(classes)
data_root = 'data/my_dataset/'  # <- your data
img_suffix, seg_map_suffix = '.jpg', '.png'  # <- your file endings
crop_size = (480, 480)  # <- at most your image size
scale = (640, 480)  # <- your image size (w, h)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(type='RandomResize', scale=scale, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
dataset = dict(
    # mmseg's BaseSegDataset naming a bad image or label map in one line
    type='mobilenet_mm.FolderSegmentation',
    data_root=data_root,
    metainfo=dict(classes=classes, palette=palette),
    img_suffix=img_suffix,
    seg_map_suffix=seg_map_suffix,
    reduce_zero_label=False)  # True if 0 means "unlabelled" in your maps
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
        pipeline=train_pipeline,
        **dataset))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='images/val', seg_map_path='labels/val'),
        pipeline=test_pipeline,
        **dataset))
test_dataloader = val_dataloader

model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=num_classes))

custom_hooks = [
    # A list replaces the base's: its two guards are restated here.
    dict(type='mobilenet_mm.NanGuardHook'),
    dict(type='mobilenet_mm.CheckpointIONoticeHook'),
    dict(
        type='mobilenet_mm.FinetuneHook',
        # <- the converted torchvision checkpoint
        checkpoint='checkpoints/lraspp_mobilenet_v3_large_mm.pth'),
]

# A shorter schedule at half the learning rate (ours, not tuned).
max_iters = 10000
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000))
