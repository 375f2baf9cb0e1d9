"""LR-ASPP and R-ASPP segmentation heads of MobileNetV3 [arXiv 1905.02244].

Both sit directly on mmseg's ``BaseDecodeHead``. Registered in the
``mobilenet_mm`` scope only: configs name them ``mobilenet_mm.LRASPPHead``
and ``mobilenet_mm.RASPPHead`` (mmseg has its own, different ``LRASPPHead``).

LR-ASPP ([V3] section 6.4, Figure 10)::

    high (1/16) -> 1x1 conv F + BN + ReLU ----------------------.
    high (1/16) -> avg pool -> 1x1 conv F -> sigmoid -> resize --*--> resize
                                                 to 1/8 -> 1x1 conv classes
    low  (1/8)  -> 1x1 conv classes ----------------------------------> sum

R-ASPP ([V2] section 6.3, [V3] Table 7 rows 1 and 5): DeepLabV3's ASPP
reduced to a 1x1 conv branch and an image-pooling branch, concatenated and
projected, on the 1/16 features only.

The gate pool is given as fractions of the feature map, so it follows the
input size: the default is the paper's 49x49 kernel with stride (16, 20) on
the 64x128 map of a 1024x2048 image, a 1x4 grid of cells, which stays 1x4
on the maps of 256x512 to 1024x2048 inputs and of 769x769 training crops
(mmseg fixes 49x49 pixels, TF DeepLab a kernel from the training crop).
``pool_kernel=(1., 1.)`` is global pooling (torchvision's head).
"""
import math
from numbers import Real
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize

from ...registry import MODELS

# [V3] Figure 10 on a 1024x2048 image at output stride 16 (64x128 map).
PAPER_POOL_KERNEL = (49 / 64, 49 / 128)
PAPER_POOL_STRIDE = (16 / 64, 20 / 128)
GLOBAL_POOL = (1., 1.)


def _check_fractions(name: str, value) -> Tuple[float, float]:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, Real) and not isinstance(v, bool)
                       and 0 < v <= 1 for v in value)):
        raise ValueError(
            f'{name} must be two fractions of the feature map (height, '
            f'width), each in (0, 1]; got {value!r}')
    return float(value[0]), float(value[1])


def relative_avg_pool(x: torch.Tensor, kernel: Tuple[float, float],
                      stride: Tuple[float, float]) -> torch.Tensor:
    """Average pool whose kernel and stride are fractions of ``x``'s size.

    The kernel is rounded up and the stride to the nearest whole pixel, so
    the pooled grid keeps its shape over a wide range of sizes (the paper's
    geometry gives 1x4 cells from a 16x32 to a 64x128 map); a kernel of
    ``(1, 1)`` is global pooling.
    """
    if tuple(kernel) == GLOBAL_POOL:  # global at every size (ReduceMean)
        return x.mean((2, 3), keepdim=True)
    if torch.onnx.is_in_onnx_export():
        return _traceable_relative_avg_pool(x, kernel, stride)
    size = [int(n) for n in x.shape[-2:]]
    # Without the epsilon, float noise (0.3 * 100 = 30.000000000000004)
    # would round a whole-pixel kernel up by one.
    kernel_px = [min(n, max(1, math.ceil(k * n - 1e-6)))
                 for k, n in zip(kernel, size)]
    if kernel_px == size:
        return x.mean((2, 3), keepdim=True)
    stride_px = [max(1, round(s * n)) for s, n in zip(stride, size)]
    return F.avg_pool2d(x, kernel_px, stride_px)


