"""Checks of a config's data paths and annotation files, run by the tools
before anything is built: a missing root, annotation file or image folder
is one :class:`~mobilenet_mm.errors.CLIError` naming the path and the
config key."""
import os.path as osp
from typing import Optional, Sequence

from ..errors import CLIError

__all__ = ['is_remote', 'check_data_paths', 'check_detection_data']


def is_remote(path: str) -> bool:
    return '://' in path


def _join_root(root: Optional[str], path: str) -> str:
    # What mmengine's BaseDataset does: relative paths hang off data_root.
    if root and not osp.isabs(path) and not is_remote(path):
        return osp.join(root, path)
    return path


def _check_dataset(dataset, where: str) -> None:
    if not isinstance(dataset, dict):
        return
    # Dataset wrappers (RepeatDataset, ConcatDataset, ...) hold the real ones.
    if isinstance(dataset.get('dataset'), dict):
        _check_dataset(dataset['dataset'], f'{where}.dataset')
    if isinstance(dataset.get('datasets'), (list, tuple)):
        for i, sub in enumerate(dataset['datasets']):
            _check_dataset(sub, f'{where}.datasets[{i}]')
    backend = (dataset.get('backend_args') or {}).get('backend', 'local')
    if backend not in ('local', 'disk'):
        return  # remote storage: nothing to check on this disk
    root = dataset.get('data_root')
    if isinstance(root, str) and root and not is_remote(root):
        if not osp.isdir(root):
            raise CLIError(
                f'dataset root does not exist: {root} ({where}.data_root)')
    ann_file = dataset.get('ann_file')
    if isinstance(ann_file, str) and ann_file:
        path = _join_root(root, ann_file)
        if not is_remote(path) and not osp.exists(path):
            raise CLIError(
                f'annotation file does not exist: {path} ({where}.ann_file)')
    prefixes = dataset.get('data_prefix')
    if isinstance(prefixes, dict):
        for key, value in prefixes.items():
            if not isinstance(value, str) or not value:
                continue
            path = _join_root(root, value)
            if not is_remote(path) and not osp.exists(path):
                raise CLIError(f'dataset folder does not exist: {path} '
                               f'({where}.data_prefix.{key})')


def check_data_paths(cfg, loaders: Sequence[str],
                     evaluators: Sequence[str] = ()) -> None:
    """Check ``data_root``, ``ann_file`` and ``data_prefix`` of the
    datasets in the given dataloaders, and ``ann_file`` of the evaluators,
    before anything is built."""
    for key in loaders:
        loader = cfg.get(key)
        if isinstance(loader, dict):
            _check_dataset(loader.get('dataset'), f'{key}.dataset')
    for key in evaluators:
        evaluator = cfg.get(key)
        metrics = evaluator if isinstance(evaluator, (list, tuple)) else [
            evaluator
        ]
        for i, metric in enumerate(metrics):
            if not isinstance(metric, dict):
                continue
            ann_file = metric.get('ann_file')
            if (isinstance(ann_file, str) and ann_file
                    and not is_remote(ann_file)
                    and not osp.exists(ann_file)):
                where = key if len(metrics) == 1 else f'{key}[{i}]'
                raise CLIError(f'annotation file does not exist: {ann_file}'
                               f' ({where}.ann_file)')


def check_detection_data(cfg, loaders: Sequence[str]) -> None:
    """COCO-format annotation files of the given dataloaders (valid JSON,
    known category and image ids, boxes with width and height >= 0, every
    annotated category among the config's classes) and the head's
    ``num_classes``: :func:`mobilenet_mm.datasets.coco_checks.
    check_detection_config`, whose errors are one-line CLIErrors."""
    from .coco_checks import check_detection_config
    check_detection_config(cfg, loaders)
