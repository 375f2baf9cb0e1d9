# SSDLite + MobileNetV3-Large at 320x320 on COCO 2017: the base file's
# default backbone. Taps ([V3] section 6.2, TF ssd_mobilenet_v3 feature
# extractor): the expansion of the 13th bneck (672 ch, stride 16) and the
# last conv before pooling (960 ch, stride 32).
# [V3] Table 6: 22.0 mAP, 4.97M params, 0.62B MAdds.
_base_ = './_base_/ssdlite_coco.py'
