# RetinaNet + MobileNetV4-Conv-M at 384x384 on COCO 2017.
# [V4] Table 7: 32.6 AP (val2017), 9.79M params, 5.06G MACs.
# FPN inputs: stage 2, 3, 4 outputs (80, 160, 960 ch; strides 8, 16, 32).
_base_ = [
    '../_base_/models/retinanet_mobilenetv4-conv-medium.py',
    '../_base_/datasets/coco_retinanet-384x384.py',
    '../_base_/schedules/sgd-step_600e.py',
]
