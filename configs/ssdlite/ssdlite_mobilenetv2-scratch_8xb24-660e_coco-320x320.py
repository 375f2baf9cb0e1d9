# SSDLite + MobileNetV2 at 320x320 on COCO 2017.
# Taps: layer_15/expansion_output (576 ch, stride 16; the expansion of the
# first block of the last stage) and the final 1x1 conv (1280 ch, stride 32).
# [V2] Table 6: 22.1 mAP, 4.3M params, 0.8B MAdds.
# Loss: TF's V2 config (ssdlite_mobilenet_v2_coco.config): a sigmoid over
# every output with the background output trained as a class (TF's default
# encode_background_as_zeros: false), 3:1 hard negatives, smooth L1 over the
# matches, no class bias. TF's miner also runs NMS at IoU 0.99 over the
# negatives and keeps at least 3 per image; ours ranks by loss only
# (configs/README.md, "Recipes against their references").
_base_ = './ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mobilenet_mm.MobileNetV2',
        out_indices=(3, 4),
        out_types=('expansion', 'output'),
        channels_last={{_base_.channels_last}},
        channels_last_outputs=True,
        norm_cfg={{_base_.norm_cfg}},
        init_cfg={{_base_.scratch_init}}),
    # in_channels == the backbone's out_channels
    neck=dict(in_channels=(576, 1280)),
    bbox_head=dict(
        in_channels=(576, 1280, 512, 256, 256, 128),
        loss_cls=dict(_delete_=True, type='CrossEntropyLoss',
                      use_sigmoid=True, loss_weight=1.0),
        encode_background_as_zeros=False,
        cls_bias_init=0.,
        loss_bbox=dict(loss_weight=1.0)),
    train_cfg=dict(neg_pos_ratio=3))
