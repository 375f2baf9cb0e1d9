# R-ASPP baseline of [V3] Table 7 row 5: MobileNetV3-Large (full tail),
# output stride 16, R-ASPP head with F=256 (a 1x1 conv branch and a global
# image-pooling branch, concatenated and projected; no low-level skip):
# 72.64 mIoU, 3.60M params, 18.43B MAdds at 1024x2048. Same data and
# schedule as the LR-ASPP configs.
_base_ = './lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py'

model = dict(
    backbone=dict(out_indices=(4, ), out_types=('output', ),
                  reduced_tail=False),
    decode_head=dict(
        _delete_=True,
        type='mobilenet_mm.RASPPHead',
        in_channels=960,  # MobileNetV3(out_indices=(4, )).out_channels
        in_index=0,
        channels=256,
        dropout_ratio=0.1,  # TF DeepLab's ASPP projection dropout
        num_classes={{_base_.num_classes}},
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)))
