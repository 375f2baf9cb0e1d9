"""Necks: SSDLite's extra feature layers, and the separable conv that
mmdet's FPN takes through ``conv_cfg`` for the mobile RetinaNet."""
from .separable_conv import SeparableConv2d
from .ssdlite_neck import SSDLiteNeck

__all__ = ['SeparableConv2d', 'SSDLiteNeck']
