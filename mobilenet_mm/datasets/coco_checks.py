"""Checks of COCO-format detection data that end in one clear line.

mmdet reads a COCO annotation file with pycocotools and quietly copes with
what it does not expect: an annotation whose ``category_id`` is not in the
config's class list is dropped, a class count that differs from the head's
``num_classes`` is an ``AssertionError`` deep in a hook (or none at all), an
empty or malformed file is a ``JSONDecodeError`` traceback, and an image that
does not decode is an ``AssertionError`` inside a data loader worker. Here
each of these is a :class:`CocoDataError` whose message is one line naming
the file, the id or the config key.

* :func:`check_coco_file`: the annotation file itself (JSON, structure,
  category ids, boxes) and, given the config's class list, that every
  annotated category is one of those classes.
* :func:`check_num_classes`: the head's ``num_classes`` against the class
  list of the data set a config trains on.
* :func:`check_detection_config`: both, for every data set of a config,
  before anything is built (what ``tools/`` call).
* :class:`CocoDetection` (``mobilenet_mm.CocoDetection``): mmdet's
  ``CocoDataset`` that runs :func:`check_coco_file` when it loads its
  annotations and names an image that fails to load.
* :class:`ClassCountCheckHook` (``mobilenet_mm.ClassCountCheckHook``): the
  class-count check at run time, for configs run by any tool.

:class:`CocoDataError` is a :class:`~mobilenet_mm.errors.UserError`, so the
command-line tools print it as their one-line error.
"""
import json
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmdet.datasets import CocoDataset
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..errors import CocoDataError
from ..registry import DATASETS, HOOKS
from .robust_loading import image_problem

# mmdet's CocoDataset classes when a config gives no metainfo.
_DEFAULT_CLASSES = CocoDataset.METAINFO['classes']


def _describe_ids(ids: Sequence[int]) -> str:
    ids = sorted(ids)
    if len(ids) > 8:
        return f'{len(ids)} ids, {ids[0]}..{ids[-1]}'
    return ', '.join(str(i) for i in ids)


def _load_json(ann_file: str) -> dict:
    if not osp.isfile(ann_file):
        raise CocoDataError(f'annotation file does not exist: {ann_file}')
    with open(ann_file, 'rb') as f:
        raw = f.read()
    if not raw.strip():
        raise CocoDataError(f'annotation file is empty: {ann_file}')
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = (f'line {e.lineno} column {e.colno}: {e.msg}' if isinstance(
            e, json.JSONDecodeError) else str(e))
        raise CocoDataError(
            f'annotation file is not valid JSON: {ann_file} ({where})'
        ) from None
    if not isinstance(data, dict):
        raise CocoDataError(
            f'annotation file {ann_file} holds a JSON {type(data).__name__}, '
            "not an object with 'images', 'annotations' and 'categories'")
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            raise CocoDataError(
                f"annotation file {ann_file} has no '{key}' list "
                '(COCO detection format)')
    return data


