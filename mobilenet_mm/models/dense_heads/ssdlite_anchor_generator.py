"""SSD anchors in the layout of TF's ``create_ssd_anchors``, used by SSDLite.

Facts from TF object_detection (``multiple_grid_anchor_generator.py``, the
SSDLite sample configs): six maps; scales spread linearly from ``min_scale``
(0.2) to ``max_scale`` (0.95); on every map but the first one box per
aspect ratio {1, 2, 1/2, 3, 1/3} at that scale plus a square box at the
geometric mean of this scale and the next (1.0 after the last), six boxes;
the first map has three boxes: (0.1, 1), (0.2, 2), (0.2, 1/2). Scales are
fractions of the shorter image side. A map of ``n`` cells places its
centres at ``(i + 0.5) / n`` of the image, whatever the conv arithmetic.

``layout='torchvision'`` gives the boxes of torchvision's
``DefaultBoxGenerator`` (``detection/anchor_utils.py``, used by its
``ssdlite320_mobilenet_v3_large``) instead: the same six boxes on every map,
in its order (the square box, the interpolated square box, then the other
ratios), sizes as fractions of each image side, and with ``clip_sizes``
widths and heights clipped to the image (its ``clip=True``).

mmdet's ``SSDAnchorGenerator`` has a different layout (four or six boxes,
every ratio at two scales, sizes rounded to integers), hence this class.
"""
import math
from typing import List, Sequence, Tuple, Union

import torch
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from torch import Tensor

from ...registry import TASK_UTILS

TF_ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
LAYOUTS = ('tf', 'torchvision')


def ssdlite_map_sizes(input_size: int, first_stride: int = 16,
                      num_levels: int = 6) -> List[int]:
    """Side of each SSDLite map for an input side: the backbone's stride-16
    map, then halving with 'same' padding (320 -> 20, 10, 5, 3, 2, 1)."""
    sizes = [math.ceil(input_size / first_stride)]
    while len(sizes) < num_levels:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


