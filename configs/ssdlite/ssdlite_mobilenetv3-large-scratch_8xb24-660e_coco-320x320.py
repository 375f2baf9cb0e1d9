# SSDLite + MobileNetV3-Large at 320x320 on COCO 2017: the model base's
# default backbone. Taps ([V3] section 6.2, TF ssd_mobilenet_v3 feature
# extractor): the expansion of the 13th bneck (672 ch, stride 16) and the
# last conv before pooling (960 ch, stride 32).
# [V3] Table 6: 22.0 mAP, 4.97M params, 0.62B MAdds.
_base_ = [
    '../_base_/models/ssdlite_mobilenetv3-large.py',
    '../_base_/datasets/coco_ssdlite-320x320.py',
    '../_base_/schedules/sgd-cosine_660e.py',
]
