"""The one block vocabulary every MobileNet generation is built from.

* :class:`InvertedBottleneck`: the universal inverted bottleneck of
  MobileNetV4 (optional start depthwise, optional 1x1 expansion, optional
  middle depthwise, optional squeeze-excite, 1x1 projection). With the right
  options it is also the MobileNetV1 depthwise-separable block, the
  MobileNetV2/V3 inverted residual and MobileNetV4's ExtraDW, ConvNext and FFN
  blocks.
* :class:`FusedInvertedBottleneck`: full kxk expansion conv + 1x1 projection
  (MobileNetV4 "FusedIB", EfficientNet "EdgeResidual").
* :class:`MobileMQA`: MobileNetV4's mobile multi-query attention block.
* :class:`ConvNormAct` (conv + BN + act) for stems and 1x1 "head" convs.

Submodules are registered in the order the forward pass uses them: weight
conversion from timm/torchvision relies on that order (see
:mod:`mobilenet_mm.models.weight_conversion`).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath


def make_divisible(value: float, divisor: int = 8,
                   min_value: Optional[int] = None,
                   round_limit: float = 0.9) -> int:
    """Round ``value`` to a multiple of ``divisor``, never dropping more than
    10% (the rule of the TF reference code, used by timm and torchvision)."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


# Activations that can safely modify their input in place.
_INPLACE_ACTS = ('ReLU', 'ReLU6', 'HSwish', 'LeakyReLU')


class ConvNormAct(nn.Module):
    """Conv2d + optional norm + optional activation.

    A lean counterpart of mmcv's ``ConvModule`` (same ``norm_cfg`` /
    ``act_cfg`` vocabulary, built with mmcv's builders): small MobileNets
    are bound by per-module Python overhead, and ConvModule's generic
    forward costs several percent of MobileNetV3-Small's CPU latency.
    The padding ``dilation * (k - 1) // 2`` equals timm's and
    torchvision's symmetric padding for every stride used here, so odd input
    sizes give the same output sizes as the references.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, dilation: int = 1, groups: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride,
            padding=dilation * (kernel_size - 1) // 2, dilation=dilation,
            groups=groups, bias=norm_cfg is None)
        self.norm = (build_norm_layer(norm_cfg, out_channels)[1]
                     if norm_cfg is not None else None)
        if act_cfg is not None:
            act_cfg = dict(act_cfg)
            if act_cfg['type'] in _INPLACE_ACTS:
                act_cfg.setdefault('inplace', True)
            self.act = build_activation_layer(act_cfg)
        else:
            self.act = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-and-excite: global mean -> 1x1 reduce -> ReLU ->
    1x1 expand -> hard sigmoid gate. The gate is ``relu6(x + 3) / 6``
    spelled out through ``nn.Hardsigmoid`` (mmcv's ``HSigmoid`` changed its
    formula between releases)."""

    def __init__(self, channels: int, squeeze_channels: int):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.conv_expand(self.act(self.conv_reduce(
            x.mean((2, 3), keepdim=True))))
        return x * self.gate(scale)


class LayerScale(nn.Module):
    """Per-channel learnable scale of a residual branch (MobileNetV4 hybrid)."""

    def __init__(self, channels: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, ), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)


class ResidualBlock(nn.Module):
    """Shared tail of every block: layer scale, drop path and the shortcut.

    Subclasses implement ``_branch(x, tap)`` returning the residual branch
    output and, when ``tap`` names one of the block's ``taps``, that inner
    feature: ``'expansion'`` (the 1x1 expansion conv's output, TF's
    ``expansion_output``, SSDLite's first map) or ``'depthwise'`` (the
    depthwise conv's output after its activation and before SE, TF's
    ``depthwise_output``, TF DeepLab's decoder input).
    """

    taps: Tuple[str, ...] = ()

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 use_skip: bool, drop_path_rate: float,
                 layer_scale_init: Optional[float]):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.has_skip = use_skip and stride == 1 and in_channels == out_channels
        self._layer_scale_init = layer_scale_init
        self._drop_path_rate = drop_path_rate if self.has_skip else 0.

    def _build_tail(self):
        # Called by subclasses after their own layers, keeping module order
        # equal to the forward order. Absent parts are None rather than
        # nn.Identity: small MobileNets are bound by per-module overhead.
        self.layer_scale = (LayerScale(self.out_channels,
                                       self._layer_scale_init)
                            if self._layer_scale_init is not None else None)
        self.drop_path = (DropPath(self._drop_path_rate)
                          if self._drop_path_rate > 0 else None)

    def _branch(self, x, tap):
        raise NotImplementedError

    def forward(self, x: torch.Tensor, tap: Optional[str] = None):
        """The block's output, or ``(output, tapped feature)`` when ``tap``
        is given."""
        if tap is not None and tap not in self.taps:
            raise ValueError(f'{type(self).__name__} has no {tap!r} tap; '
                             f'it has {self.taps or "none"}')
        out, tapped = self._branch(x, tap)
        if self.layer_scale is not None:
            out = self.layer_scale(out)
        if self.has_skip:
            if self.drop_path is not None:
                out = self.drop_path(out)
            out = out + x
        return out if tap is None else (out, tapped)


