"""Load torchvision's COCO-trained detector and segmenter into our configs.

torchvision publishes trained weights of two architectures that our V3
modules build exactly (``configs/*/*-torchvision_*.py``):

* ``ssdlite320_mobilenet_v3_large`` (``detection/ssdlite.py``): keys
  ``backbone.features.*`` (the reduced-tail MobileNetV3-Large, split at the
  C4 expansion conv), ``backbone.extra.*`` (our ``SSDLiteNeck``),
  ``head.{classification,regression}_head.module_list.*`` (our
  ``SSDLiteHead``'s ``cls_convs`` / ``reg_convs``).
* ``lraspp_mobilenet_v3_large`` (``segmentation/lraspp.py``): keys
  ``backbone.<i>.*`` (MobileNetV3-Large ``features``, dilated) and
  ``classifier.{cbr,scale,low_classifier,high_classifier}.*`` (our
  ``LRASPPHead``).

Within each part the tensors pair by position, checked by shape and kind
(:func:`~.weight_conversion.pair_in_order`), as for the ImageNet backbones.
The detector's class columns are reordered: torchvision has 91 outputs,
background first, then COCO ids 1-90 (10 of them never assigned, "N/A");
ours are mmdet's 80 classes in id order, the background, then the 10 unused
outputs (``SSDLiteHead(unused_class_outputs=10)``), so the softmax is the
same and label ``i`` is the ``i``-th COCO category.
"""
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from .weight_conversion import (convert_reference_state_dict, forward_order,
                                pair_in_order)

# COCO ids 1-90 that the 2017 annotations never use: the 'N/A' entries of
# torchvision's _COCO_CATEGORIES (models/_meta.py).
COCO_UNASSIGNED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
COCO_NUM_IDS = 91  # background (0) and ids 1-90
COCO_NUM_CLASSES = COCO_NUM_IDS - 1 - len(COCO_UNASSIGNED_IDS)  # 80


def coco_category_ids() -> List[int]:
    """The 80 COCO category ids, in mmdet's label order."""
    return [i for i in range(1, COCO_NUM_IDS) if i not in COCO_UNASSIGNED_IDS]


def coco91_columns() -> List[int]:
    """torchvision's class column of each of our class outputs: the 80
    classes, the background, the 10 unused ids."""
    return coco_category_ids() + [0] + list(COCO_UNASSIGNED_IDS)


# (torchvision key prefix, our module, how the tensors pair)
SSDLITE_PARTS = (
    ('backbone.features.', 'backbone', 'backbone'),
    ('backbone.extra.', 'neck.extra_layers', 'order'),
    ('head.classification_head.module_list.', 'bbox_head.cls_convs', 'order'),
    ('head.regression_head.module_list.', 'bbox_head.reg_convs', 'order'),
)
LRASPP_PARTS = (
    ('backbone.', 'backbone', 'backbone'),
    ('classifier.cbr.0.', 'decode_head.aspp_conv.conv', 'order'),
    ('classifier.cbr.1.', 'decode_head.aspp_conv.bn', 'order'),
    ('classifier.scale.1.', 'decode_head.gate_conv.conv', 'order'),
    ('classifier.low_classifier.', 'decode_head.conv_seg_low', 'order'),
    ('classifier.high_classifier.', 'decode_head.conv_seg', 'order'),
)
MODELS = {
    'ssdlite': ('ssdlite320_mobilenet_v3_large', SSDLITE_PARTS),
    'lraspp': ('lraspp_mobilenet_v3_large', LRASPP_PARTS),
}


def torchvision_model_kind(model: nn.Module) -> str:
    """``'ssdlite'`` or ``'lraspp'``: which torchvision model ``model``'s
    config can take; ``ValueError`` for any other model."""
    from .decode_heads import LRASPPHead
    from .dense_heads import SSDLiteHead
    if isinstance(getattr(model, 'bbox_head', None), SSDLiteHead):
        return 'ssdlite'
    if isinstance(getattr(model, 'decode_head', None), LRASPPHead):
        return 'lraspp'
    raise ValueError(
        f'a {type(model).__name__} config: torchvision weights convert into '
        'SSDLite (mobilenet_mm.SSDLiteHead) and LR-ASPP '
        '(mobilenet_mm.LRASPPHead) configs only, e.g. '
        'configs/ssdlite/ssdlite_mobilenetv3-large-reduced-torchvision_8xb24-660e_coco-320x320.py')


