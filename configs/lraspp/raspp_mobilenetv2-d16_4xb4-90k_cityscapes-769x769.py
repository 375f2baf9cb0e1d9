# R-ASPP baseline of [V3] Table 7 row 1: MobileNetV2 1.0 (full tail),
# output stride 16, R-ASPP head with F=256: 72.84 mIoU, 2.11M params,
# 21.29B MAdds at 1024x2048.
# The head reads the 320-channel block: TF DeepLab stops MobileNetV2 before
# its final 1x1 conv (with_last_conv=False).
_base_ = './raspp_mobilenetv3-large-d16_4xb4-90k_cityscapes-769x769.py'

model = dict(
    backbone=dict(type='mobilenet_mm.MobileNetV2', arch='1.0',
                  with_last_conv=False),
    decode_head=dict(in_channels=320))  # MobileNetV2(...).out_channels
