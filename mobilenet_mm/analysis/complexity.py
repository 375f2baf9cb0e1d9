"""Parameter and multiply-add counts, as the MobileNet papers report them.

MAdds are the multiply-accumulates of convolutions, linear layers and
attention matrix products. Norms, activations, pooling, resizing and
element-wise ops are not counted, following [V1]-[V4] and the TF/timm
profilers the papers used.
"""
from typing import Any

import torch
import torch.nn as nn


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def _conv_madds(module: nn.Conv2d, output: torch.Tensor) -> int:
    kernel = module.kernel_size[0] * module.kernel_size[1]
    return output.numel() * kernel * module.in_channels // module.groups


def count_madds(model: nn.Module, *inputs: Any,
                include_attention: bool = True, **kwargs: Any) -> int:
    """Multiply-adds of one forward pass of ``model(*inputs, **kwargs)``.

    ``include_attention=False`` leaves out the attention matrix products,
    to compare with counters that only see conv/linear modules.
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
    try:
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
