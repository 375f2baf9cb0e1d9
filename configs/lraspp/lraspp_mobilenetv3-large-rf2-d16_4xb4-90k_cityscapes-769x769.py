# LR-ASPP on MobileNetV3-Large, reduced tail (RF2), output stride 16, F=128:
# [V3] Table 7 row 8 (Cityscapes val, from scratch, fine annotations):
# 72.36 mIoU, 1.51M params, 9.74B MAdds at 1024x2048.
# The three bases: the segmentor, the data and the TF DeepLab recipe
# (769x769 crops, 90k iterations x 16 images). Measured params/MAdds and
# what differs from the paper: README.md here.
_base_ = [
    '../_base_/models/lraspp_mobilenetv3-large-rf2-d16.py',
    '../_base_/datasets/cityscapes_769x769.py',
    '../_base_/schedules/sgd-poly_90k.py',
]

# Batches are padded to the crop (image 0, label 255).
model = dict(data_preprocessor=dict(size={{_base_.crop_size}}))
