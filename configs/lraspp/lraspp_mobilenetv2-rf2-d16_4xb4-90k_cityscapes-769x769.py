# LR-ASPP on MobileNetV2 1.0, reduced tail (RF2), output stride 16, F=128:
# [V3] Table 7 row 4: 72.74 mIoU, 0.98M params, 12.57B MAdds at 1024x2048.
# The high-level features are the 160 channels of the halved 320-channel
# block: TF DeepLab's MobileNetV2 feature extractor stops before the final
# 1x1 conv (with_last_conv=False).
_base_ = './lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py'

# The low-level map is the 1/8 stage output (32 channels), not the V3
# configs' depthwise tap (192 here): Table 7 rows 3 and 4 (1.02M, 0.98M)
# hold to their printed precision with the former (1.028M, 0.984M), not
# with the latter (1.031M, 0.987M).
model = dict(
    backbone=dict(type='mobilenet_mm.MobileNetV2', arch='1.0',
                  out_types=('output', 'output'), with_last_conv=False),
    # MobileNetV2(out_indices=(2, 4), output_stride=16,
    # reduced_tail='segmentation', with_last_conv=False).out_channels
    decode_head=dict(in_channels=(32, 160)))
