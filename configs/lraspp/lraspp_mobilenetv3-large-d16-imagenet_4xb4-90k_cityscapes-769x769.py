# Ours, fine-tuning path (a): LR-ASPP on MobileNetV3-Large started from
# ImageNet weights of torchvision or timm instead of from scratch (the
# paper trains from scratch). ImageNet weights have the full tail (160/960
# channels), so this backbone keeps it: reduced_tail=False, high-level
# features 960 channels (RF2 would not fit the weights). BN eps 1e-3 as in
# the reference models. Get the weights, e.g. torchvision's
#   https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth
# into checkpoints/; the backbone converts the keys by position on load and
# logs the dropped classifier keys (timm files, .safetensors included, load
# the same way).
_base_ = './lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py'

model = dict(
    backbone=dict(
        reduced_tail=False,
        norm_cfg=dict(type='SyncBN', eps=1e-3, requires_grad=True),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilenet_v3_large-8738ca79.pth')),
    decode_head=dict(in_channels=(120, 960)))
