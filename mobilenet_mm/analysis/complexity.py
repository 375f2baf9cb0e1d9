"""Parameter and multiply-add counts, as the MobileNet papers report them.

MAdds are the multiply-accumulates of convolutions, linear layers and
attention matrix products. Norms, activations, pooling and element-wise ops
are not counted, following [V1]-[V4] and the TF/timm profilers the papers
used. Resizes are counted only on request (``include_resize``): [V3]
Tables 7 and 8 count the segmentation network "at full resolution", and
their figures are matched only when the bilinear upsamplings (the logits'
to the input size included) are counted, see :func:`segmentor_madds`.
"""
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

# Multiply-adds per output value of an interpolation: a weighted sum of 2
# (linear), 4 (bilinear) or 16 (bicubic) inputs; nearest only copies.
RESIZE_MADDS_PER_VALUE = {'linear': 2, 'bilinear': 4, 'bicubic': 16}


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def _conv_madds(module: nn.Conv2d, output: torch.Tensor) -> int:
    kernel = module.kernel_size[0] * module.kernel_size[1]
    return output.numel() * kernel * module.in_channels // module.groups


def resize_madds(channels: int, height: int, width: int,
                 mode: str = 'bilinear') -> int:
    """Multiply-adds of resizing a ``channels``-channel map to
    ``height`` x ``width`` with interpolation ``mode``."""
    return RESIZE_MADDS_PER_VALUE.get(mode, 0) * channels * height * width


class _ResizeCounter(TorchFunctionMode):
    """Adds up :func:`resize_madds` of every ``F.interpolate`` call (the
    functional resizes of heads, which module hooks cannot see)."""

    def __init__(self):
        super().__init__()
        self.madds = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if func is F.interpolate:
            mode = kwargs.get('mode', args[3] if len(args) > 3 else 'nearest')
            batch, channels, *size = result.shape
            self.madds += batch * resize_madds(channels, *size, mode=mode)
        return result


def count_madds(model: nn.Module, *inputs: Any,
                include_attention: bool = True,
                include_resize: bool = False, **kwargs: Any) -> int:
    """Multiply-adds of one forward pass of ``model(*inputs, **kwargs)``.

    ``include_attention=False`` leaves out the attention matrix products,
    to compare with counters that only see conv/linear modules;
    ``include_resize=True`` adds the ``F.interpolate`` calls
    (:func:`resize_madds`).
    """
    from ..models.layers import MultiQueryAttention
    total = 0

    def conv_hook(module, _, output):
        nonlocal total
        total += _conv_madds(module, output)

    def linear_hook(module, _, output):
        nonlocal total
        total += output.numel() * module.in_features

    key_positions = {}

    def key_hook(module, _, output):
        key_positions[id(module)] = output.shape[2:].numel()

    def attention_hook(module, args, output):
        # q @ k^T and attn @ v: every query position attends to every
        # (possibly downsampled) key position, per head.
        nonlocal total
        x = args[0]
        queries = x.shape[0] * x.shape[2] * x.shape[3]
        keys = key_positions[id(module.key)]
        total += queries * keys * module.num_heads * (module.key_dim +
                                                      module.value_dim)

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
        elif include_attention and isinstance(module,
                                              MultiQueryAttention):
            handles.append(module.key.register_forward_hook(key_hook))
            handles.append(module.register_forward_hook(attention_hook))
    was_training = model.training
    model.eval()
    resizes = _ResizeCounter()
    try:
        with torch.no_grad():
            if include_resize:
                with resizes:
                    model(*inputs, **kwargs)
            else:
                model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total + resizes.madds


def segmentor_madds(model: nn.Module, image: torch.Tensor) -> int:
    """MAdds of an mmseg segmentor from ``image`` to logits at the image's
    full resolution, [V3] Table 7's convention: convs and attention as in
    :func:`count_madds`, plus every bilinear resize, the last one being
    the upsampling of the logits to the input size that mmseg's
    ``predict`` does after the tensor-mode forward counted here."""
    logits = []  # the tensor-mode forward returns the decode head's logits
    handle = model.register_forward_hook(
        lambda module, args, output: logits.append(output.shape))
    try:
        madds = count_madds(model, image, include_resize=True, mode='tensor')
    finally:
        handle.remove()
    batch, classes, *size = logits[-1]
    height, width = image.shape[-2:]
    if tuple(size) != (height, width):
        madds += batch * resize_madds(classes, height, width, 'bilinear')
    return madds
