"""COCO image-info files (test-dev): images to predict, no annotations.

COCO test-dev2017, the split of the [V2]/[V3] detection tables, ships only
``image_info_test-dev2017.json`` (``images`` and ``categories``); results are
scored by the evaluation server. ``mobilenet_mm.CocoDetection`` refuses such
a file (it checks the annotations), so :class:`CocoImageInfo`
(``mobilenet_mm.CocoImageInfo``) reads it instead, with the same one-line
errors for bad files. Pair it with mmdet's ``CocoMetric(format_only=True,
outfile_prefix=...)``, which writes ``<prefix>.bbox.json`` for the server
without scoring (configs/ssdlite_v3_coco_testdev.py).
"""
import json
import os.path as osp
from typing import List, Optional, Sequence

from mmdet.datasets import CocoDataset

from ..registry import DATASETS
from .coco_checks import CocoDataError, CocoDetection, _check_entries


def check_image_info_file(ann_file: str,
                          classes: Optional[Sequence[str]] = None) -> dict:
    """Validate an image-info file (``images`` and ``categories`` lists;
    ``annotations``, if any, are ignored); return ``dict(num_images,
    categories)``. Raises :class:`CocoDataError` with one line."""
    if not osp.isfile(ann_file):
        raise CocoDataError(f'image info file does not exist: {ann_file}')
    try:
        with open(ann_file, 'rb') as f:
            data = json.loads(f.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CocoDataError(
            f'image info file is not valid JSON: {ann_file} ({e})') from None
    if not isinstance(data, dict):
        raise CocoDataError(f'image info file {ann_file} holds a JSON '
                            f"{type(data).__name__}, not an object with "
                            "'images' and 'categories'")
    for key in ('images', 'categories'):
        if not isinstance(data.get(key), list):
            raise CocoDataError(f"image info file {ann_file} has no '{key}' "
                                'list (COCO image_info format)')
    categories = _check_entries(dict(data, annotations=[]), ann_file)
    if classes is not None:
        missing = [c for c in classes if c not in set(categories.values())]
        if missing:
            raise CocoDataError(
                f'image info file {ann_file} has no category named '
                f'{", ".join(map(repr, missing[:5]))} (config classes: '
                f'{len(classes)}, file categories: {len(categories)})')
    return dict(num_images=len(data['images']), categories=categories)


@DATASETS.register_module()
class CocoImageInfo(CocoDetection):
    """The images of a COCO image-info file, for ``format_only`` testing.

    Every image is kept (``test_mode``); samples carry no boxes, so the test
    pipeline needs no ``LoadAnnotations``.
    """

    def __init__(self, *args, **kwargs):
        if not kwargs.get('test_mode', False):
            raise CocoDataError(
                'CocoImageInfo has no annotations to train on: use it for '
                'testing (test_mode=True) with a format_only CocoMetric')
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        check_image_info_file(self.ann_file, self.metainfo['classes'])
        return CocoDataset.load_data_list(self)
