# The short entry point of the documented commands
# (python tools/train.py configs/ssdlite_v3.py): SSDLite + MobileNetV3-Large
# at 320x320 on COCO 2017, the same model and recipe as the canonical config
# it inherits and changes nothing of. Family README: configs/ssdlite/.
_base_ = './ssdlite/ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py'
