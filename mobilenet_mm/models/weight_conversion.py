"""Load timm and torchvision ImageNet weights into our backbones.

Our blocks register their layers in forward order, exactly as timm and
torchvision do, so a reference state dict maps onto ours by position once
its classifier keys are set aside. Every pair is checked by shape and by
tensor kind (weight, bias, running_mean, ...); the first disagreement is
reported by name on both sides instead of loading garbage.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

# Keys of the ImageNet classifier that follows global pooling.
_TORCHVISION_HEAD = ('classifier.', )
_TIMM_HEAD = ('classifier.', 'conv_head.', 'norm_head.')


def unwrap_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """Return the tensor dict of a checkpoint saved by mmengine, timm or
    torchvision (``state_dict``/``model`` wrappers, DataParallel ``module.``
    prefixes removed)."""
    for key in ('state_dict', 'model', 'state_dict_ema'):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
            break
    state = OrderedDict()
    for name, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            continue
        state[name[len('module.'):] if name.startswith('module.') else
              name] = value
    return state


def _head_prefixes(state: Dict[str, torch.Tensor]) -> Tuple[str, ...]:
    if any(k.startswith('features.') for k in state):  # torchvision
        return _TORCHVISION_HEAD
    # timm's EfficientNet class (mobilenetv1/v2) puts conv_head + bn2
    # before pooling: part of the backbone. Its MobileNetV3 class (v3/v4)
    # has conv_head after pooling: part of the classifier.
    if 'bn2.weight' in state:
        return ('classifier.', )
    return _TIMM_HEAD


def _kind(name: str) -> str:
    return name.rsplit('.', 1)[-1]


def convert_reference_state_dict(
        state: Dict[str, torch.Tensor], model: nn.Module
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Map a timm/torchvision state dict onto ``model``'s keys.

    Returns the converted state dict and the classifier keys that were
    dropped. Raises ``ValueError`` naming the first key pair whose shape or
    kind differs, or the count mismatch.
    """
    heads = _head_prefixes(state)
    dropped = [k for k in state if k.startswith(heads)]
    source = [(k, v) for k, v in state.items()
              if not k.startswith(heads)
              and not k.endswith('num_batches_tracked')]
    target = [(k, v) for k, v in model.state_dict().items()
              if not k.endswith('num_batches_tracked')]
    for (src_key, src), (dst_key, dst) in zip(source, target):
        if src.shape != dst.shape or _kind(src_key) != _kind(dst_key):
            raise ValueError(
                f'checkpoint does not fit this architecture: {src_key} '
                f'{tuple(src.shape)} would load into {dst_key} '
                f'{tuple(dst.shape)}; check --arch / widen_factor')
    if len(source) != len(target):
        shorter, longer = ((source, 'model') if len(source) < len(target)
                           else (target, 'checkpoint'))
        extra = (target if longer == 'model' else source)[len(shorter)][0]
        raise ValueError(
            f'checkpoint does not fit this architecture: it has '
            f'{len(source)} backbone tensors, the model {len(target)}; '
            f'first unmatched {longer} key: {extra}')
    converted = OrderedDict(
        (dst_key, src) for (_, src), (dst_key, _) in zip(source, target))
    return converted, dropped


def is_own_state_dict(state: Dict[str, torch.Tensor], model: nn.Module,
                      prefix: str = '') -> bool:
    """Whether ``state`` already uses our key names (with ``prefix``)."""
    own = set(model.state_dict())
    return any(k[len(prefix):] in own for k in state if k.startswith(prefix))


def load_pretrained(model: nn.Module, checkpoint_path: str,
                    prefix: Optional[str] = None,
                    logger=None) -> Tuple[List[str], List[str]]:
    """Load our own, timm or torchvision weights into a backbone.

    ``prefix`` selects a sub-module of a larger checkpoint (e.g.
    ``'backbone.'`` of a trained detector). Missing and unexpected keys are
    logged by name and returned.
    """
    from mmengine.logging import print_log

    from ..utils import load_checkpoint_file
    state = unwrap_state_dict(load_checkpoint_file(checkpoint_path))
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        state = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                            if k.startswith(prefix))
        if not state:
            raise ValueError(f'no key starts with prefix "{prefix}" in '
                             f'{checkpoint_path}')
    if not is_own_state_dict(state, model):
        state, dropped = convert_reference_state_dict(state, model)
        if dropped:
            print_log(f'{checkpoint_path}: dropped classifier keys: '
                      f'{", ".join(dropped)}', logger=logger)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys:
        print_log(f'{checkpoint_path}: missing keys: '
                  f'{", ".join(result.missing_keys)}', logger=logger,
                  level=30)
    if result.unexpected_keys:
        print_log(f'{checkpoint_path}: unexpected keys: '
                  f'{", ".join(result.unexpected_keys)}', logger=logger,
                  level=30)
    return result.missing_keys, result.unexpected_keys
