"""Deployment: conv-BN fusion for inference (a function and the runner hook
behind ``tools/test.py --fuse``) and ONNX export with parity checks against
onnxruntime (:mod:`mobilenet_mm.deploy.onnx_export`, imported on use)."""
from .fuse import fold_bn_into_conv, fuse_conv_bn
from .hooks import FuseConvBNHook

__all__ = ['FuseConvBNHook', 'fold_bn_into_conv', 'fuse_conv_bn']
