# SSDLite + MobileNetV4-Conv-M at 320x320 on COCO 2017.
# Taps, the V3 rule applied to V4 (no SSDLite in the V4 paper): the 1x1
# expansion of the first block of the last stage (960 ch, stride 16) and the
# last layer before pooling (the 960-ch 1x1 conv, stride 32).
# No paper figures: the V4 paper reports detection with RetinaNet only.
_base_ = './ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mobilenet_mm.MobileNetV4',
        arch='conv_medium',
        out_indices=(3, 4),
        out_types=('expansion', 'output'),
        channels_last={{_base_.channels_last}},
        channels_last_outputs=True,
        norm_cfg={{_base_.norm_cfg}},
        init_cfg={{_base_.scratch_init}}),
    # in_channels == the backbone's out_channels
    neck=dict(in_channels=(960, 960)),
    bbox_head=dict(in_channels=(960, 960, 512, 256, 256, 128)))