@TASK_UTILS.register_module()
class SSDLiteAnchorGenerator(AnchorGenerator):
    """TF-layout SSD anchors for a fixed input size (SSDLite resizes every
    image to it).

    Registered as ``mobilenet_mm.SSDLiteAnchorGenerator``.

    Args:
        input_size: side of the (square) network input, or ``(h, w)``.
        num_levels: number of maps (six in SSDLite).
        first_stride: output stride of the first map (16: the backbone's
            expansion tap).
        min_scale / max_scale: anchor scale of the first and the last map,
            as a fraction of the shorter input side.
        aspect_ratios: width / height of the boxes of every map but the
            first.
        reduce_first_level: TF's ``reduce_boxes_in_lowest_layer``: three
            boxes on the first map (``layout='tf'`` only).
        layout: ``'tf'`` (TF's box order, sizes as fractions of the shorter
            side) or ``'torchvision'`` (``DefaultBoxGenerator``'s order: the
            first ratio's box, the interpolated square box, the other
            ratios; sizes as fractions of each side).
        clip_sizes: clip box widths and heights to the image size
            (torchvision's ``clip=True``; with scale 0.95 the 2:1 box of the
            last map would be 1.34 image widths wide).
    """

    def __init__(self,
                 input_size: Union[int, Sequence[int]] = 320,
                 num_levels: int = 6,
                 first_stride: int = 16,
                 min_scale: float = 0.2,
                 max_scale: float = 0.95,
                 aspect_ratios: Sequence[float] = TF_ASPECT_RATIOS,
                 reduce_first_level: bool = True,
                 layout: str = 'tf',
                 clip_sizes: bool = False) -> None:
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        self.input_size = tuple(int(s) for s in input_size)
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError('SSDLiteAnchorGenerator: input_size must be a '
                             f'positive side or (h, w), got {input_size!r}')
        if num_levels < 2:
            raise ValueError('SSDLiteAnchorGenerator: num_levels must be at '
                             f'least 2, got {num_levels}')
        if not 0 < min_scale <= max_scale:
            raise ValueError('SSDLiteAnchorGenerator: need 0 < min_scale <= '
                             f'max_scale, got {min_scale}, {max_scale}')
        if layout not in LAYOUTS:
            raise ValueError(f'SSDLiteAnchorGenerator: layout {layout!r}; '
                             f'allowed: {LAYOUTS}')
        if layout == 'torchvision' and reduce_first_level:
            raise ValueError(
                "SSDLiteAnchorGenerator: layout='torchvision' has six boxes "
                'on every map; set reduce_first_level=False')
        self.layout, self.clip_sizes = layout, bool(clip_sizes)
        height, width = self.input_size
        self.map_sizes = list(zip(
            ssdlite_map_sizes(height, first_stride, num_levels),
            ssdlite_map_sizes(width, first_stride, num_levels)))
        self.box_specs = self._box_specs(num_levels, min_scale, max_scale,
                                         tuple(aspect_ratios),
                                         reduce_first_level, layout)
        self.min_scale, self.max_scale = min_scale, max_scale
        # One cell of an n-cell map spans 1/n of the image: float strides,
        # with centres at half a cell (mmdet's default centre).
        strides = [(width / w, height / h) for h, w in self.map_sizes]
        super().__init__(strides=strides, ratios=[1.0], scales=[1.0],
                         base_sizes=[min(self.input_size)] * num_levels)

    @staticmethod
    def _box_specs(num_levels, min_scale, max_scale, aspect_ratios,
                   reduce_first_level,
                   layout) -> List[List[Tuple[float, float]]]:
        """(scale, width/height) of each box of each map, in the layout's
        order."""
        scales = [min_scale + (max_scale - min_scale) * i / (num_levels - 1)
                  for i in range(num_levels)] + [1.0]
        specs = []
        for level in range(num_levels):
            scale, next_scale = scales[level], scales[level + 1]
            if level == 0 and reduce_first_level:
                specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
                continue
            level_specs = [(scale, ratio) for ratio in aspect_ratios]
            interpolated = (math.sqrt(scale * next_scale), 1.0)
            level_specs.insert(1 if layout == 'torchvision' else
                               len(level_specs), interpolated)
            specs.append(level_specs)
        return specs

    def gen_base_anchors(self) -> List[Tensor]:
        """Boxes of one cell of each map, ``(x1, y1, x2, y2)`` around the
        cell centre."""
        height, width = (float(s) for s in self.input_size)
        if self.layout == 'tf':
            height = width = min(height, width)
        anchors = []
        for (stride_w, stride_h), specs in zip(self.strides, self.box_specs):
            cx, cy = stride_w / 2, stride_h / 2
            boxes = []
            for scale, ratio in specs:
                w = scale * math.sqrt(ratio)
                h = scale / math.sqrt(ratio)
                if self.clip_sizes:
                    w, h = min(w, 1.0), min(h, 1.0)
                w, h = w * width, h * height
                boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            anchors.append(torch.tensor(boxes, dtype=torch.float32))
        return anchors

    def grid_priors(self, featmap_sizes: List[Tuple], *args,
                    **kwargs) -> List[Tensor]:
        """As mmdet's, after checking that the maps have the sizes this
        generator laid anchors out for."""
        got = [tuple(int(s) for s in size) for size in featmap_sizes]
        if got != self.map_sizes:
            # Anchors of another input size would be misplaced silently.
            raise ValueError(
                f'SSDLiteAnchorGenerator: feature maps are {got}, anchors '
                f'were laid out for input_size={self.input_size} (maps '
                f'{self.map_sizes}); resize inputs to input_size or set '
                'anchor_generator.input_size to the resize scale')
        return super().grid_priors(featmap_sizes, *args, **kwargs)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(input_size={self.input_size}, '
                f'map_sizes={self.map_sizes}, '
                f'boxes_per_map={self.num_base_priors}, '
                f'min_scale={self.min_scale}, max_scale={self.max_scale}, '
                f'layout={self.layout!r}, clip_sizes={self.clip_sizes})')
