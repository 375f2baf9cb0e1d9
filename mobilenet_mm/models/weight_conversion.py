"""Load timm and torchvision ImageNet weights into our backbones.

Our blocks register their layers in forward order, exactly as timm and
torchvision do, so a reference state dict maps onto ours by position once
its classifier keys are set aside. Every pair is checked by shape and by
tensor kind (weight, bias, running_mean, ...); the first disagreement is
reported by name on both sides instead of loading garbage.

``.safetensors`` files do not keep the key order (they store keys sorted),
so the reference order is first restored from the key names:
:func:`forward_order`.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

# Re-exported: the state-dict helpers live with the checkpoint loading.
from ..utils.checkpoint import unwrap_state_dict  # noqa: F401

# Keys of the ImageNet classifier that follows global pooling.
_TORCHVISION_HEAD = ('classifier.', )
_TIMM_HEAD = ('classifier.', 'conv_head.', 'norm_head.')


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


# The order in which timm registers the submodules of each block type (and
# of its model), which a sorted key list has lost. torchvision needs only
# its top level: below it, module names are indices in forward order.
_TIMM_ORDERS = {
    'model': ('conv_stem', 'bn1', 'blocks', 'conv_head', 'bn2', 'norm_head',
              'classifier'),
    'torchvision': ('features', 'classifier'),
    # InvertedResidual (has conv_pwl) / DepthwiseSeparableConv (has not)
    'inverted_residual': ('conv_pw', 'bn1', 'conv_dw', 'bn2', 'aa', 'se',
                          'conv_pwl', 'bn3'),
    'depthwise_separable': ('conv_dw', 'bn1', 'aa', 'se', 'conv_pw', 'bn2'),
    'edge_residual': ('conv_exp', 'bn1', 'aa', 'se', 'conv_pwl', 'bn2'),
    'conv_bn_act': ('conv', 'bn1'),
    'universal': ('dw_start', 'pw_exp', 'dw_mid', 'se', 'pw_proj', 'dw_end',
                  'layer_scale'),
    'attention': ('norm', 'attn', 'layer_scale'),
    'attn': ('query', 'key', 'value', 'output'),
    'attn_branch': ('down_pool', 'down_conv', 'norm', 'proj'),
    'se': ('conv_reduce', 'conv_expand'),
    'conv_norm': ('conv', 'bn'),
}
_TENSOR_ORDER = ('weight', 'bias', 'running_mean', 'running_var',
                 'num_batches_tracked', 'gamma')


def _timm_block_kind(names):
    if 'pw_exp' in names:
        return 'universal'
    if 'attn' in names:
        return 'attention'
    if 'conv_exp' in names:
        return 'edge_residual'
    if 'conv_pwl' in names:
        return 'inverted_residual'
    if 'conv_dw' in names:
        return 'depthwise_separable'
    return 'conv_bn_act'


def forward_order(keys: List[str],
                  torchvision: Optional[bool] = None) -> List[str]:
    """Sort reference keys into the order their modules run (and register).

    Index tokens sort numerically; named tokens by the table of the module
    type they belong to (timm) or alphabetically (torchvision uses indices
    for every ordered part, its named parts such as ``fc1``/``fc2`` sort
    alphabetically). ``torchvision=None`` tells the library from the keys
    (torchvision classifiers start with ``features.``).
    """
    if torchvision is None:
        torchvision = any(k.startswith('features.') for k in keys)
    timm = not torchvision
    block_names = {}
    if timm:
        for key in keys:
            parts = key.split('.')
            if parts[0] == 'blocks' and len(parts) > 3:
                block_names.setdefault(tuple(parts[:3]), set()).add(parts[3])

    def rank(table, name):
        order = _TIMM_ORDERS[table]
        return (0, order.index(name)) if name in order else (1, name)

    def sort_key(key):
        parts = key.split('.')
        result = []
        for depth, token in enumerate(parts):
            if depth == len(parts) - 1:
                result.append((2, _TENSOR_ORDER.index(token)
                               if token in _TENSOR_ORDER else token))
            elif token.isdigit():
                result.append((0, int(token)))
            elif depth == 0:
                result.append(rank('model' if timm else 'torchvision', token))
            elif not timm:
                result.append((1, token))
            elif parts[0] == 'blocks' and depth == 3:
                kind = _timm_block_kind(block_names[tuple(parts[:3])])
                result.append(rank(kind, token))
            elif parts[depth - 1] == 'attn':
                result.append(rank('attn', token))
            elif parts[depth - 1] in ('query', 'key', 'value'):
                result.append(rank('attn_branch', token))
            elif parts[depth - 1] == 'se':
                result.append(rank('se', token))
            else:
                result.append(rank('conv_norm', token))
        return result

    return sorted(keys, key=sort_key)


def convert_reference_state_dict(
        state: Dict[str, torch.Tensor], model: nn.Module,
        hint: str = 'check --arch / widen_factor'
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Map a timm/torchvision state dict onto ``model``'s keys.

    Returns the converted state dict and the classifier keys that were
    dropped. Raises ``ValueError`` naming the first key pair whose shape or
    kind differs, or the count mismatch.
    """
    heads = _head_prefixes(state)
    dropped = [k for k in state if k.startswith(heads)]
    source = [(k, state[k]) for k in forward_order(list(state))
              if not k.startswith(heads)]
    converted = pair_in_order(source, model.state_dict().items(),
                              'backbone', hint)
    return converted, dropped


