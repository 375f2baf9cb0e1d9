"""Build a config's model for export and benchmarks: random or checkpoint
weights, quietly."""
import logging
import os.path as osp
from contextlib import contextmanager
from typing import Optional, Tuple

import torch


@contextmanager
def quiet_mmengine():
    """Hide mmengine's INFO output (the per-parameter ``init_weights``
    dump) while building."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def init_random(model: torch.nn.Module) -> torch.nn.Module:
    """Run the model's own initialisation without loading any pretrained
    file a config names (``init_cfg=dict(type='Pretrained', ...)``): random
    weights with each module's intended distribution."""
    from mmengine.model import BaseModule
    for module in model.modules():
        init_cfg = getattr(module, 'init_cfg', None)
        if isinstance(module, BaseModule) and isinstance(
                init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            module.init_cfg = None
    with quiet_mmengine():
        model.init_weights()
    return model


def load_config_file(path: str):
    """``Config.fromfile`` with a one-line error for a missing file
    (``mmdet::``/``mmseg::`` paths are resolved by mmengine)."""
    from mmengine.config import Config
    if '::' in path:
        from mmengine.hub import get_config
        return get_config(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    return Config.fromfile(path)


def export_shape(cfg, shape: Optional[Tuple[int, int]],
                 config_path: str) -> Tuple[int, int]:
    """``shape`` (a ``--shape H W`` argument) if given, else the config's
    own input size; a config without one is a one-line CLIError."""
    if shape:
        return tuple(shape)
    from ..analysis.model_stats import config_input_shape
    from ..errors import CLIError
    try:
        return config_input_shape(cfg)
    except ValueError as e:
        raise CLIError(f'{config_path}: {e}') from None


def build_config_model(cfg, shape: Optional[Tuple[int, int]] = None,
                       seed: int = 0) -> torch.nn.Module:
    """The detector or segmentor of ``cfg`` (a path or a Config) with random
    weights, in eval mode; ``shape`` lays SSDLite anchors out for another
    input size."""
    from ..analysis.model_stats import build_model_from_config
    from .onnx_export import set_detector_input_size
    if isinstance(cfg, str):
        cfg = load_config_file(cfg)
    if shape is not None and cfg.get('default_scope') != 'mmseg':
        set_detector_input_size(cfg, shape)
    torch.manual_seed(seed)
    with quiet_mmengine():
        model = build_model_from_config(cfg)
    return init_random(model).eval()


def build_checkpoint_model(cfg, task: str, shape: Tuple[int, int],
                           checkpoint: Optional[str] = None,
                           state: Optional[dict] = None) -> torch.nn.Module:
    """The model of ``cfg`` (SSDLite anchors laid out for ``shape``) in eval
    mode, with ``state`` (read from ``checkpoint``; refused in one line when
    its keys or shapes do not fit), else random weights (printed)."""
    from ..analysis.model_stats import build_model_from_config
    from ..utils.checkpoint import check_state_dict_matches
    from .onnx_export import set_detector_input_size
    if task == 'det':
        set_detector_input_size(cfg, shape)
    cfg.setdefault('default_scope', 'mmdet' if task == 'det' else 'mmseg')
    torch.manual_seed(0)
    with quiet_mmengine():
        model = build_model_from_config(cfg)
    if state is not None:
        check_state_dict_matches(model, state, checkpoint)
        model.load_state_dict(state)
    else:
        init_random(model)
        print('no checkpoint given: exporting random weights')
    return model.eval()


@torch.no_grad()
def calibrate_bn(model: torch.nn.Module, inputs: torch.Tensor,
                 seed: int = 0, **forward_kwargs) -> torch.nn.Module:
    """Give a random-weight model the BN statistics of its own activations
    (as training would), and random BN affines: well-conditioned outputs
    of useful magnitude for numerical checks, unlike random statistics,
    which make deep float32 outputs carry rounding far above 1e-4.

    ``inputs`` is one batch; the running statistics become its exact mean
    and variance (cumulative average over one pass). Returns the model in
    eval mode.
    """
    from torch.nn.modules.batchnorm import _BatchNorm
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        if norm.weight is not None:
            norm.weight.uniform_(0.5, 1.5, generator=generator)
            norm.bias.uniform_(-0.5, 0.5, generator=generator)
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    model(inputs, **forward_kwargs)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return model.eval()
