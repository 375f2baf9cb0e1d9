"""Dense heads: SSDLite (with its TF-layout SSD anchors) and the separable
RetinaNet head of the MobileNetV4 paper."""
from .sep_retina_head import SepRetinaHead
from .ssdlite_anchor_generator import SSDLiteAnchorGenerator
from .ssdlite_head import SSDLiteHead

__all__ = ['SepRetinaHead', 'SSDLiteAnchorGenerator', 'SSDLiteHead']
