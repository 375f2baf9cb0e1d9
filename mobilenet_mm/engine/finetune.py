"""Fine-tune a trained segmentor or detector on a data set with other
classes.

A trained LR-ASPP (or any mmseg segmentor) or SSDLite checkpoint is mostly
reusable on another data set: the backbone, the head's features and the box
predictors carry over, only the class layers (the convs that output one
channel per class) are tied to the old classes. ``load_from`` is the wrong tool for that: mmengine skips
mismatched shapes with a warning, and keeps class layers whose shapes happen
to match, with the old classes' meaning.

:func:`load_for_finetune` loads everything except the class layers, which
keep the fresh initialisation the model got when it was built, and says which
checkpoint keys it dropped; :class:`FinetuneHook` does it inside a training
run::

    custom_hooks = [dict(type='mobilenet_mm.FinetuneHook',
                         checkpoint='work_dirs/lraspp/iter_90000.pth')]
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ..registry import HOOKS

AUTO = 'auto'


def class_layer_names(model: nn.Module) -> List[str]:
    """Module names of the class layers of every head in ``model``.

    A head lists them in its ``class_layers`` attribute (ours:
    ``LRASPPHead`` has ``conv_seg`` and ``conv_seg_low``, ``SSDLiteHead``
    the last conv of each class predictor); any other mmseg decode head has
    exactly one, ``conv_seg``.
    """
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    names = []
    for name, module in model.named_modules():
        layers = getattr(module, 'class_layers', None)
        if layers is None and isinstance(module, BaseDecodeHead):
            layers = ('conv_seg', )
        for layer in layers or ():
            names.append(f'{name}.{layer}' if name else layer)
    return names


def _under(key: str, modules: Sequence[str]) -> bool:
    return any(key.startswith(m + '.') for m in modules)


@dataclass
class FinetuneResult:
    """What :func:`load_for_finetune` did, key by key."""
    loaded: List[str]
    dropped: List[str]   # class-layer keys of the checkpoint, not loaded
    missing: List[str]   # other model keys the checkpoint lacks
    unused: List[str]    # checkpoint keys the model does not have


def load_for_finetune(model: nn.Module,
                      checkpoint: Union[str, Dict],
                      class_layers: Union[str, Sequence[str]] = AUTO,
                      logger='current') -> FinetuneResult:
    """Load ``checkpoint`` into ``model`` except its class layers.

    Args:
        model: the segmentor, built (and initialised) for the new classes.
        checkpoint: a checkpoint path (mmengine, loaded safely) or a state
            dict.
        class_layers: module names whose weights are not loaded; ``'auto'``
            takes :func:`class_layer_names` of the model.
        logger: where the summary goes (mmengine's ``print_log``).

    Every other checkpoint tensor must fit its model tensor: a shape
    mismatch outside the class layers means the architecture differs, and
    raises ``ValueError`` naming the key rather than silently training a
    partly random model.
    """
    from ..utils.checkpoint import load_state_dict_file, unwrap_state_dict
    source = checkpoint if isinstance(checkpoint, str) else 'state dict'
    state = (load_state_dict_file(checkpoint) if isinstance(checkpoint, str)
             else unwrap_state_dict(checkpoint))
    if is_model_wrapper(model):
        model = model.module
    if class_layers == AUTO:
        class_layers = class_layer_names(model)
        if not class_layers:
            raise ValueError('load_for_finetune: the model has no head with '
                             'known class layers; pass class_layers=[module '
                             'names]')
    class_layers = list(class_layers)
    own = model.state_dict()

    dropped = [k for k in state if _under(k, class_layers)]
    unused = [k for k in state if k not in own and k not in dropped]
    kept = {k: v for k, v in state.items() if k in own and k not in dropped}
    for key, value in kept.items():
        if value.shape != own[key].shape:
            raise ValueError(
                f'{source}: {key} has shape {tuple(value.shape)}, the model '
                f'{tuple(own[key].shape)}; it is not a class layer '
                f'({", ".join(class_layers)}), so the checkpoint does not fit '
                'this architecture')
    model.load_state_dict(kept, strict=False)
    missing = [k for k in own if k not in kept and not _under(k, class_layers)]

    print_log(
        f'fine-tuning from {source}: loaded {len(kept)} tensors; class '
        f'layers {", ".join(class_layers)} keep their new initialisation '
        "(they predict the checkpoint's classes, not this data set's); "
        f'dropped checkpoint keys: {", ".join(dropped) or "none"}',
        logger=logger)
    if missing:
        print_log(f'fine-tuning from {source}: not in the checkpoint (left as '
                  f'initialised): {", ".join(missing)}', logger=logger,
                  level=30)
    if unused:
        print_log(f'fine-tuning from {source}: not in the model (ignored): '
                  f'{", ".join(unused)}', logger=logger, level=30)
    return FinetuneResult(list(kept), dropped, missing, unused)


@HOOKS.register_module()
class FinetuneHook(Hook):
    """Start a training run from a trained checkpoint with other classes.

    Runs :func:`load_for_finetune` at ``before_train``: after the runner has
    initialised the model (so the class layers are fresh, and a backbone
    ``init_cfg`` is overridden by the checkpoint) and after ``load_from`` /
    resume. A resumed run (iteration > 0) already holds fine-tuned weights
    and is left alone.

    Args:
        checkpoint: path of the trained checkpoint.
        class_layers: ``'auto'`` or module names, see
            :func:`load_for_finetune`.
    """

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: str,
                 class_layers: Union[str, Sequence[str]] = AUTO):
        if not isinstance(checkpoint, str) or not checkpoint:
            raise ValueError('FinetuneHook: checkpoint must be a path, got '
                             f'{checkpoint!r}')
        self.checkpoint = checkpoint
        self.class_layers = class_layers
        self.result: Optional[FinetuneResult] = None

    def before_train(self, runner) -> None:
        if runner.iter > 0:
            runner.logger.info(
                f'FinetuneHook: resumed at iteration {runner.iter}; '
                f'{self.checkpoint} is not loaded again')
            return
        self.result = load_for_finetune(runner.model, self.checkpoint,
                                        self.class_layers,
                                        logger=runner.logger)
