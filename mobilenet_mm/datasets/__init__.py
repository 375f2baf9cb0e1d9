"""Data sets: synthetic COCO/Cityscapes generators for tests and demos."""
from .synthetic import (CITYSCAPES_CLASSES, DET_CLASSES, DET_PALETTE,
                        IGNORE_INDEX, SEG_CLASSES,
                        generate_cityscapes_segmentation,
                        generate_coco_detection)
from .seg_transforms import LoadSegAnnotations  # noqa: F401
from .seg_datasets import (  # noqa: F401
    CityscapesSegmentation, FolderSegmentation, VOCSegmentation)
from .robust_loading import (  # noqa: F401
    ImageLoadError, RobustLoadImageFromFile, SanitizeBoxes)
from .ssd_crop import SSDIoUCrop  # noqa: F401

__all__ = [
    'CITYSCAPES_CLASSES', 'DET_CLASSES', 'DET_PALETTE', 'IGNORE_INDEX',
    'SEG_CLASSES', 'generate_cityscapes_segmentation',
    'generate_coco_detection'
]