def _sub_state(model: nn.Module, module: str):
    prefix = module + '.'
    return [(k[len(prefix):], v) for k, v in model.state_dict().items()
            if k.startswith(prefix)]


def _check_coco_layout(head) -> None:
    if head.use_sigmoid_cls:
        # its weights were trained for a softmax; sigmoid scores of them
        # would rank the classes differently
        raise ValueError(
            "torchvision's SSDLite scores with a softmax; the config head "
            'has a sigmoid loss_cls (use_sigmoid=True): use the softmax '
            'CrossEntropyLoss, as configs/ssdlite/ssdlite_mobilenetv3-large-'
            'reduced-torchvision_8xb24-660e_coco-320x320.py does')
    if (head.num_classes, head.unused_class_outputs) != (
            COCO_NUM_CLASSES, COCO_NUM_IDS - 1 - COCO_NUM_CLASSES):
        raise ValueError(
            "torchvision's SSDLite has 91 class outputs (background, COCO ids "
            '1-90); the config head must have num_classes=80 and '
            'unused_class_outputs=10, it has num_classes='
            f'{head.num_classes}, unused_class_outputs='
            f'{head.unused_class_outputs}')


def _reorder_class_columns(convs: nn.Module, state: Dict[str, torch.Tensor],
                           prefix: str) -> None:
    """Permute the class outputs of the last conv of each class predictor
    (``priors * 91`` channels, anchor-major as in both libraries)."""
    columns = torch.tensor(coco91_columns())
    for i, layers in enumerate(convs):
        for kind in ('weight', 'bias'):
            key = f'{prefix}{i}.{len(layers) - 1}.{kind}'
            value = state[key]
            per_anchor = value.reshape(-1, COCO_NUM_IDS, *value.shape[1:])
            state[key] = per_anchor[:, columns].reshape(value.shape)


def convert_torchvision_model(
        state: Dict[str, torch.Tensor],
        model: nn.Module) -> Tuple['OrderedDict[str, torch.Tensor]', str]:
    """Map a torchvision SSDLite320 / LR-ASPP state dict onto ``model``.

    Returns our full state dict (``model.state_dict()`` keys, BN counters
    included) and the torchvision model's name. Raises ``ValueError`` in one
    line naming the first key that does not fit: a key of another model, a
    tensor whose shape or kind differs, or a part with too few or too many
    tensors.
    """
    kind = torchvision_model_kind(model)
    name, parts = MODELS[kind]
    if kind == 'ssdlite':
        _check_coco_layout(model.bbox_head)
    by_part = {prefix: [] for prefix, _, _ in parts}
    for key in state:
        prefix = next((p for p, _, _ in parts if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(
                f'{key} is not a key of torchvision\'s {name} (its keys '
                f'start with {", ".join(p for p, _, _ in parts)}); '
                'is this the file for this config?')
        by_part[prefix].append(key[len(prefix):])
    converted = OrderedDict()
    for prefix, module, pairing in parts:
        keys = by_part[prefix]
        if pairing == 'backbone':
            # The MobileNetV3 part, as torchvision's classifier names it.
            source = {'features.' + k: state[prefix + k] for k in keys}
            mapped, _ = convert_reference_state_dict(
                source, getattr(model, module),
                f"is this the file of torchvision's {name}?")
        else:
            source = [(k, state[prefix + k])
                      for k in forward_order(keys, torchvision=True)]
            mapped = pair_in_order(source, _sub_state(model, module),
                                   f'{prefix}*',
                                   f'is this the file of torchvision\'s '
                                   f'{name}?')
        converted.update((f'{module}.{k}', v) for k, v in mapped.items())
    if kind == 'ssdlite':
        _reorder_class_columns(model.bbox_head.cls_convs, converted,
                               'bbox_head.cls_convs.')
    full = OrderedDict()
    for key, value in model.state_dict().items():
        # BN batch counters are not paired; the model's are kept.
        full[key] = converted.get(key, value)
    return full, name