def _check_entries(data: dict, ann_file: str) -> Dict[int, str]:
    """Ids and fields of categories, images and annotations; returns the
    category names by id."""
    categories: Dict[int, str] = {}
    for cat in data['categories']:
        if not isinstance(cat, dict) or not isinstance(
                cat.get('id'), int) or not isinstance(cat.get('name'), str):
            raise CocoDataError(
                f'annotation file {ann_file}: category {cat!r} needs an '
                "integer 'id' and a string 'name'")
        if cat['id'] in categories:
            raise CocoDataError(f'annotation file {ann_file}: category id '
                                f"{cat['id']} is defined twice")
        categories[cat['id']] = cat['name']
    if not categories:
        raise CocoDataError(
            f'annotation file {ann_file} defines no categories')
    image_ids = set()
    for img in data['images']:
        if not isinstance(img, dict) or not isinstance(
                img.get('id'), int) or not isinstance(
                    img.get('file_name'), str):
            raise CocoDataError(
                f'annotation file {ann_file}: image {img!r} needs an integer '
                "'id' and a string 'file_name'")
        if img['id'] in image_ids:
            # pycocotools keeps the last image of an id and hangs the boxes
            # of both on it: one image and its boxes silently go wrong.
            raise CocoDataError(
                f"annotation file {ann_file}: image id {img['id']} is used "
                f"twice (second time for {img['file_name']!r}); image ids "
                'must be unique')
        image_ids.add(img['id'])
    ann_ids = set()
    for ann in data['annotations']:
        if not isinstance(ann, dict):
            raise CocoDataError(f'annotation file {ann_file}: annotation '
                                f'{ann!r} is not an object')
        ann_id = ann.get('id', '?')
        if isinstance(ann.get('id'), (int, str)):
            if ann_id in ann_ids:  # mmdet asserts unique annotation ids
                raise CocoDataError(
                    f'annotation file {ann_file}: annotation id {ann_id} is '
                    'used twice; annotation ids must be unique')
            ann_ids.add(ann_id)
        cat_id = ann.get('category_id')
        if cat_id not in categories:
            raise CocoDataError(
                f'annotation file {ann_file}: annotation {ann_id} has '
                f'category_id {cat_id!r}, which is not among its categories '
                f'({_describe_ids(categories)})')
        if ann.get('image_id') not in image_ids:
            raise CocoDataError(
                f'annotation file {ann_file}: annotation {ann_id} has '
                f"image_id {ann.get('image_id')!r}, which is not among its "
                'images')
        box = ann.get('bbox')
        if not (isinstance(box, list) and len(box) == 4 and all(
                isinstance(v, (int, float)) for v in box)) or min(
                    box[2:]) < 0:
            raise CocoDataError(
                f'annotation file {ann_file}: annotation {ann_id} has bbox '
                f'{box!r}; expected [x, y, width, height] with width, '
                'height >= 0')
    return categories


def check_coco_file(ann_file: str,
                    classes: Optional[Sequence[str]] = None) -> dict:
    """Validate a COCO detection annotation file; return a summary.

    Args:
        ann_file: path of the JSON file.
        classes: the config's class names (``metainfo.classes``). mmdet keeps
            the categories with these names and drops every other
            annotation; here a config class missing from the file, or an
            annotated category that is not a config class, is an error.

    Returns:
        ``dict(num_images, num_annotations, categories={id: name})``.

    Raises:
        CocoDataError: one line naming the file and the bad entry.
    """
    data = _load_json(ann_file)
    categories = _check_entries(data, ann_file)
    if classes is not None:
        classes = tuple(classes)
        names = set(categories.values())
        missing = [c for c in classes if c not in names]
        if missing:
            raise CocoDataError(
                f'annotation file {ann_file} has no category named '
                f'{", ".join(map(repr, missing))} (config classes: '
                f'{len(classes)}, file categories: {len(categories)})')
        used = {ann['category_id'] for ann in data['annotations']}
        outside = sorted(i for i in used if categories[i] not in classes)
        if outside:
            listed = ', '.join(f'{i} ({categories[i]!r})'
                               for i in outside[:5])
            raise CocoDataError(
                f'annotation file {ann_file}: category id {listed} is not in '
                f"the config's classes; its annotations would be dropped "
                '(add the class to metainfo.classes or remove them)')
    _warn_if_all_crowd(data, ann_file)
    return dict(
        num_images=len(data['images']),
        num_annotations=len(data['annotations']),
        categories=categories)


_warned_all_crowd = set()


