"""SSD's IoU random crop with the semantics of the SSDLite references.

mmdet's ``MinIoURandomCrop`` rejects a crop when *any* box overlaps it less
than the sampled IoU (``overlaps.min() < min_iou``). The references accept a
crop when *one* box reaches it: torchvision ``transforms.v2.RandomIoUCrop``
(``ious.max() < min_jaccard_overlap`` rejects) used by its "ssdlite" preset
(``references/detection/presets.py``), and TF object_detection's
``ssd_random_crop`` (``min_object_covered`` of ``sample_distorted_bounding_
box``, any box). On COCO-like images (about 7 boxes) mmdet's rule crops
about half as often and keeps much more of the image (REFERENCE.md
section 6; ``tests/datasets/test_ssd_crop.py`` compares the statistics with
torchvision's).

:class:`SSDIoUCrop` (``mobilenet_mm.SSDIoUCrop``) samples as torchvision
does: an option among ``min_ious`` (1.0 = leave the image as is), then up to
``trials`` crops whose sides are ``scale_range`` of the image's, with
aspect ratio (width / height) in ``aspect_range``, at a uniform position.
A crop is kept when the centre of at least one box lies inside it and one of
those boxes has IoU >= the option with it; boxes whose centre is outside
are dropped, the others clipped to the crop.
"""
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from ..registry import TRANSFORMS

# torchvision RandomIoUCrop's defaults (SSD paper's sampler, caffe ssd_coco.py)
REFERENCE_MIN_IOUS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
# Rounds of (option, trials) before leaving the image as is: torchvision
# loops until it draws 1.0 (which leaves it as is too); with 1.0 among 7
# options 100 rounds all miss it with p = (6/7)^100 < 1e-6, so the cap only
# matters for option lists without 1.0 on images no crop can satisfy
# (torchvision would loop forever there).
_MAX_ROUNDS = 100


def _iou_with(boxes: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """IoU of each (x1, y1, x2, y2) box with one patch."""
    x1 = np.maximum(boxes[:, 0], patch[0])
    y1 = np.maximum(boxes[:, 1], patch[1])
    x2 = np.minimum(boxes[:, 2], patch[2])
    y2 = np.minimum(boxes[:, 3], patch[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    patch_area = (patch[2] - patch[0]) * (patch[3] - patch[1])
    return inter / np.maximum(area + patch_area - inter, 1e-12)


@TRANSFORMS.register_module()
class SSDIoUCrop(BaseTransform):
    """IoU random crop of SSD as torchvision's ``RandomIoUCrop`` does it.

    Use it in place of mmdet's ``MinIoURandomCrop`` (see the module
    docstring for the difference).

    Args:
        min_ious: the options sampled uniformly; >= 1 leaves the image
            unchanged.
        scale_range: (min, max) fraction of the image's width and of its
            height (sampled independently) a crop has.
        aspect_range: (min, max) width / height of a crop.
        trials: crops tried per sampled option.

    Required keys: ``img``, ``gt_bboxes``. Modified: ``img``, ``img_shape``,
    ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``, ``gt_masks``,
    ``gt_seg_map`` (those present). An image without boxes is left as is
    (torchvision never crops one either: no crop contains a box centre).
    """

    def __init__(self,
                 min_ious: Sequence[float] = REFERENCE_MIN_IOUS,
                 scale_range: Tuple[float, float] = (0.3, 1.0),
                 aspect_range: Tuple[float, float] = (0.5, 2.0),
                 trials: int = 40) -> None:
        min_ious = tuple(float(v) for v in min_ious)
        if not min_ious or any(not 0 <= v for v in min_ious):
            raise ValueError('SSDIoUCrop: min_ious must be a non-empty list '
                             f'of values >= 0, got {min_ious!r}')
        if not (len(scale_range) == 2 and
                0 < scale_range[0] <= scale_range[1] <= 1):
            raise ValueError('SSDIoUCrop: scale_range must be (min, max) '
                             f'with 0 < min <= max <= 1, got {scale_range!r}')
        if not (len(aspect_range) == 2 and
                0 < aspect_range[0] <= aspect_range[1]):
            raise ValueError('SSDIoUCrop: aspect_range must be (min, max) '
                             f'with 0 < min <= max, got {aspect_range!r}')
        if isinstance(trials, bool) or not isinstance(trials,
                                                      int) or trials < 1:
            raise ValueError(
                f'SSDIoUCrop: trials must be an integer >= 1, got {trials!r}')
        self.min_ious = min_ious
        self.scale_range = tuple(scale_range)
        self.aspect_range = tuple(aspect_range)
        self.trials = trials

    def sample_patch(self, boxes: np.ndarray, height: int, width: int):
        """(patch x1, y1, x2, y2 and the mask of kept boxes), or None for
        no crop. ``boxes``: (N, 4) x1, y1, x2, y2."""
        if len(boxes) == 0:
            return None
        cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
        cy = 0.5 * (boxes[:, 1] + boxes[:, 3])
        low, high = self.scale_range
        for _ in range(_MAX_ROUNDS):
            min_iou = self.min_ious[np.random.randint(len(self.min_ious))]
            if min_iou >= 1.0:
                return None
            for _ in range(self.trials):
                scale = low + (high - low) * np.random.rand(2)
                new_w, new_h = int(width * scale[0]), int(height * scale[1])
                if new_h == 0 or not (self.aspect_range[0] <= new_w / new_h
                                      <= self.aspect_range[1]):
                    continue
                offset = np.random.rand(2)
                left = int((width - new_w) * offset[0])
                top = int((height - new_h) * offset[1])
                right, bottom = left + new_w, top + new_h
                if left == right or top == bottom:
                    continue
                inside = (left < cx) & (cx < right) & (top < cy) & (cy <
                                                                   bottom)
                if not inside.any():
                    continue
                patch = np.array([left, top, right, bottom], dtype=np.float32)
                if _iou_with(boxes[inside], patch).max() < min_iou:
                    continue
                return patch.astype(np.int64), inside
        return None

    def transform(self, results: dict) -> dict:
        boxes = results['gt_bboxes']
        # HorizontalBoxes (mmdet >= 3) or an (N, 4) array
        array = boxes.numpy() if hasattr(boxes, 'numpy') else np.asarray(
            boxes, dtype=np.float32)
        img = results['img']
        sampled = self.sample_patch(array.reshape(-1, 4), *img.shape[:2])
        if sampled is None:
            return results
        (left, top, right, bottom), inside = sampled
        results['img'] = img[top:bottom, left:right]
        results['img_shape'] = results['img'].shape[:2]
        kept = boxes[inside]
        if hasattr(kept, 'translate_'):
            kept.translate_([-left, -top])
            kept.clip_([bottom - top, right - left])
        else:
            kept = kept - np.array([left, top, left, top], dtype=kept.dtype)
            kept[:, 0::2] = kept[:, 0::2].clip(0, right - left)
            kept[:, 1::2] = kept[:, 1::2].clip(0, bottom - top)
        results['gt_bboxes'] = kept
        for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
            if results.get(key) is not None:
                results[key] = results[key][inside]
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'][inside.nonzero()[0]] \
                .crop(np.array([left, top, right, bottom]))
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = results['gt_seg_map'][top:bottom,
                                                          left:right]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_ious={self.min_ious}, '
                f'scale_range={self.scale_range}, '
                f'aspect_range={self.aspect_range}, trials={self.trials})')
