"""Loading images and boxes that refuse, or clearly handle, bad input.

mmcv's ``LoadImageFromFile`` and mmdet's box handling trust the files:

* a corrupted image is an ``AssertionError`` (``failed to load image``)
  raised inside the data loader; a *truncated* JPEG is worse: OpenCV 4
  decodes what is there and fills the rest with grey, with only a libjpeg
  warning on stderr, so the model trains on half images;
* ``color_type='unchanged'`` (or ``'grayscale'``) gives 2-D or 4-channel
  arrays, which the data preprocessors cannot normalise with 3 means;
* boxes that reach past the image border or have no area after clipping are
  kept by mmdet's loaders for most formats (its COCO parser drops zero-size
  and fully outside boxes, silently).

:class:`RobustLoadImageFromFile` and :class:`SanitizeBoxes` (registered as
``mobilenet_mm.RobustLoadImageFromFile`` / ``mobilenet_mm.SanitizeBoxes``)
handle these; see their docstrings. An image that cannot be used raises
:class:`ImageLoadError`, a one-line message naming the file (the tools print
it as their error line), or, with ``on_error='skip'``, is skipped with a
warning.

:func:`image_problem` runs the same checks on one file, for the data sets
whose pipelines keep mmcv's loader (the inferencers look its name up):
``mobilenet_mm.CocoDetection`` and the segmentation data sets of
:mod:`mobilenet_mm.datasets.seg_datasets` call it when a sample fails, to
name the file.
"""
import io
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log

from ..errors import ImageLoadError
from ..registry import TRANSFORMS

ON_ERROR = ('raise', 'skip')
_JPEG_START, _JPEG_END = b'\xff\xd8\xff', b'\xff\xd9'
_PNG_START = b'\x89PNG\r\n\x1a\n'


def truncation_problem(data: bytes) -> Optional[str]:
    """Why ``data`` (a JPEG or PNG file) is cut short, else None.

    A complete JPEG ends with the EOI marker, a complete PNG with the IEND
    chunk. Some writers append bytes after them (padding, camera
    trailers), so a file that does not end that way is decoded by Pillow,
    which refuses truncated data, before it is called truncated. Other
    formats are left to the decoder.
    """
    if data.startswith(_JPEG_START):
        if data.rstrip(b'\x00\r\n\t ').endswith(_JPEG_END):
            return None
        kind = 'JPEG'
    elif data.startswith(_PNG_START):
        if b'IEND' in data[-12:]:
            return None
        kind = 'PNG'
    else:
        return None
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as e:  # noqa: B902  (OSError, SyntaxError, ...)
        return f'{kind} data ends early: {e}'
    return None


