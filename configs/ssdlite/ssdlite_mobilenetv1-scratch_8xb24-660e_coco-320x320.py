# SSDLite + MobileNetV1 at 320x320 on COCO 2017.
# Taps (TF ssd_mobilenet_v1 feature extractor): Conv2d_11_pointwise (512 ch,
# stride 16) and Conv2d_13_pointwise (1024 ch, stride 32) = our stage 3 and
# stage 4 outputs; V1 has no expansion layers.
# [V2] Table 6: 22.2 mAP, 5.1M params, 1.3B MAdds.
# The V2 config's recipe and loss: TF's ssdlite_mobilenet_v1_coco.config
# has the same loss (sigmoid, 3:1 hard negatives), its miner keeping no
# minimum of negatives per image.
_base_ = './ssdlite_mobilenetv2-scratch_8xb24-660e_coco-320x320.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mobilenet_mm.MobileNetV1',
        out_indices=(3, 4),
        channels_last={{_base_.channels_last}},
        channels_last_outputs=True,
        norm_cfg={{_base_.norm_cfg}},
        init_cfg={{_base_.scratch_init}}),
    # in_channels == the backbone's out_channels
    neck=dict(in_channels=(512, 1024)),
    bbox_head=dict(in_channels=(512, 1024, 512, 256, 256, 128)))
