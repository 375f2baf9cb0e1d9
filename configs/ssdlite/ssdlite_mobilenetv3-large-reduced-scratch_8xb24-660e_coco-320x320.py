# SSDLite + MobileNetV3-Large, reduced tail at 320x320 on COCO 2017.
# Reduced tail ([V3] section 6.3, TF V3_LARGE_DETECTION): the layers after
# C4 have half the channels, C5 = 480. Taps: 13th bneck expansion (672 ch),
# last conv (480 ch). This is the model of TF's released
# ssdlite_mobilenet_v3_large_320x320_coco and of torchvision's ssdlite320.
# [V3] Table 6: 22.0 mAP, 3.22M params, 0.51B MAdds.
_base_ = './ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py'

model = dict(
    backbone=dict(reduced_tail=True),
    # in_channels == the backbone's out_channels
    neck=dict(in_channels=(672, 480)),
    bbox_head=dict(in_channels=(672, 480, 512, 256, 256, 128)))
