"""mmcv ops on tensors of a device mmcv has no kernel for.

``make setup`` builds mmcv with its CPU ops only, unless ``MMCV_CUDA_OPS=1``
(see ``tools/setup/env_plan.py``). That mmcv has no kernel for CUDA tensors:
``mmcv.ops.nms`` raises ``nms_impl: implementation for device cuda:0 not
found``, and so does ``sigmoid_focal_loss``, which mmdet's ``FocalLoss``
calls for CUDA tensors. :func:`mmcv_has_kernel` tells, per op and device
type, by running the op once on a tiny tensor of that device; the callers
(:func:`mobilenet_mm.models.utils.batched_nms`,
:class:`mobilenet_mm.models.losses.PortableFocalLoss`) then use mmcv's
kernel where it has one and an equivalent elsewhere.
"""
from typing import Callable, Dict, Tuple, Union

import torch

# (op, device type) -> whether mmcv's kernel ran.
_FOUND: Dict[Tuple[str, str], bool] = {}
# What mmcv's device registry (and its older "not compiled" check) raise
# when no implementation is registered for a tensor's device.
_MISSING = ('implementation for device', 'not compiled with gpu support')


def _probe_nms(device: torch.device) -> None:
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 3.]], device=device)
    nms(boxes, torch.tensor([0.9, 0.8], device=device), 0.5)


def _probe_sigmoid_focal_loss(device: torch.device) -> None:
    from mmcv.ops import sigmoid_focal_loss
    sigmoid_focal_loss(
        torch.zeros(2, 3, device=device),
        torch.zeros(2, dtype=torch.long, device=device), 2.0, 0.25, None,
        'mean')


PROBES: Dict[str, Callable[[torch.device], None]] = {
    'nms': _probe_nms,
    'sigmoid_focal_loss': _probe_sigmoid_focal_loss,
}


def mmcv_has_kernel(op: str, device: Union[str, torch.device]) -> bool:
    """Whether mmcv's ``op`` runs on tensors of ``device``'s type.

    Found out once per (op, device type) by running the op on a tiny
    input; an mmcv without compiled ops counts as having no kernel. Other
    errors (a broken CUDA context, say) are raised, not hidden.
    """
    if op not in PROBES:
        raise ValueError(f'no kernel probe for mmcv op {op!r}; known: '
                         f'{sorted(PROBES)}')
    device = torch.device(device)
    key = (op, device.type)
    if key not in _FOUND:
        try:
            PROBES[op](device)
            _FOUND[key] = True
        except ImportError:  # mmcv-lite: no compiled ops at all
            _FOUND[key] = False
        except RuntimeError as e:
            if not any(text in str(e).lower() for text in _MISSING):
                raise
            _FOUND[key] = False
    return _FOUND[key]
