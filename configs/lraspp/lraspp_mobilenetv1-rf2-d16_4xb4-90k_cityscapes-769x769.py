# Ours (no paper figure): LR-ASPP on MobileNetV1 1.0 with the paper's
# segmentation recipe: reduced tail (the 1/32 stage's channels halved),
# output stride 16, F=128, the base's data and schedule.
_base_ = './lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py'

model = dict(
    # Low-level input: the 1/8 stage output, as torchvision and mmseg (the
    # V3 configs' depthwise tap follows TF DeepLab, which has no V1).
    backbone=dict(type='mobilenet_mm.MobileNetV1', arch='1.0',
                  out_types=('output', 'output')),
    # MobileNetV1(out_indices=(2, 4), output_stride=16,
    # reduced_tail='segmentation').out_channels
    decode_head=dict(in_channels=(256, 512)))