def _warn_if_all_crowd(data: dict, ann_file: str) -> None:
    """Warn once per file when every annotation is ``iscrowd=1``: mmdet
    ignores crowd boxes in training (``gt_ignore_flags``) and COCO
    evaluation, so such a file trains at loss 0 and evaluates to -1."""
    annotations = data['annotations']
    crowd = sum(1 for ann in annotations if ann.get('iscrowd'))
    if not annotations or crowd < len(annotations):
        return
    key = osp.realpath(ann_file)
    if key in _warned_all_crowd:
        return
    _warned_all_crowd.add(key)
    print_log(
        f'annotation file {ann_file}: all {crowd} annotations (on '
        f"{len({a.get('image_id') for a in annotations})} of "
        f"{len(data['images'])} images) have iscrowd=1, which mmdet "
        'ignores: there is nothing to train on or evaluate (set iscrowd=0 '
        'for the objects to learn)',
        logger='current',
        level=logging.WARNING)


def _dataset_classes(dataset: dict) -> Sequence[str]:
    metainfo = dataset.get('metainfo') or {}
    return tuple(metainfo.get('classes') or _DEFAULT_CLASSES)


def _head_num_classes(model: dict) -> List[tuple]:
    """(config key, num_classes) of every head of a detector config."""
    found = []
    for key in ('bbox_head', 'roi_head.bbox_head', 'roi_head.mask_head'):
        node = model
        for part in key.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        heads = node if isinstance(node, (list, tuple)) else [node]
        for i, head in enumerate(heads):
            if isinstance(head, dict) and 'num_classes' in head:
                where = f'model.{key}' + (f'[{i}]' if len(heads) > 1 else '')
                found.append((where, head['num_classes']))
    return found


def check_num_classes(cfg, loader_key: str = 'train_dataloader') -> None:
    """The head's ``num_classes`` must equal the number of classes of the
    data set in ``cfg[loader_key]`` (mmdet's COCO 80 when it sets none)."""
    loader = cfg.get(loader_key)
    dataset = loader.get('dataset') if isinstance(loader, dict) else None
    while isinstance(dataset, dict) and isinstance(
            dataset.get('dataset'), dict):  # RepeatDataset and the like
        dataset = dataset['dataset']
    if not isinstance(dataset, dict):
        return
    classes = _dataset_classes(dataset)
    for where, num_classes in _head_num_classes(cfg.get('model') or {}):
        if num_classes != len(classes):
            raise CocoDataError(
                f'{where}.num_classes is {num_classes} but the data set '
                f'({loader_key}.dataset) has {len(classes)} classes; set '
                f'num_classes={len(classes)} or change metainfo.classes')


def check_detection_config(cfg,
                           loaders: Sequence[str] = ('train_dataloader',
                                                     'val_dataloader',
                                                     'test_dataloader')
                           ) -> None:
    """Run the checks for every COCO-format data set of a detection config:
    annotation files (with the config's classes) and the head's class count.
    Paths are resolved as mmengine does (``data_root`` + ``ann_file``)."""
    for key in loaders:
        loader = cfg.get(key)
        dataset = loader.get('dataset') if isinstance(loader, dict) else None
        while isinstance(dataset, dict) and isinstance(
                dataset.get('dataset'), dict):
            dataset = dataset['dataset']
        if not isinstance(dataset, dict) or not dataset.get('ann_file'):
            continue
        if 'Coco' not in str(dataset.get('type', '')):
            continue
        ann_file = dataset['ann_file']
        root = dataset.get('data_root')
        if root and not osp.isabs(ann_file):
            ann_file = osp.join(root, ann_file)
        check_coco_file(ann_file, _dataset_classes(dataset))
        check_num_classes(cfg, key)


