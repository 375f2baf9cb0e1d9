# LR-ASPP on MobileNetV3-Small, reduced tail (RF2), output stride 16, F=128:
# [V3] Table 7 row 11: 68.38 mIoU, 0.47M params, 2.90B MAdds at 1024x2048.
_base_ = './lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py'

model = dict(
    backbone=dict(arch='small'),
    # MobileNetV3(arch='small', out_indices=(2, 4),
    # out_types=('depthwise', 'output'), output_stride=16,
    # reduced_tail='segmentation').out_channels
    decode_head=dict(in_channels=(88, 288)))
