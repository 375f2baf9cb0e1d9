"""Deployment: conv-BN fusion for inference (a function and the runner hook
behind ``tools/test.py --fuse``), ONNX export with parity checks against
onnxruntime (:mod:`mobilenet_mm.deploy.onnx_export`, imported on use),
INT8 static quantization (:mod:`mobilenet_mm.deploy.quantize`, imported on
use) and the onnxruntime model that ``tools/test.py CONFIG FILE.onnx``
evaluates (:class:`OnnxRuntimeModel`)."""
from .fuse import fold_bn_into_conv, fuse_conv_bn
from .hooks import FuseConvBNHook
from .ort_model import OnnxRuntimeModel

__all__ = ['FuseConvBNHook', 'OnnxRuntimeModel', 'fold_bn_into_conv',
           'fuse_conv_bn']
