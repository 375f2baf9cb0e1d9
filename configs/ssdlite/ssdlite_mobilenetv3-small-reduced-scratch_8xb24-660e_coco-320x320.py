# SSDLite + MobileNetV3-Small, reduced tail at 320x320 on COCO 2017.
# Reduced tail ([V3] section 6.3, TF V3_SMALL_DETECTION): C5 = 288 ch.
# Taps: 9th bneck expansion (288 ch), last conv (288 ch).
# [V3] Table 6: 16.1 mAP, 1.77M params, 0.16B MAdds.
_base_ = './ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py'

model = dict(
    backbone=dict(arch='small', reduced_tail=True),
    # in_channels == the backbone's out_channels
    neck=dict(in_channels=(288, 288)),
    bbox_head=dict(in_channels=(288, 288, 512, 256, 256, 128)))
