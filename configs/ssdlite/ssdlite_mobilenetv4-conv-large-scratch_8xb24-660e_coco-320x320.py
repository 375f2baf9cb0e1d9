# SSDLite + MobileNetV4-Conv-L at 320x320 on COCO 2017.
# Taps (../_base_/models/ssdlite_mobilenetv4.py): the expansion of the first
# block of the last stage (768 ch, stride 16) and the 960-ch 1x1 conv.
# No paper figures: the V4 paper reports detection with RetinaNet only.
_base_ = [
    '../_base_/models/ssdlite_mobilenetv4.py',
    '../_base_/datasets/coco_ssdlite-320x320.py',
    '../_base_/schedules/sgd-cosine_660e.py',
]

model = dict(
    backbone=dict(arch='conv_large'),
    # in_channels == the backbone's out_channels
    neck=dict(in_channels=(768, 960)),
    bbox_head=dict(in_channels=(768, 960, 512, 256, 256, 128)))
