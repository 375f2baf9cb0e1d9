"""Loading segmentation labels that tolerate, or clearly refuse, bad input.

mmseg's ``LoadAnnotations`` trusts its input. Three kinds of bad label
files then fail far from their cause:

* ids outside the classes (a user's map with more classes than the config,
  or stray values such as 19..254 in a 19-class set): the cross-entropy loss
  crashes ("Target 30 is out of bounds") on the CPU, or fails on a
  device-side assert on the GPU; in validation they count as false positives
  of whatever the model predicts there;
* a label map whose size differs from its image: the crop takes different
  regions of the two, and the batch fails to stack, or trains on misaligned
  labels when the sizes happen to agree after resizing;
* a missing label file: a worker traceback from the file backend.

:class:`LoadSegAnnotations` is that transform with the three cases handled:
out-of-range ids become ``ignore_index`` (logged once, naming the file), and
the other two raise :class:`SegLabelError` with one line naming the files.

Inference: mmseg's ``MMSegInferencer`` and ``inference_model`` drop only
transforms named exactly ``LoadAnnotations`` from the test pipeline, and
their inputs are bare images without ``seg_map_path``. A sample without
``seg_map_path`` passes unchanged here *only if* it does not come from a data
set: every sample of an mmengine data set carries ``sample_idx``
(``BaseDataset.get_data_info``), the inferencers' inputs never do. So a
training or evaluation sample without a label file is still an error (a
data set with no ``data_prefix.seg_map_path``), never a silently unlabelled
sample.
"""
import os.path as osp

import numpy as np
from mmengine.logging import print_log
from mmseg.datasets.transforms import LoadAnnotations

from ..errors import (LabelSizeError, MissingLabelError,  # noqa: F401
                      SegLabelError)
from ..registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` plus checks of the label file.

    Use it in place of ``dict(type='LoadAnnotations')``, after
    ``LoadImageFromFile`` (train and test pipelines alike; the size is
    compared with the image as loaded, ``ori_shape``, so a ``Resize`` in
    between is fine).

    Args:
        num_classes: ids ``>= num_classes`` (after the data set's own
            ``label_map``/``reduce_zero_label``) become ``ignore_index``.
        ignore_index: the id the loss and the metric ignore (mmseg: 255).
        **kwargs: ``LoadAnnotations``'s (``imdecode_backend``,
            ``backend_args``).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(
                num_classes, int) or num_classes < 1:
            raise ValueError('LoadSegAnnotations: num_classes must be a '
                             f'positive int, got {num_classes!r}')
        if not 0 <= ignore_index <= 255 or ignore_index < num_classes:
            raise ValueError(
                'LoadSegAnnotations: ignore_index must be in '
                f'[num_classes, 255] (labels are uint8), got {ignore_index!r}'
                f' with num_classes={num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._warned = False

    def transform(self, results: dict) -> dict:
        image = results.get('img_path', '?')
        if 'seg_map_path' not in results:
            if 'sample_idx' not in results:
                return results  # an inference input: no label to load
            raise MissingLabelError(
                f'image {image} has no label file (seg_map_path): its data '
                'set lists none; set data_prefix.seg_map_path to the label '
                'folder')
        path = results['seg_map_path']
        is_local = '://' not in str(path)
        if is_local and not osp.isfile(path):
            raise MissingLabelError(
                f'label file of image {image} does not exist: {path}')
        results = super().transform(results)
        label = results['gt_seg_map']
        expected = tuple(results.get('ori_shape', label.shape)[:2])
        if label.ndim != 2 or label.shape != expected:
            got = 'x'.join(str(s) for s in label.shape)
            raise LabelSizeError(
                f'label map {path} is {got} but its image {image} is '
                f'{expected[0]}x{expected[1]} (labels must be single-channel '
                'maps of the image size)')
        out_of_range = (label >= self.num_classes) & (label !=
                                                      self.ignore_index)
        if out_of_range.any():
            if not self._warned:
                values = np.unique(label[out_of_range])
                print_log(
                    f'{path}: label ids {values.tolist()[:10]} are not among '
                    f'the {self.num_classes} classes; they are ignored '
                    f'(set to {self.ignore_index}). Further files with such '
                    'ids are not logged.',
                    logger='current', level=30)
                self._warned = True
            label = label.copy()
            label[out_of_range] = self.ignore_index
            results['gt_seg_map'] = label
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, '
                f'imdecode_backend={self.imdecode_backend!r})')