@TRANSFORMS.register_module()
class RobustLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that names bad files and always gives
    the channels the model expects.

    Use it in place of ``dict(type='LoadImageFromFile')``.

    Args:
        on_error: ``'raise'``: a missing, empty, undecodable or truncated
            image raises :class:`ImageLoadError` naming the file.
            ``'skip'``: the transform logs a warning naming the file and
            returns None; in training mmengine's ``BaseDataset`` then takes
            another random sample (its ``max_refetch`` bounds the retries).
            At test time mmengine refuses a None sample, so evaluation
            needs every image.
        channels: 3 (default) turns a grayscale image into 3 equal channels
            and drops the alpha channel of RGBA/BGRA (what OpenCV's
            ``'color'`` decoding does, also for ``color_type='unchanged'``);
            None keeps what was decoded.
        max_warnings: with ``'skip'``, log the first this many bad files.
        **kwargs: ``LoadImageFromFile``'s (``color_type``,
            ``imdecode_backend``, ``to_float32``, ``backend_args``).
            Its ``ignore_empty`` is replaced by ``on_error``.
    """

    def __init__(self,
                 on_error: str = 'raise',
                 channels: Optional[int] = 3,
                 max_warnings: int = 20,
                 **kwargs):
        if on_error not in ON_ERROR:
            raise ValueError(f'RobustLoadImageFromFile: on_error must be one '
                             f'of {ON_ERROR}, got {on_error!r}')
        if channels not in (3, None):
            raise ValueError('RobustLoadImageFromFile: channels must be 3 or '
                             f'None, got {channels!r}')
        if 'ignore_empty' in kwargs:
            raise ValueError("RobustLoadImageFromFile: use on_error='skip' "
                             'instead of ignore_empty')
        super().__init__(**kwargs)
        self.on_error = on_error
        self.channels = channels
        self.max_warnings = max_warnings
        self.num_skipped = 0

    def _read(self, filename: str) -> bytes:
        try:
            if self.file_client_args is not None:
                client = fileio.FileClient.infer_client(
                    self.file_client_args, filename)
                return client.get(filename)
            return fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError:
            raise ImageLoadError(
                f'image file does not exist: {filename}') from None

    def _decode(self, filename: str) -> np.ndarray:
        data = self._read(filename)
        if not data:
            raise ImageLoadError(f'image file is empty: {filename}')
        problem = truncation_problem(data)
        if problem:
            raise ImageLoadError(
                f'image file is truncated: {filename} ({problem})')
        try:
            img = mmcv.imfrombytes(
                data, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as e:  # noqa: B902  (each backend raises its own)
            raise ImageLoadError(f'image file cannot be decoded: {filename} '
                                 f'({type(e).__name__}: {e})') from None
        if img is None or img.size == 0:
            raise ImageLoadError(f'image file cannot be decoded: {filename} '
                                 '(corrupted or not an image)')
        return img

    def _to_channels(self, img: np.ndarray) -> np.ndarray:
        if self.channels is None:
            return img
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[2] == 1:
            return np.repeat(img, 3, axis=2)
        if img.shape[2] == 4:
            # Decoders give BGRA (mmcv's channel order); the colour is in
            # the first three.
            return np.ascontiguousarray(img[..., :3])
        return img

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            img = self._decode(filename)
        except ImageLoadError as e:
            if self.on_error == 'raise':
                raise
            self.num_skipped += 1
            if self.num_skipped <= self.max_warnings:
                more = (' (further skipped images are not logged)'
                        if self.num_skipped == self.max_warnings else '')
                print_log(f'skipping a sample: {e}{more}', logger='current',
                          level=30)
            return None
        img = self._to_channels(img)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(on_error={self.on_error!r}, '
                f'channels={self.channels}, color_type={self.color_type!r}, '
                f'imdecode_backend={self.imdecode_backend!r}, '
                f'to_float32={self.to_float32})')


def image_problem(path: str) -> Optional[str]:
    """Why the image (or label map) at ``path`` cannot be used (missing,
    empty, truncated, undecodable), as a line naming it; None if it decodes.
    The checks of :class:`RobustLoadImageFromFile`."""
    try:
        RobustLoadImageFromFile()._decode(path)
    except ImageLoadError as e:
        return str(e)
    return None


@TRANSFORMS.register_module()
class SanitizeBoxes(BaseTransform):
    """Clip ground-truth boxes to the image and drop those left too small.

    Put it right after ``LoadAnnotations`` of an mmdet pipeline
    (``dict(type='mobilenet_mm.SanitizeBoxes')``). For each box: corners
    outside the image are moved onto its border; a box that is then
    narrower or lower than ``min_size`` pixels (zero or negative size, or
    entirely outside the image), or has a NaN/inf coordinate, is dropped
    with its label and ignore flag (and mask, when there are masks). A
    warning names the image and the counts (the first ``max_warnings``
    images). Unlike mmdet's ``FilterAnnotations`` it clips, catches
    non-finite boxes and says what it changed.

    Args:
        min_size: smallest width and height, in pixels, a kept box has.
        max_warnings: images whose boxes were changed that are logged.
    """

    def __init__(self, min_size: float = 1.0, max_warnings: int = 20):
        if min_size < 0:
            raise ValueError(f'SanitizeBoxes: min_size must be >= 0, got '
                             f'{min_size}')
        self.min_size = min_size
        self.max_warnings = max_warnings
        self.num_changed = 0  # images with clipped or dropped boxes

    def transform(self, results: dict) -> dict:
        boxes = results.get('gt_bboxes')
        if boxes is None or len(boxes) == 0:
            return results
        is_array = isinstance(boxes, np.ndarray)
        xyxy = np.array(boxes if is_array else boxes.numpy(),
                        dtype=np.float64).reshape(-1, 4)
        height, width = results['img_shape'][:2]
        finite = np.isfinite(xyxy).all(axis=1)
        clipped = xyxy.copy()
        clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
        clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
        keep = finite & (clipped[:, 2] - clipped[:, 0] >= self.min_size) & (
            clipped[:, 3] - clipped[:, 1] >= self.min_size)
        moved = keep & (np.abs(clipped - xyxy) > 0).any(axis=1)
        dropped = int((~keep).sum())
        if not dropped and not moved.any():
            return results
        if is_array:
            new = clipped.astype(boxes.dtype)
        else:
            new = boxes.clone()
            new.clip_((height, width))
        results['gt_bboxes'] = new[keep]
        for key in ('gt_bboxes_labels', 'gt_ignore_flags', 'gt_masks'):
            if results.get(key) is not None:
                results[key] = results[key][keep]
        self.num_changed += 1
        if self.num_changed <= self.max_warnings:
            more = (' (further images are not logged)'
                    if self.num_changed == self.max_warnings else '')
            print_log(
                f"{results.get('img_path', 'an image')}: dropped {dropped} "
                f'box(es) of zero/negative size, outside the image or not '
                f'finite, clipped {int(moved.sum())} to the image '
                f'({width}x{height}){more}',
                logger='current',
                level=30)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(min_size={self.min_size})'
