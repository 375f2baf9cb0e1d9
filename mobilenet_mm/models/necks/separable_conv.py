"""A depthwise-separable conv that stands in for ``nn.Conv2d`` in mmcv.

TF Model Garden's mobile RetinaNet (``use_separable_conv: true`` in its
MobileNet RetinaNet configs; the MobileNetV4 paper's "separable head")
replaces every 3x3 conv of the FPN and of the head by Keras'
``SeparableConv2D``: a depthwise kxk conv directly followed by a pointwise
1x1 conv, with no norm or activation between them. Registered as
``mobilenet_mm.SeparableConv2d`` so mmdet's own ``FPN`` and heads take it
through ``conv_cfg=dict(type='mobilenet_mm.SeparableConv2d')``.
"""
from typing import Union

import torch
import torch.nn as nn

from ...registry import MODELS


@MODELS.register_module()
class SeparableConv2d(nn.Module):
    """Depthwise kxk (no bias) then pointwise 1x1 (``bias``).

    Takes ``nn.Conv2d``'s arguments and exposes the attributes mmcv's
    ``ConvModule`` reads. A 1x1 kernel builds the pointwise conv alone: a
    1x1 depthwise conv is a per-channel scale the pointwise conv already
    spans.

    It has no ``weight`` of its own, so ``ConvModule``'s Kaiming default
    skips it and the parent's ``init_cfg`` (mmdet FPN's Xavier on every
    ``Conv2d``) is what initialises the two convs.
    """

    transposed = False
    output_padding = (0, 0)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1,
                 padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1,
                 groups: int = 1,
                 bias: bool = True):
        super().__init__()
        if groups != 1:
            raise ValueError('SeparableConv2d: groups must be 1 (the '
                             f'depthwise part is built here), got {groups}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = nn.modules.utils._pair(kernel_size)
        self.stride = nn.modules.utils._pair(stride)
        self.padding = nn.modules.utils._pair(padding)
        self.dilation = nn.modules.utils._pair(dilation)
        self.groups = groups
        if self.kernel_size == (1, 1):
            self.depthwise = None
            self.pointwise = nn.Conv2d(in_channels, out_channels, 1,
                                       stride=stride, bias=bias)
        else:
            self.depthwise = nn.Conv2d(
                in_channels, in_channels, kernel_size, stride=stride,
                padding=padding, dilation=dilation, groups=in_channels,
                bias=False)
            self.pointwise = nn.Conv2d(in_channels, out_channels, 1,
                                       bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.depthwise is not None:
            x = self.depthwise(x)
        return self.pointwise(x)
