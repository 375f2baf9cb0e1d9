# RetinaNet + MobileNetV4-Hybrid-M at 384x384 on COCO 2017.
# [V4] Table 7: 34.0 AP (val2017), 11.15M params, 5.62G MACs.
# FPN inputs: stage 2, 3, 4 outputs (80, 160, 960 ch; strides 8, 16, 32).
_base_ = './retinanet_mobilenetv4-conv-medium-imagenet_8xb32-600e_coco-384x384.py'

model = dict(
    backbone=dict(
        arch='hybrid_medium',
        # ImageNet weights (see the base config's header)
        init_cfg=dict(
            checkpoint='checkpoints/mobilenetv4_hybrid_medium_mm.pth')),
    # in_channels == the backbone's out_channels
    neck=dict(in_channels=[80, 160, 960]))
