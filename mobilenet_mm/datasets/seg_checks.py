"""The segmentation head's class count against the data set's, before
anything is built.

With fewer head classes than the data set has, mmseg fails in the loss with
``IndexError: Target 10 is out of bounds`` (CPU) or a device-side assert
(GPU), after the model and the data loaders are built; with more, it
trains outputs no label ever asks for. Detection has the same check in
:func:`mobilenet_mm.datasets.coco_checks.check_num_classes`.
"""
from typing import List, Sequence, Tuple

from ..apis.config import register_host_modules
from ..errors import CLIError


def _heads(model: dict) -> List[Tuple[str, dict]]:
    """(config key, head) of the decode and auxiliary heads."""
    found = []
    for key in ('decode_head', 'auxiliary_head'):
        node = model.get(key)
        heads = node if isinstance(node, (list, tuple)) else [node]
        for i, head in enumerate(heads):
            if isinstance(head, dict) and 'num_classes' in head:
                found.append((f'model.{key}' +
                              (f'[{i}]' if len(heads) > 1 else ''), head))
    return found


def _dataset_classes(dataset: dict):
    """The classes a data set config gives, else those of its class."""
    metainfo = dataset.get('metainfo') or {}
    if metainfo.get('classes'):
        return tuple(metainfo['classes'])
    register_host_modules('seg')
    from mmseg.registry import DATASETS
    dataset_type = dataset.get('type')
    cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else \
        dataset_type
    classes = (getattr(cls, 'METAINFO', None) or {}).get('classes')
    return tuple(classes) if classes else None


def check_segmentation_num_classes(cfg, loaders: Sequence[str]) -> None:
    """Every head's ``num_classes`` equals the number of classes of the
    data sets of ``loaders``; else a one-line CLIError naming both."""
    heads = _heads(cfg.get('model') or {})
    if not heads:
        return
    for key in loaders:
        loader = cfg.get(key)
        dataset = loader.get('dataset') if isinstance(loader, dict) else None
        while isinstance(dataset, dict) and isinstance(
                dataset.get('dataset'), dict):  # RepeatDataset and the like
            dataset = dataset['dataset']
        if not isinstance(dataset, dict):
            continue
        classes = _dataset_classes(dataset)
        if not classes:
            continue
        for where, head in heads:
            if head['num_classes'] != len(classes):
                raise CLIError(
                    f"{where}.num_classes is {head['num_classes']} but the "
                    f"data set ({key}.dataset, {dataset.get('type')}) has "
                    f'{len(classes)} classes; set num_classes='
                    f'{len(classes)} or change metainfo.classes')
