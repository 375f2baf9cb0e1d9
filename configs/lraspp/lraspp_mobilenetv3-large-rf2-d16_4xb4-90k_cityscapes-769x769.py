# LR-ASPP on MobileNetV3-Large, reduced tail (RF2), output stride 16, F=128:
# [V3] Table 7 row 8 (Cityscapes val, from scratch, fine annotations):
# 72.36 mIoU, 1.51M params, 9.74B MAdds at 1024x2048.
# Everything is in the base: data and TF DeepLab recipe (769x769 crops,
# 90k iterations x 16 images), the segmentor. Measured params/MAdds and
# what differs from the paper: configs/README.md.
_base_ = './_base_/lraspp_cityscapes.py'
