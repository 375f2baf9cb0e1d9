# Ours (no paper figure): LR-ASPP on MobileNetV4 Conv-Medium (TF Model
# Garden / timm layer order) with the MobileNetV3 segmentation recipe:
# reduced tail, output stride 16, F=128, the base's data and schedule.
_base_ = './lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py'

model = dict(
    # Low-level input: the 1/8 stage output, as torchvision and mmseg (the
    # V3 configs' depthwise tap follows TF DeepLab, which has no V4).
    backbone=dict(type='mobilenet_mm.MobileNetV4', arch='conv_medium',
                  out_types=('output', 'output')),
    # MobileNetV4(arch='conv_medium', out_indices=(2, 4), output_stride=16,
    # reduced_tail='segmentation').out_channels
    decode_head=dict(in_channels=(80, 480)))
