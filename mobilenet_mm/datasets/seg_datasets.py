"""mmseg's data sets that name a bad image or label map.

The shipped segmentation pipelines start with mmcv's ``LoadImageFromFile``
(``MMSegInferencer`` and ``mmseg.apis.inference_model`` find the loader by
that exact name, so it stays). A 0-byte or undecodable image then fails
inside it with OpenCV's ``cv2.error`` (OpenCV 5: ``!buf.empty()``; 4: an
``AssertionError``), and an undecodable label map the same way inside the
label loader: neither names the file. These data sets catch the failure of
a sample, find the file with :func:`~.robust_loading.image_problem` (the
check ``mobilenet_mm.CocoDetection`` uses) and raise one line naming it:
:class:`~mobilenet_mm.errors.ImageLoadError` for the image,
:class:`~mobilenet_mm.errors.SegLabelError` (naming the image too) for its
label map. Errors that already name their file (``LoadSegAnnotations``'s)
pass unchanged.

Registered as ``mobilenet_mm.CityscapesSegmentation`` (mmseg's
``CityscapesDataset``), ``mobilenet_mm.VOCSegmentation``
(``PascalVOCDataset``) and ``mobilenet_mm.FolderSegmentation``
(``BaseSegDataset``: images and label maps in two folders); they take the
same arguments and read the same samples.
"""
from mmseg.datasets import BaseSegDataset, CityscapesDataset, PascalVOCDataset

from ..errors import ImageLoadError, SegLabelError, UserError
from ..registry import DATASETS
from .robust_loading import image_problem


class NamesBadFiles:
    """Mixin for an mmengine data set: a sample whose image or label map
    cannot be decoded raises a one-line error naming that file."""

    def prepare_data(self, idx: int):
        try:
            return super().prepare_data(idx)
        except UserError:
            raise  # already names its file
        except Exception:  # noqa: B902  (cv2.error, AssertionError, OSError)
            info = self.get_data_info(idx)
            image = info.get('img_path')
            problem = image_problem(image) if image else None
            if problem:
                raise ImageLoadError(
                    f'image cannot be loaded: {problem}') from None
            label = info.get('seg_map_path')
            problem = image_problem(label) if label else None
            if problem:
                raise SegLabelError(f'label map of image {image} cannot be '
                                    f'loaded: {problem}') from None
            raise


@DATASETS.register_module()
class CityscapesSegmentation(NamesBadFiles, CityscapesDataset):
    """mmseg's ``CityscapesDataset`` naming a bad image or label map."""


@DATASETS.register_module()
class VOCSegmentation(NamesBadFiles, PascalVOCDataset):
    """mmseg's ``PascalVOCDataset`` naming a bad image or label map."""


@DATASETS.register_module()
class FolderSegmentation(NamesBadFiles, BaseSegDataset):
    """mmseg's ``BaseSegDataset`` naming a bad image or label map."""
