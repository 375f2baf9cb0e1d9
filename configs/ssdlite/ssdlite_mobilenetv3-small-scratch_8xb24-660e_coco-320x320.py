# SSDLite + MobileNetV3-Small at 320x320 on COCO 2017.
# Taps: 9th bneck expansion (288 ch, stride 16), last conv (576 ch).
# [V3] Table 6: 16.0 mAP, 2.49M params, 0.21B MAdds.
_base_ = './ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py'

model = dict(
    backbone=dict(arch='small'),
    # in_channels == the backbone's out_channels
    neck=dict(in_channels=(288, 576)),
    bbox_head=dict(in_channels=(288, 576, 512, 256, 256, 128)))