@DATASETS.register_module()
class CocoDetection(CocoDataset):
    """mmdet's ``CocoDataset`` with the checks of this module.

    Registered as ``mobilenet_mm.CocoDetection``. On loading it runs
    :func:`check_coco_file` with its classes. Preparing a sample raises a
    :class:`CocoDataError` naming the file

    * instead of mmcv's ``AssertionError`` or OpenCV's ``cv2.error`` when its
      image does not exist, is empty or does not decode;
    * when the image decodes to another size than the annotation file's
      ``width`` x ``height``: its boxes would not line up. OpenCV applies a
      JPEG's EXIF orientation when decoding, so a photo whose EXIF tag
      rotates it by 90 degrees is refused unless the file's ``width`` and
      ``height`` are those of the rotated image (what the boxes then
      assume). A rotation that keeps the size (180 degrees, or any on a
      square image) cannot be seen from the size and is not caught.

    A data set left with no image after ``filter_cfg`` is refused when it is
    built. The checks read the JSON once more than pycocotools does (a few
    seconds for COCO train2017).
    """

    def load_data_list(self) -> List[dict]:
        check_coco_file(self.ann_file, self.metainfo['classes'])
        return super().load_data_list()

    def filter_data(self) -> List[dict]:
        kept = super().filter_data()
        if self.data_list and not kept:
            raise CocoDataError(
                f'annotation file {self.ann_file}: filter_cfg='
                f'{self.filter_cfg} leaves none of its {len(self.data_list)} '
                'images (filter_empty_gt drops images without a non-crowd '
                'box, min_size smaller ones); the data set would be empty')
        return kept

    def prepare_data(self, idx: int):
        try:
            data = super().prepare_data(idx)
        except Exception:  # noqa: B902  (OSError, AssertionError, cv2.error)
            path = self.get_data_info(idx)['img_path']
            problem = image_problem(path)
            if problem:
                raise CocoDataError(f'image cannot be loaded: {problem} '
                                    f'(listed in {self.ann_file})') from None
            raise
        if data is not None:
            self._check_size(idx, data)
        return data

    def _check_size(self, idx: int, data: dict) -> None:
        info = self.get_data_info(idx)
        sample = data.get('data_samples')
        decoded = getattr(sample, 'ori_shape', None) if sample is not None \
            else None
        if decoded is None or 'height' not in info or 'width' not in info:
            return
        height, width = decoded[:2]
        if (height, width) == (info['height'], info['width']):
            return
        hint = (' (its EXIF orientation rotates it; the boxes assume the '
                'stored orientation)' if (width, height) == (
                    info['height'], info['width']) else '')
        raise CocoDataError(
            f"image {info['img_path']} decodes to {width}x{height} but "
            f"{self.ann_file} gives {info['width']}x{info['height']} "
            f'(width x height){hint}; its boxes would not line up: fix the '
            'width/height (and boxes) in the annotation file or the image')


@HOOKS.register_module()
class ClassCountCheckHook(Hook):
    """Before training, validation and testing: every head's
    ``num_classes`` must equal the number of classes of the data set the
    loop runs on; otherwise a :class:`CocoDataError` naming both.

    Registered as ``mobilenet_mm.ClassCountCheckHook``. mmdet's
    ``NumClassCheckHook`` checks the same with an ``assert`` (a traceback).
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _check(runner, loader, loop: str) -> None:
        dataset = getattr(loader, 'dataset', None)
        while hasattr(dataset, 'dataset'):  # RepeatDataset and the like
            dataset = dataset.dataset
        classes = getattr(dataset, 'metainfo', {}).get('classes')
        if classes is None:
            return
        model = runner.model.module if hasattr(runner.model,
                                               'module') else runner.model
        for name, module in model.named_modules():
            num_classes = getattr(module, 'num_classes', None)
            if not name or not isinstance(num_classes, int) or \
                    name.endswith('rpn_head'):
                continue
            if num_classes != len(classes):
                raise CocoDataError(
                    f'model.{name}.num_classes is {num_classes} but the '
                    f'{loop} data set has {len(classes)} classes; set '
                    f'num_classes={len(classes)} or change metainfo.classes')

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_dataloader, 'train')

    def before_val(self, runner) -> None:
        self._check(runner, runner.val_dataloader, 'val')

    def before_test(self, runner) -> None:
        self._check(runner, runner.test_dataloader, 'test')
