"""Params and MAdds of backbones (with the paper's ImageNet head) and of
whole detectors/segmenters built from configs, beside the papers' figures.
"""
import os
from typing import Dict, List, Optional, Tuple

import torch

from .complexity import count_madds, count_params, segmentor_madds
from .paper_tables import CLASSIFIERS, find_classifier_row, find_task_row


def build_reference_classifier(library: str, name: str, **kwargs):
    """A timm or torchvision ImageNet model with random weights."""
    if library == 'timm':
        import timm
        return timm.create_model(name, pretrained=False, **kwargs)
    import torchvision
    return getattr(torchvision.models, name)(weights=None, **kwargs)


def classifier_stats(arch: str, widen_factor: float = 1.0,
                     resolution: Optional[int] = None,
                     with_reference: bool = True) -> Dict:
    """Measure our backbone + ImageNet head; attach the paper row and the
    reference implementation's parameter count when there is one."""
    from ..models.backbones import build_backbone_by_name
    from ..models.classifier import MobileNetClassifier
    row = find_classifier_row(arch, widen_factor, resolution)
    if row is None and resolution is None:
        row = find_classifier_row(arch, widen_factor)
    if resolution is None:
        resolution = row.resolution if row else 224
    model = MobileNetClassifier(
        build_backbone_by_name(arch, widen_factor=widen_factor))
    image = torch.zeros(1, 3, resolution, resolution)
    stats = dict(arch=arch, widen_factor=widen_factor, resolution=resolution,
                 params=count_params(model), madds=count_madds(model, image),
                 paper=row, reference_params=None, reference_madds=None,
                 # comparable with reference_madds: our hooks cannot see
                 # the attention products inside timm's blocks
                 madds_without_attention=count_madds(
                     model, image, include_attention=False))
    if with_reference and row is not None and row.reference:
        reference = build_reference_classifier(*row.reference)
        stats['reference_params'] = count_params(reference)
        stats['reference_madds'] = count_madds(reference, image)
    return stats


def format_classifier_table(rows: List[Dict]) -> str:
    """Markdown table: measured beside paper (and reference) figures."""
    lines = [
        '| arch | width | res | params (M) | paper params (M) | reference '
        'params | MAdds (M) | paper MAdds (M) | paper top-1 | source |',
        '|---|---|---|---|---|---|---|---|---|---|'
    ]
    for s in rows:
        paper = s['paper']
        ref = ('-' if s['reference_params'] is None else
               f"{s['reference_params']:,} ({paper.reference[1]})")
        lines.append(
            f"| {s['arch']} | {s['widen_factor']} | {s['resolution']} | "
            f"{s['params'] / 1e6:.3f} | "
            f"{paper.params_m.value if paper else '-'} | {ref} | "
            f"{s['madds'] / 1e6:.1f} | "
            f"{paper.madds_m.value if paper else '-'} | "
            f"{paper.top1 if paper else '-'} | "
            f"{paper.source if paper else '-'} |")
    return '\n'.join(lines)


def all_classifier_stats(with_reference: bool = True) -> List[Dict]:
    return [
        classifier_stats(row.arch, row.widen_factor, row.resolution,
                         with_reference) for row in CLASSIFIERS
    ]


# -- configs -----------------------------------------------------------
def build_model_from_config(cfg):
    """Build the model of a detection (mmdet) or segmentation (mmseg)
    config, honouring ``custom_imports`` and ``default_scope``."""
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmseg':
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    elif scope == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        raise ValueError(f"config default_scope {scope!r} is not supported; "
                         "allowed: 'mmdet', 'mmseg'")
    register_all_modules(init_default_scope=True)
    return MODELS.build(cfg.model)


def check_countable(model) -> None:
    """MAdds are counted on one tensor forward: single-stage detectors and
    encoder-decoder segmentors (what the configs here build). Two-stage
    detectors need image metas (proposals) and are refused by name."""
    from mmdet.models.detectors import BaseDetector, SingleStageDetector
    if isinstance(model, BaseDetector) and not isinstance(
            model, SingleStageDetector):
        raise ValueError(
            f'counting supports single-stage detectors (SSD, RetinaNet) '
            f'and encoder-decoder segmentors, not {type(model).__name__}')


def config_input_shape(cfg) -> Tuple[int, int]:
    """(H, W) of the first ``Resize`` in the test pipeline (``scale`` is
    (W, H) in both mmdet and mmseg)."""
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.get(
        'pipeline', [])
    for step in pipeline:
        if step.get('type', '').split('.')[-1] == 'Resize' and \
                step.get('scale'):
            width, height = step['scale']
            return int(height), int(width)
    raise ValueError('no Resize with a scale in the test pipeline; pass '
                     '--shape H W')


def config_stats(config_path: str,
                 shape: Optional[Tuple[int, int]] = None,
                 cfg_options: Optional[Dict] = None) -> Dict:
    """Params and MAdds of a config's whole model at ``shape`` (default:
    its test Resize), after ``cfg_options`` overrides, with the paper's
    figures where one exists."""
    from mmengine.config import Config
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f'config file not found: {config_path}')
    cfg = Config.fromfile(config_path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = build_model_from_config(cfg)
    check_countable(model)
    height, width = shape or config_input_shape(cfg)
    image = torch.zeros(1, 3, height, width)
    name = os.path.splitext(os.path.basename(config_path))[0]
    paper = find_task_row(config_path)
    # The paper's MAdds hold at the config's own input size only.
    paper_madds_apply = paper is not None and (
        shape is None or tuple(shape) == config_input_shape(cfg))
    # Segmentors: [V3] Table 7's convention, up to full-resolution logits.
    madds = segmentor_madds(model, image) if hasattr(
        model, 'decode_head') else count_madds(model, image, mode='tensor')
    return dict(config=name, shape=(height, width),
                params=count_params(model), madds=madds, paper=paper,
                paper_madds=(paper.madds_g.value if paper_madds_apply
                             else None))