def _traceable_relative_avg_pool(x: torch.Tensor, kernel: Tuple[float, float],
                                 stride: Tuple[float, float]) -> torch.Tensor:
    """:func:`relative_avg_pool` as a graph of the input's shape.

    ONNX ``AveragePool`` takes a fixed kernel, so an export of
    ``F.avg_pool2d`` would keep the traced size's kernel and stride at every
    other size. Here they are computed from the (traced) shape with the same
    rounding (ONNX ``Ceil``; ``Round`` is half-to-even like Python's), and
    the windows are summed from an integral image (``CumSum`` + ``Gather``):
    the same averages at any input size.
    """
    sums = F.pad(x, (1, 0, 1, 0)).cumsum(2).cumsum(3)  # (B, C, H+1, W+1)
    starts, ends, counts = [], [], []
    for axis, (k, s) in enumerate(zip(kernel, stride)):
        n = torch.as_tensor(x.shape[2 + axis])
        size = torch.ceil(n.float() * k - 1e-6).long().clamp(min=1)
        size = torch.minimum(size, n)
        step = torch.round(n.float() * s).long().clamp(min=1)
        cells = torch.div(n - size, step, rounding_mode='floor') + 1
        first = torch.arange(cells) * step
        starts.append(first)
        ends.append(first + size)
        counts.append(size)
    rows = [sums.index_select(2, index) for index in (ends[0], starts[0])]
    window = [r.index_select(3, index) for r in rows
              for index in (ends[1], starts[1])]
    total = window[0] - window[1] - window[2] + window[3]
    return total / (counts[0] * counts[1]).to(x.dtype)


