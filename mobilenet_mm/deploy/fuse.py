"""Inference-time folding of batch norms (and layer scales) into convs.

In eval mode a BatchNorm is a fixed per-channel affine map ``y = s * x + t``
(``s = gamma / sqrt(var + eps)``, ``t = beta - s * mean``); after a conv it
folds into the conv's weight and bias, and the layer disappears. MobileNets
have a BN after every conv, so this removes about a third of their layers
and of their per-layer overhead. mmdet 3.x no longer does it in its test
tool; :func:`fuse_conv_bn` does it for any model built here.

Only pairs whose data flow is known are fused:

* :class:`~mobilenet_mm.models.layers.ConvNormAct` (``conv`` then ``norm``);
* mmcv ``ConvModule`` whose ``order`` has ``'norm'`` right after ``'conv'``
  (mmdet/mmseg necks and heads, our SSDLite and RetinaNet parts), with an
  ``nn.Conv2d`` or a separable conv (BN folds into its pointwise part);
* consecutive ``Conv2d``, ``BatchNorm2d`` children of a plain
  ``nn.Sequential`` (torchvision's ``Conv2dNormActivation``).

mmcv's own ``fuse_conv_bn`` pairs a BN with whichever conv was *registered*
just before it, which is not the order of the forward pass in general; it is
not used here.

Besides, identity layers of inference are dropped: ``nn.Identity`` and
dropout in plain sequentials, the drop path of our blocks and the dropout of
mmseg decode heads; MobileNetV4's layer scale folds into the conv before it,
and the BN in front of a Mobile MQA block folds into its 1x1 query/key/value
projections when no strided key/value conv comes first (a zero-padded conv
of ``s * x + t`` is not a conv of ``x`` plus a bias at the borders).
"""
from typing import Optional

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['fuse_conv_bn', 'fold_bn_into_conv']

_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
             nn.AlphaDropout)


def _bn_affine(bn: _BatchNorm):
    """``(scale, shift)`` of an eval-mode batch norm, in float64."""
    var = bn.running_var.double()
    scale = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def _can_fold(bn: nn.Module) -> bool:
    # Without running statistics a BN normalises with batch statistics even
    # in eval mode: no fixed affine map to fold.
    return (isinstance(bn, _BatchNorm) and bn.track_running_stats
            and bn.running_mean is not None)


def _output_conv(module: nn.Module) -> Optional[nn.Conv2d]:
    """The conv whose output is ``module``'s output: the module itself, or
    the pointwise part of a separable conv."""
    if type(module) is nn.Conv2d:
        return module
    pointwise = getattr(module, 'pointwise', None)
    if type(pointwise) is nn.Conv2d:
        return pointwise
    return None


def _set_weight_bias(conv: nn.Conv2d, weight: torch.Tensor,
                     bias: torch.Tensor) -> None:
    dtype = conv.weight.dtype
    conv.weight = nn.Parameter(weight.to(dtype),
                               requires_grad=conv.weight.requires_grad)
    conv.bias = nn.Parameter(bias.to(dtype),
                             requires_grad=conv.weight.requires_grad)


@torch.no_grad()
def fold_bn_into_conv(conv: nn.Conv2d, bn: _BatchNorm) -> None:
    """Make ``conv`` compute ``bn(conv(x))`` (eval mode) on its own.

    The arithmetic is done in float64, so the folded conv differs from the
    pair only by the rounding of the final float32 weights.
    """
    scale, shift = _bn_affine(bn)
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
    bias = shift if conv.bias is None else conv.bias.double() * scale + shift
    _set_weight_bias(conv, weight, bias)


@torch.no_grad()
def _fold_scale_into_conv(conv: nn.Conv2d, gamma: torch.Tensor) -> None:
    """``conv`` followed by a per-channel scale (layer scale)."""
    gamma = gamma.double()
    conv.weight = nn.Parameter(
        (conv.weight.double() * gamma.view(-1, 1, 1, 1)).to(conv.weight),
        requires_grad=conv.weight.requires_grad)
    if conv.bias is not None:
        conv.bias = nn.Parameter(
            (conv.bias.double() * gamma).to(conv.bias),
            requires_grad=conv.bias.requires_grad)


@torch.no_grad()
def _fold_bn_into_next_pointwise(bn: _BatchNorm, conv: nn.Conv2d) -> None:
    """Make a 1x1 ``conv`` compute ``conv(bn(x))``: ``W s x + (W t + b)``."""
    scale, shift = _bn_affine(bn)
    weight = conv.weight.double()
    bias = weight[:, :, 0, 0] @ shift
    if conv.bias is not None:
        bias = bias + conv.bias.double()
    _set_weight_bias(conv, weight * scale.view(1, -1, 1, 1), bias)