class InvertedBottleneck(ResidualBlock):
    """Universal inverted bottleneck (MobileNetV4 UIB), the common block of
    MobileNetV1-V4.

    ``x -> [start dw kxk] -> [1x1 expand + act] -> [mid dw kxk + act] -> [SE]
    -> 1x1 project [+ act] (+ x)``

    The expansion conv is present when ``expanded_channels !=
    in_channels``; a depthwise conv is present when its kernel is non-zero.
    The stride sits on the middle depthwise conv when there is one, else on
    the start one. Every depthwise conv is dilated by ``dilation``.

    Args:
        start_kernel: kernel of the depthwise conv before the expansion
            (0: none). It has no activation, as in MobileNetV4.
        mid_kernel: kernel of the depthwise conv after the expansion (0: none).
        use_se: squeeze-excite on the expanded features (MobileNetV3).
        project_act: activation after the projection (MobileNetV1's
            pointwise conv); the bottleneck blocks keep it linear.
        use_skip: allow the residual when shapes match.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 expanded_channels: int, start_kernel: int = 0,
                 mid_kernel: int = 3, stride: int = 1, dilation: int = 1,
                 use_se: bool = False, project_act: bool = False,
                 use_skip: bool = True, norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None, drop_path_rate: float = 0.,
                 layer_scale_init: Optional[float] = None):
        super().__init__(in_channels, out_channels, stride, use_skip,
                         drop_path_rate, layer_scale_init)
        if stride > 1 and not (start_kernel or mid_kernel):
            raise ValueError('a strided InvertedBottleneck needs a depthwise '
                             'conv (start_kernel or mid_kernel > 0)')
        self.expanded_channels = expanded_channels
        self.start_dw = (ConvNormAct(
            in_channels, in_channels, start_kernel,
            stride=1 if mid_kernel else stride, dilation=dilation,
            groups=in_channels, norm_cfg=norm_cfg, act_cfg=None)
                         if start_kernel else None)
        self.expand = (ConvNormAct(
            in_channels, expanded_channels, 1, norm_cfg=norm_cfg,
            act_cfg=act_cfg) if expanded_channels != in_channels else None)
        self.mid_dw = (ConvNormAct(
            expanded_channels, expanded_channels, mid_kernel, stride=stride,
            dilation=dilation, groups=expanded_channels, norm_cfg=norm_cfg,
            act_cfg=act_cfg) if mid_kernel else None)
        self.se = (SqueezeExcite(expanded_channels,
                                 make_divisible(expanded_channels / 4))
                   if use_se else None)
        self.project = ConvNormAct(
            expanded_channels, out_channels, 1, norm_cfg=norm_cfg,
            act_cfg=act_cfg if project_act else None)
        self._build_tail()
        # The expansion tap (SSDLite) is the output of the 1x1 expansion conv
        # computed at the block's input resolution, as TF's
        # `expansion_output`; it is only at the input stride when the start
        # depthwise conv does not carry the stride. The depthwise tap is at
        # the block's output stride.
        has_expansion = self.expand is not None and not (
            self.start_dw is not None and self.mid_dw is None and stride > 1)
        self.taps = (('expansion', ) if has_expansion else ()) + (
            ('depthwise', ) if self.mid_dw is not None else ())

    def _branch(self, x, tap):
        if self.start_dw is not None:
            x = self.start_dw(x)
        if self.expand is not None:
            x = self.expand(x)
        tapped = x if tap == 'expansion' else None
        if self.mid_dw is not None:
            x = self.mid_dw(x)
            if tap == 'depthwise':
                tapped = x
        if self.se is not None:
            x = self.se(x)
        return self.project(x), tapped


class FusedInvertedBottleneck(ResidualBlock):
    """Fused inverted bottleneck (MobileNetV4 FusedIB): a full kxk conv does
    the expansion and the stride, a 1x1 conv projects."""

    def __init__(self, in_channels: int, out_channels: int,
                 expanded_channels: int, kernel: int = 3, stride: int = 1,
                 dilation: int = 1, use_skip: bool = True,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None, drop_path_rate: float = 0.):
        super().__init__(in_channels, out_channels, stride, use_skip,
                         drop_path_rate, None)
        self.expanded_channels = expanded_channels
        self.expand = ConvNormAct(in_channels, expanded_channels, kernel,
                                    stride=stride, dilation=dilation,
                                    norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.project = ConvNormAct(expanded_channels, out_channels, 1,
                                     norm_cfg=norm_cfg, act_cfg=None)
        self._build_tail()

    # No taps: its expansion conv is a strided full conv.
    def _branch(self, x, tap):
        return self.project(self.expand(x)), None


class ConvBlock(ResidualBlock):
    """A plain conv + norm + act as a block of a stage (MobileNetV3's and V4's
    final 1x1 conv, MobileNetV4-Conv-S's early full convs). No residual."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1,
                 stride: int = 1, dilation: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None):
        super().__init__(in_channels, out_channels, stride, False, 0., None)
        self.conv = ConvNormAct(in_channels, out_channels, kernel,
                                  stride=stride, dilation=dilation,
                                  norm_cfg=norm_cfg, act_cfg=act_cfg)
        self._build_tail()

    def _branch(self, x, tap):
        return self.conv(x), None