@MODELS.register_module()
class LRASPPHead(BaseDecodeHead):
    """Lite Reduced ASPP of MobileNetV3 ([V3] section 6.4, Figure 10).

    Args:
        in_channels: ``(low, high)`` channels: the 1/8 and the 1/16 feature
            maps, e.g. ``MobileNetV3(out_indices=(2, 4), output_stride=16,
            reduced_tail=True).out_channels``.
        channels: F, the filters of the high-level branch (paper: 128).
        num_classes: classes of the two class convs.
        in_index: which backbone outputs are ``(low, high)``.
        pool_kernel: gate pool kernel as fractions (height, width) of the
            high-level map; ``(1., 1.)`` pools globally.
        pool_stride: gate pool stride as fractions of the high-level map.
        gate_act_cfg: the gate's activation (paper: sigmoid; TF's released
            models use ``dict(type='HSigmoid', bias=3.0, divisor=6.0)``).
        gate_bias: whether the gate's 1x1 conv has a bias (torchvision's
            LR-ASPP has none).
        norm_cfg: norm after the high-level 1x1 conv (paper: BN).
        dropout_ratio: dropout before the high-level class conv (the paper
            has none).
        **kwargs: the rest of ``BaseDecodeHead``'s arguments (loss_decode,
            ignore_index, align_corners, act_cfg, init_cfg...).

    The class layers are ``conv_seg`` (high-level path, F -> classes) and
    ``conv_seg_low`` (low-level path); fine-tuning to another number of
    classes re-initialises exactly these two.
    """

    class_layers = ('conv_seg', 'conv_seg_low')

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 128,
                 *,
                 num_classes: int,
                 in_index: Sequence[int] = (0, 1),
                 pool_kernel: Sequence[float] = PAPER_POOL_KERNEL,
                 pool_stride: Sequence[float] = PAPER_POOL_STRIDE,
                 gate_act_cfg: dict = dict(type='Sigmoid'),
                 gate_bias: bool = True,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 dropout_ratio: float = 0.,
                 init_cfg: dict = dict(
                     type='Normal', std=0.01,
                     override=[dict(name='conv_seg'),
                               dict(name='conv_seg_low')]),
                 **kwargs):
        if 'input_transform' in kwargs:
            raise ValueError('LRASPPHead: input_transform is fixed (it takes '
                             'the two maps given by in_index)')
        if (not isinstance(in_channels, (tuple, list))
                or len(in_channels) != 2 or not isinstance(
                    in_index, (tuple, list)) or len(in_index) != 2):
            raise ValueError(
                'LRASPPHead takes two feature maps: in_channels=(low, high) '
                f'and in_index=(low, high); got in_channels={in_channels!r}, '
                f'in_index={in_index!r}')
        self.pool_kernel = _check_fractions('pool_kernel', pool_kernel)
        self.pool_stride = _check_fractions('pool_stride', pool_stride)
        super().__init__(
            tuple(in_channels), channels, num_classes=num_classes,
            in_index=tuple(in_index), input_transform='multiple_select',
            norm_cfg=norm_cfg, dropout_ratio=dropout_ratio,
            init_cfg=init_cfg, **kwargs)
        low_channels, high_channels = self.in_channels
        self.aspp_conv = ConvModule(
            high_channels, channels, 1, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        # No norm on the gate, as in the paper and TF's SE-style pooling.
        self.gate_conv = ConvModule(
            high_channels, channels, 1, bias=gate_bias,
            conv_cfg=self.conv_cfg, norm_cfg=None, act_cfg=gate_act_cfg)
        self.conv_seg_low = nn.Conv2d(low_channels, self.out_channels, 1)

    def forward(self, inputs):
        """Logits at the low-level (1/8) resolution."""
        low, high = self._transform_inputs(inputs)
        gate = self.gate_conv(
            relative_avg_pool(high, self.pool_kernel, self.pool_stride))
        x = self.aspp_conv(high) * resize(
            gate, size=high.shape[2:], mode='bilinear',
            align_corners=self.align_corners)
        # Upsample, then classify, as in Figure 10: the same function as the
        # other order (a 1x1 conv commutes with bilinear resizing), and the
        # paper's MAdds count the class conv at 1/8.
        x = resize(x, size=low.shape[2:], mode='bilinear',
                   align_corners=self.align_corners)
        return self.cls_seg(x) + self.conv_seg_low(low)


@MODELS.register_module()
class RASPPHead(BaseDecodeHead):
    """Reduced ASPP: the baseline head of [V3] Table 7 (rows 1 and 5).

    DeepLabV3's ASPP cut down for mobile ([V2] section 6.3): a 1x1 conv
    branch and an image-pooling branch (pool -> 1x1 conv + BN + ReLU ->
    resize), concatenated, projected by a 1x1 conv + BN + ReLU, then the
    class conv; all on the high-level map (TF DeepLab's MobileNet ASPP
    without atrous branches or decoder).

    Args:
        in_channels: channels of the high-level map.
        channels: F (paper: 256).
        in_index: which backbone output is the high-level map.
        pool_kernel, pool_stride: image pooling as fractions of the map, as
            in :class:`LRASPPHead`; default global (DeepLabV3).
        norm_cfg: norm of the three convs (default BN).
        dropout_ratio: before the class conv (TF DeepLab: 0.1).
    """

    class_layers = ('conv_seg', )

    def __init__(self,
                 in_channels: int,
                 channels: int = 256,
                 *,
                 num_classes: int,
                 in_index: int = -1,
                 pool_kernel: Sequence[float] = GLOBAL_POOL,
                 pool_stride: Sequence[float] = GLOBAL_POOL,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 dropout_ratio: float = 0.1,
                 **kwargs):
        if 'input_transform' in kwargs:
            raise ValueError('RASPPHead: input_transform is fixed (one map)')
        if not isinstance(in_channels, int):
            raise ValueError('RASPPHead takes one feature map: in_channels '
                             f'must be an int, got {in_channels!r}')
        self.pool_kernel = _check_fractions('pool_kernel', pool_kernel)
        self.pool_stride = _check_fractions('pool_stride', pool_stride)
        super().__init__(
            in_channels, channels, num_classes=num_classes,
            in_index=in_index, norm_cfg=norm_cfg,
            dropout_ratio=dropout_ratio, **kwargs)
        common = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                      act_cfg=self.act_cfg)
        self.aspp_conv = ConvModule(in_channels, channels, 1, **common)
        self.image_pool_conv = ConvModule(in_channels, channels, 1, **common)
        self.project = ConvModule(2 * channels, channels, 1, **common)

    def forward(self, inputs):
        """Logits at the high-level (1/16) resolution."""
        x = self._transform_inputs(inputs)
        pooled = self.image_pool_conv(
            relative_avg_pool(x, self.pool_kernel, self.pool_stride))
        pooled = resize(pooled, size=x.shape[2:], mode='bilinear',
                        align_corners=self.align_corners)
        x = self.project(torch.cat([self.aspp_conv(x), pooled], dim=1))
        return self.cls_seg(x)