def pair_in_order(source, target, what: str,
                  hint: str) -> 'OrderedDict[str, torch.Tensor]':
    """Pair reference tensors with a model's tensors by position.

    ``source`` and ``target`` are ``(key, tensor)`` sequences in forward
    order (``num_batches_tracked`` entries are skipped on both sides). Every
    pair must agree in shape and tensor kind; the first pair that does not,
    or a count mismatch, raises ``ValueError`` naming the keys, with
    ``hint`` saying what to check. Returns target key -> source tensor.
    """
    source = [(k, v) for k, v in source
              if not k.endswith('num_batches_tracked')]
    target = [(k, v) for k, v in target
              if not k.endswith('num_batches_tracked')]
    for (src_key, src), (dst_key, dst) in zip(source, target):
        if src.shape != dst.shape or _kind(src_key) != _kind(dst_key):
            raise ValueError(
                f'checkpoint does not fit this architecture: {src_key} '
                f'{tuple(src.shape)} would load into {dst_key} '
                f'{tuple(dst.shape)}; {hint}')
    if len(source) != len(target):
        shorter, longer = ((source, 'model') if len(source) < len(target)
                           else (target, 'checkpoint'))
        extra = (target if longer == 'model' else source)[len(shorter)][0]
        raise ValueError(
            f'checkpoint does not fit this architecture: it has '
            f'{len(source)} {what} tensors, the model {len(target)}; '
            f'first unmatched {longer} key: {extra}')
    return OrderedDict(
        (dst_key, src) for (_, src), (dst_key, _) in zip(source, target))


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

    from ..errors import CheckpointMismatchError
    from ..utils.checkpoint import load_state_dict_file
    state = load_state_dict_file(checkpoint_path)
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        state = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                            if k.startswith(prefix))
        if not state:
            raise ValueError(f'no key starts with prefix "{prefix}" in '
                             f'{checkpoint_path}')
    where = f'{checkpoint_path} (Pretrained init of {type(model).__name__})'
    if not is_own_state_dict(state, model):
        try:
            state, dropped = convert_reference_state_dict(state, model)
        except ValueError as e:
            raise CheckpointMismatchError(f'{where}: {e}') from None
        if dropped:
            print_log(f'{checkpoint_path}: dropped classifier keys: '
                      f'{", ".join(dropped)}', logger=logger)
    # torch would list every mismatch in one RuntimeError (hundreds of
    # lines for another architecture's checkpoint); name the first.
    own = model.state_dict()
    wrong = [k for k, v in state.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise CheckpointMismatchError(
            f'{where}: checkpoint does not fit this architecture: '
            f'{len(wrong)} tensors have other shapes (first: {wrong[0]} '
            f'{tuple(state[wrong[0]].shape)} in the file, '
            f'{tuple(own[wrong[0]].shape)} in the model); check arch / '
            'widen_factor')
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
