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

Two more are silent: mmseg casts the decoded map to 8 bits (ids >= 256 of a
16-bit map wrap around: 256 becomes 0) and squeezes it (a 512x1 map becomes
1-D and is refused).

:class:`LoadSegAnnotations` is that transform with these cases handled:
out-of-range ids below 256 become ``ignore_index`` (logged once, naming the
file); a missing file, a size mismatch and ids that do not fit 8 bits raise
:class:`SegLabelError` with one line naming the files; 16-bit maps with ids
below 256 and maps one pixel wide are read as they are.

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

import mmcv
import numpy as np
from mmengine import fileio
from mmengine.logging import print_log
from mmseg.datasets.transforms import LoadAnnotations

from ..errors import (LabelRangeError, LabelSizeError,  # noqa: F401
                      MissingLabelError, SegLabelError)
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

    def _load_seg_map(self, results: dict) -> None:
        """What mmseg's ``_load_seg_map`` does (``reduce_zero_label``, then
        ``label_map``), without its two silent changes: the decoded
        map is not ``squeeze``d (a 512x1 map stays 2-D) and is not cast to
        8 bits before its ids are checked (a 16-bit map with an id >= 256
        would wrap around: 256 becomes 0)."""
        path = results['seg_map_path']
        data = fileio.get(path, backend_args=getattr(self, 'backend_args',
                                                     None))
        label = mmcv.imfrombytes(
            data, flag='unchanged', backend=self.imdecode_backend)
        if label.ndim == 3 and label.shape[2] == 1:
            label = label[..., 0]
        if label.dtype != np.uint8:
            if not np.issubdtype(label.dtype, np.integer):
                raise LabelRangeError(
                    f'label map {path} holds {label.dtype} values; label '
                    'maps hold integer class ids (8 or 16 bits)')
            wide = (label < 0) | (label > 255)
            if wide.any():
                raise LabelRangeError(
                    f'label map {path} ({label.dtype}) holds id '
                    f'{int(label[wide].flat[0])}; mmseg labels are 8-bit '
                    f'(0..255: {self.num_classes} classes, ignore_index '
                    f'{self.ignore_index}): remap the ids to that range')
            label = label.astype(np.uint8)
        # reduce_zero_label, then label_map (mmseg's order), as one
        # 256-entry lookup table.
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ValueError(
                f'LoadSegAnnotations: reduce_zero_label is '
                f'{self.reduce_zero_label} but the data set sets '
                f"{results['reduce_zero_label']}; set it on the data set")
        table = np.arange(256, dtype=np.uint8)
        if self.reduce_zero_label:  # 0 -> 255 (ignored), k -> k - 1
            table = np.where((table == 0) | (table == 255), 255,
                             table - 1).astype(np.uint8)
        mapping = np.arange(256, dtype=np.uint8)
        for old_id, new_id in (results.get('label_map') or {}).items():
            if 0 <= old_id < 256:
                mapping[old_id] = new_id
        results['gt_seg_map'] = mapping[table][label]
        results['seg_fields'].append('gt_seg_map')

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