# -- per module type --------------------------------------------------------
def _fuse_conv_norm_act(module) -> int:
    if _can_fold(module.norm):
        fold_bn_into_conv(module.conv, module.norm)
        module.norm = None
        return 1
    return 0


def _fuse_conv_module(module) -> int:
    order = list(module.order)
    conv = _output_conv(module.conv)
    if (not module.with_norm or conv is None or module.with_spectral_norm
            or order.index('norm') != order.index('conv') + 1
            or not _can_fold(module.norm)):
        return 0
    fold_bn_into_conv(conv, module.norm)
    delattr(module, module.norm_name)
    # ConvModule.forward skips the norm step when with_norm is False, and
    # its ``norm`` property reads norm_name.
    module.with_norm = False
    module.norm_name = None
    return 1


def _fuse_sequential(module: nn.Sequential) -> int:
    names = list(module._modules)
    keep, fused, index = [], 0, 0
    while index < len(names):
        child = module._modules[names[index]]
        following = (module._modules[names[index + 1]]
                     if index + 1 < len(names) else None)
        conv = _output_conv(child) if child is not None else None
        if conv is not None and following is not None and _can_fold(
                following):
            fold_bn_into_conv(conv, following)
            keep.append(names[index])
            fused += 1
            index += 2
            continue
        if not isinstance(child, (nn.Identity, ) + _DROPOUTS):
            keep.append(names[index])
        index += 1
    if len(keep) != len(names):
        # Rebuilt in place, so the Sequential keeps its class and identity.
        module._modules = type(module._modules)(
            (name, module._modules[name]) for name in keep)
    return fused


def _fold_layer_scale(block) -> None:
    """Fold a residual block's layer scale into the conv that ends its
    branch, when nothing (norm, activation) lies between them."""
    from ..models.layers import (FusedInvertedBottleneck,
                                 InvertedBottleneck, MobileMQA)
    if block.layer_scale is None:
        return
    conv = None
    if isinstance(block, (InvertedBottleneck, FusedInvertedBottleneck)):
        project = block.project
        if project.norm is None and project.act is None:
            conv = project.conv
    elif isinstance(block, MobileMQA):
        conv = _output_conv(block.attn.output.proj)
    if conv is not None:
        _fold_scale_into_conv(conv, block.layer_scale.gamma)
        block.layer_scale = None


def _fold_mqa_norm(block) -> int:
    """Fold the BN in front of a Mobile MQA into its 1x1 projections when
    every branch starts with one (no strided key/value conv)."""
    attn = block.attn
    first = [attn.query[0], attn.key[0], attn.value[0]]
    if not _can_fold(block.norm) or not all(
            type(conv) is nn.Conv2d and conv.kernel_size == (1, 1)
            for conv in first):
        return 0
    for conv in first:
        _fold_bn_into_next_pointwise(block.norm, conv)
    # MobileMQA.forward calls self.norm: it needs a callable.
    block.norm = nn.Identity()
    return 1


def _fuse_module(module: nn.Module) -> int:
    """Fuse ``module``'s subtree, children first; return the BNs folded."""
    from mmcv.cnn import ConvModule
    from ..models.layers import ConvNormAct, MobileMQA, ResidualBlock
    fused = sum(_fuse_module(child) for child in module.children())
    if isinstance(module, ConvNormAct):
        fused += _fuse_conv_norm_act(module)
    elif isinstance(module, ConvModule):
        fused += _fuse_conv_module(module)
    elif (isinstance(module, nn.Sequential)
          and type(module).forward is nn.Sequential.forward):
        fused += _fuse_sequential(module)
    if isinstance(module, ResidualBlock):
        module.drop_path = None  # identity in eval mode
        if isinstance(module, MobileMQA):
            fused += _fold_mqa_norm(module)
        _fold_layer_scale(module)
    if _is_decode_head(module) and isinstance(
            getattr(module, 'dropout', None), _DROPOUTS):
        module.dropout = None  # cls_seg skips a None dropout
    return fused


def _is_decode_head(module: nn.Module) -> bool:
    try:
        from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    except ImportError:  # mmseg is optional for detection-only use
        return False
    return isinstance(module, BaseDecodeHead)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every known conv + BN pair of ``model`` for inference, in place.

    Puts ``model`` in eval mode and returns it. The fused model computes
    the same function as the unfused one in eval mode (up to float32
    rounding); it cannot be trained any more (the BNs are gone), so fuse a
    copy if the original is still needed. The number of folded BNs is kept
    in ``model.fused_bn_count``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f'fuse_conv_bn expects an nn.Module, got '
                        f'{type(model).__name__}')
    model.eval()
    count = _fuse_module(model)
    model.fused_bn_count = count
    return model