class MultiQueryAttention(nn.Module):
    """Multi-query attention on NCHW maps (MobileNetV4 Mobile MQA).

    All heads share one key and one value projection; with ``kv_stride`` 2
    the keys and values are first downsampled by a strided depthwise conv +
    norm. The channel layout of the query and output projections (head-major)
    matches timm and TF Model Garden so their weights load unchanged.
    """

    def __init__(self, channels: int, out_channels: int, num_heads: int,
                 key_dim: int, value_dim: int, kv_stride: int = 1,
                 kv_kernel: int = 3, dilation: int = 1,
                 norm_cfg: Optional[dict] = None):
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.query = nn.Sequential()
        self.query.add_module('proj', nn.Conv2d(channels, num_heads * key_dim,
                                                1, bias=False))
        self.key = self._kv_branch(channels, key_dim, kv_stride, kv_kernel,
                                   dilation, norm_cfg)
        self.value = self._kv_branch(channels, value_dim, kv_stride,
                                     kv_kernel, dilation, norm_cfg)
        self.output = nn.Sequential()
        self.output.add_module('proj', nn.Conv2d(num_heads * value_dim,
                                                 out_channels, 1, bias=False))

    @staticmethod
    def _kv_branch(channels, dim, stride, kernel, dilation, norm_cfg):
        branch = nn.Sequential()
        if stride > 1:
            branch.add_module('down', ConvNormAct(
                channels, channels, kernel, stride=stride, dilation=dilation,
                groups=channels, norm_cfg=norm_cfg, act_cfg=None))
        branch.add_module('proj', nn.Conv2d(channels, dim, 1, bias=False))
        return branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        # query: [B, heads, HW, key_dim]; key/value: [B, 1, hw, dim] shared
        # by every head through broadcasting. Contiguous inputs keep SDPA on
        # its fast CPU kernel (strided views fall back to a slow path).
        query = self.query(x).reshape(batch, self.num_heads, self.key_dim,
                                      height * width).transpose(
                                          -1, -2).contiguous()
        key = self.key(x).flatten(2).transpose(1, 2).unsqueeze(1).contiguous()
        value = self.value(x).flatten(2).transpose(
            1, 2).unsqueeze(1).contiguous()
        out = F.scaled_dot_product_attention(query, key, value)
        # Back to the input's memory format (head-major channels): the
        # convs after this keep whatever layout it returns, so an
        # accidental channels-last view would switch the rest of an NCHW
        # network (GELU is slower on it on the CPU; docs/performance.md).
        if x.is_contiguous() or not x.is_contiguous(
                memory_format=torch.channels_last):
            out = out.transpose(-1, -2).reshape(
                batch, self.num_heads * self.value_dim, height, width)
        else:
            out = out.transpose(1, 2).reshape(
                batch, height, width,
                self.num_heads * self.value_dim).permute(0, 3, 1, 2)
        return self.output(out)


class MobileMQA(ResidualBlock):
    """MobileNetV4 attention block: norm -> multi-query attention ->
    layer scale (+ x)."""

    def __init__(self, in_channels: int, out_channels: int, num_heads: int,
                 key_dim: int, value_dim: int, kv_stride: int = 1,
                 kv_kernel: int = 3, stride: int = 1, dilation: int = 1,
                 use_skip: bool = True, norm_cfg: Optional[dict] = None,
                 drop_path_rate: float = 0.,
                 layer_scale_init: Optional[float] = None):
        super().__init__(in_channels, out_channels, stride, use_skip,
                         drop_path_rate, layer_scale_init)
        if stride != 1:
            raise ValueError(f'MobileMQA does not downsample (stride={stride})')
        self.norm = build_norm_layer(norm_cfg, in_channels)[1]
        self.attn = MultiQueryAttention(
            in_channels, out_channels, num_heads, key_dim, value_dim,
            kv_stride=kv_stride, kv_kernel=kv_kernel, dilation=dilation,
            norm_cfg=norm_cfg)
        self._build_tail()

    def _branch(self, x, tap):
        return self.attn(self.norm(x)), None
