# LR-ASPP on MobileNetV2 1.0, reduced tail (RF2), output stride 16, F=128:
# [V3] Table 7 row 4: 72.74 mIoU, 0.98M params, 12.57B MAdds at 1024x2048.
# The high-level features are the 160 channels of the halved 320-channel
# block: TF DeepLab's MobileNetV2 feature extractor stops before the final
# 1x1 conv (with_last_conv=False).
_base_ = './_base_/lraspp_cityscapes.py'

model = dict(
    backbone=dict(type='mobilenet_mm.MobileNetV2', arch='1.0',
                  with_last_conv=False),
    # MobileNetV2(out_indices=(2, 4), output_stride=16,
    # reduced_tail='segmentation', with_last_conv=False).out_channels
    decode_head=dict(in_channels=(32, 160)))
