"""Synthetic, learnable datasets in COCO and Cityscapes formats.

Both generators are deterministic: every image is drawn from its own random
generator seeded by ``(seed, split, index)``, so the same seed gives the same
files whatever the number of images asked for, and the validation images do
not change when ``num_train`` does.

* :func:`generate_coco_detection` writes
  ``annotations/instances_{train,val}2017.json`` and
  ``{train,val}2017/*.jpg``: filled shapes (:data:`DET_CLASSES`) with
  solid, striped, checkered or noisy texture on gradient, noise or striped
  backgrounds, partly overlapping. Each class has its own hue band
  (jittered) besides its shape, and backgrounds are desaturated, so a small
  detector learns it in minutes. Boxes are the tight boxes of the *visible*
  pixels and ``area`` is the visible pixel count (COCO's modal convention);
  a placement that would hide more than 40% of an earlier object is retried.
* :func:`generate_cityscapes_segmentation` writes ``leftImg8bit/{train,val}/
  <city>/<name>_leftImg8bit.png`` and ``gtFine/{train,val}/<city>/
  <name>_gtFine_labelTrainIds.png`` (names as mmseg's ``CityscapesDataset``
  expects): street scenes of :data:`SEG_CLASSES` (Cityscapes train ids) with
  an ego-vehicle hood labelled 255 (ignore), like the real data set.

Command line: ``python tools/data/generate_synthetic.py coco|cityscapes
OUT_DIR [--num-train N] [--num-val N] [--size H W] [--seed S]``.
"""
import argparse
import colorsys
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    'DET_CLASSES', 'DET_PALETTE', 'SEG_CLASSES', 'CITYSCAPES_CLASSES',
    'IGNORE_INDEX', 'generate_coco_detection',
    'generate_cityscapes_segmentation', 'main'
]

DET_CLASSES = ('circle', 'square', 'triangle', 'star', 'cross')
# Hue band centre of each class (HSV hue in [0, 1)); see _object_colour.
_DET_HUES = (0.0, 0.2, 0.4, 0.6, 0.8)
DET_PALETTE = [
    tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h, 0.9, 0.9))
    for h in _DET_HUES
]

# The 19 Cityscapes training classes, indexed by train id.
CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                      'traffic light', 'traffic sign', 'vegetation',
                      'terrain', 'sky', 'person', 'rider', 'car', 'truck',
                      'bus', 'train', 'motorcycle', 'bicycle')
# Train ids the synthetic scenes use.
SEG_CLASSES = {name: CITYSCAPES_CLASSES.index(name)
               for name in ('road', 'sidewalk', 'building', 'vegetation',
                            'sky', 'person', 'car')}
IGNORE_INDEX = 255

_SPLITS = {'train': 0, 'val': 1}
_DET_TEXTURES = ('solid', 'stripes', 'checker', 'noise')
_SEG_CITIES = {'train': ('synthville', 'polyburg'), 'val': ('mockholm', )}


def _rng(seed: int, split: str, index: int,
         kind: int) -> np.random.Generator:
    """Independent generator per image (kind separates det from seg)."""
    return np.random.default_rng([seed, kind, _SPLITS[split], index])


def _check_counts(num_train: int, num_val: int, size: Sequence[int]):
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f'{name} must be an integer >= 0, got {value!r}')
    if (len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int)
                              or s < 32 for s in size)):
        raise ValueError(
            f'size must be (height, width), integers >= 32, got {size!r}')


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255


# ---------------------------------------------------------------- textures --

def _stripes(rng, h: int, w: int, period_range=(6, 16)) -> np.ndarray:
    """0/1 stripes at a random angle and period, shape (h, w)."""
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(*period_range)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    return (np.floor(phase) % 2).astype(np.float32)


def _checker(rng, h: int, w: int) -> np.ndarray:
    cell = int(rng.integers(5, 13))
    yy, xx = np.mgrid[0:h, 0:w]
    return (((yy // cell) + (xx // cell)) % 2).astype(np.float32)


def _smooth_noise(rng, h: int, w: int, cell: int) -> np.ndarray:
    """Blobby noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = Image.fromarray(
        (rng.random((gh, gw)) * 255).astype(np.uint8)).resize(
            (w + 2 * cell, h + 2 * cell), Image.BILINEAR)
    return np.asarray(grid, dtype=np.float32)[cell:cell + h,
                                              cell:cell + w] / 255


def _texture(rng, kind: str, colour: np.ndarray, h: int,
             w: int) -> np.ndarray:
    """An (h, w, 3) float image of ``colour`` with the given texture."""
    base = np.broadcast_to(colour, (h, w, 3)).astype(np.float32)
    if kind == 'solid':
        return base.copy()
    if kind in ('stripes', 'checker'):
        pattern = (_stripes(rng, h, w)
                   if kind == 'stripes' else _checker(rng, h, w))
        # A second tone of the same hue keeps the class colour cue.
        other = colour * rng.uniform(0.45, 0.7)
        return base * (1 - pattern[..., None]) + other * pattern[..., None]
    # 'noise'
    noise = rng.normal(0, 28, (h, w, 1)).astype(np.float32)
    return base + noise


def _background(rng, h: int, w: int) -> np.ndarray:
    """Desaturated gradient, blobby-noise or striped background."""
    kind = rng.choice(('gradient', 'noise', 'stripes'))
    hue = rng.random()

    def tone():
        return _hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0, 0.3),
                    rng.uniform(0.15, 0.95))

    c0, c1 = tone(), tone()
    if kind == 'gradient':
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    elif kind == 'noise':
        t = _smooth_noise(rng, h, w, int(rng.integers(8, 40)))
    else:
        t = _stripes(rng, h, w, (12, 40)) * rng.uniform(0.2, 0.6)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    return img + rng.normal(0, 6, (h, w, 1)).astype(np.float32)


# ------------------------------------------------------------------ shapes --

def _polygon(cx: float, cy: float, radii: Sequence[float],
             rotation: float) -> List[Tuple[float, float]]:
    """Vertices at equal angular steps with the given radii."""
    n = len(radii)
    return [(cx + r * np.cos(rotation + 2 * np.pi * k / n),
             cy + r * np.sin(rotation + 2 * np.pi * k / n))
            for k, r in enumerate(radii)]


def _cross(cx, cy, r, rotation):
    """A plus sign of arm half-width 0.35 r, rotated."""
    a = 0.35 * r
    pts = [(a, r), (a, a), (r, a), (r, -a), (a, -a), (a, -r), (-a, -r),
           (-a, -a), (-r, -a), (-r, a), (-a, a), (-a, r)]
    c, s = np.cos(rotation), np.sin(rotation)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def _shape_mask(name: str, cx: float, cy: float, r: float, rotation: float,
                h: int, w: int, rng) -> np.ndarray:
    canvas = Image.new('L', (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if name == 'circle':
        ry = r * rng.uniform(0.85, 1.0)
        draw.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=1)
    elif name == 'square':
        draw.polygon(_polygon(cx, cy, [r] * 4, rotation), fill=1)
    elif name == 'triangle':
        draw.polygon(_polygon(cx, cy, [r] * 3, rotation), fill=1)
    elif name == 'star':
        draw.polygon(_polygon(cx, cy, [r, 0.45 * r] * 5, rotation), fill=1)
    elif name == 'cross':
        draw.polygon(_cross(cx, cy, r, rotation), fill=1)
    else:
        raise ValueError(f'unknown shape {name!r}; allowed: {DET_CLASSES}')
    return np.asarray(canvas, dtype=bool)


def _object_colour(rng, label: int) -> np.ndarray:
    hue = _DET_HUES[label] + rng.uniform(-0.06, 0.06)
    return _hsv(hue, rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0))


def _draw_detection_image(rng, h: int, w: int, max_objects: int,
                          radius_range: Tuple[float, float]):
    """Return (uint8 image, list of (label, visible mask))."""
    img = _background(rng, h, w)
    owner = np.full((h, w), -1, dtype=np.int32)
    objects: List[Tuple[int, int]] = []  # (label, full area)
    side = min(h, w)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            label = int(rng.integers(len(DET_CLASSES)))
            r = rng.uniform(*radius_range) * side
            # Objects may reach past the border by up to 30% of the radius.
            cx = rng.uniform(0.7 * r, w - 0.7 * r)
            cy = rng.uniform(0.7 * r, h - 0.7 * r)
            mask = _shape_mask(DET_CLASSES[label], cx, cy, r,
                               rng.uniform(0, 2 * np.pi), h, w, rng)
            area = int(mask.sum())
            if area < 0.5 * (0.5 * r)**2 * np.pi:
                continue  # mostly outside the image
            # Refuse to hide more than 40% of any earlier object.
            ok = all((np.logical_and(owner == i, ~mask).sum()
                      >= 0.6 * full) for i, (_, full) in enumerate(objects))
            if ok:
                break
        else:
            continue
        texture = _DET_TEXTURES[int(rng.integers(len(_DET_TEXTURES)))]
        y0, x0 = np.argwhere(mask).min(0)
        y1, x1 = np.argwhere(mask).max(0) + 1
        patch = _texture(rng, texture, _object_colour(rng, label), y1 - y0,
                         x1 - x0)
        # Shading: a soft linear light gradient across the object.
        shade = np.linspace(rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0),
                            x1 - x0, dtype=np.float32)
        patch = patch * shade[None, :, None]
        local = mask[y0:y1, x0:x1]
        img[y0:y1, x0:x1][local] = patch[local]
        owner[mask] = len(objects)
        objects.append((label, area))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img, [(label, owner == i) for i, (label, _) in enumerate(objects)]


def generate_coco_detection(out_dir: str,
                            num_train: int = 800,
                            num_val: int = 100,
                            size: Sequence[int] = (320, 320),
                            seed: int = 0,
                            max_objects: int = 4,
                            radius_range: Tuple[float, float] = (0.08, 0.22),
                            jpeg_quality: int = 95) -> str:
    """Write a COCO-format detection data set and return its root.

    Args:
        out_dir: root to create (existing files with the same names are
            overwritten).
        num_train / num_val: number of images per split.
        size: (height, width) of every image.
        seed: the data set is a pure function of the arguments.
        max_objects: objects per image are drawn from 1..max_objects.
        radius_range: object radius as a fraction of the shorter side.
        jpeg_quality: quality of the written JPEG files.

    Layout: ``annotations/instances_train2017.json``,
    ``annotations/instances_val2017.json``, ``train2017/*.jpg``,
    ``val2017/*.jpg``; category ids start at 1 in :data:`DET_CLASSES` order.
    Configs must set ``metainfo=dict(classes=DET_CLASSES)`` (mmdet's
    ``CocoDataset`` selects categories by name).
    """
    _check_counts(num_train, num_val, size)
    if not (0 < radius_range[0] <= radius_range[1] <= 0.5):
        raise ValueError('radius_range must satisfy 0 < low <= high <= 0.5, '
                         f'got {radius_range!r}')
    h, w = int(size[0]), int(size[1])
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(DET_CLASSES)]
    for split, count in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(out_dir, f'{split}2017')
        os.makedirs(img_dir, exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            rng = _rng(seed, split, index, kind=0)
            img, objects = _draw_detection_image(rng, h, w, max_objects,
                                                 radius_range)
            image_id = index + 1
            file_name = f'{image_id:012d}.jpg'
            Image.fromarray(img).save(
                osp.join(img_dir, file_name), quality=jpeg_quality)
            images.append(dict(id=image_id, file_name=file_name, height=h,
                               width=w))
            for label, visible in objects:
                ys, xs = np.nonzero(visible)
                x0, y0 = int(xs.min()), int(ys.min())
                bw, bh = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
                annotations.append(
                    dict(id=len(annotations) + 1, image_id=image_id,
                         category_id=label + 1,
                         bbox=[float(x0), float(y0), float(bw), float(bh)],
                         area=float(visible.sum()), iscrowd=0))
        ann = dict(
            info=dict(description='mobilenet_mm synthetic shapes',
                      version='1.0', seed=seed),
            licenses=[], images=images, annotations=annotations,
            categories=categories)
        with open(osp.join(out_dir, 'annotations',
                           f'instances_{split}2017.json'), 'w') as f:
            json.dump(ann, f)
    return out_dir


# ------------------------------------------------------------ segmentation --

def _draw_street_scene(rng, h: int, w: int):
    """Return (uint8 RGB image, uint8 train-id label map)."""
    img = np.zeros((h, w, 3), np.float32)
    lab = np.full((h, w), IGNORE_INDEX, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ids = SEG_CLASSES

    def paint(mask, label, texture):
        img[mask] = texture[mask]
        lab[mask] = label

    horizon = int(h * rng.uniform(0.35, 0.5))
    # Sky: vertical blue gradient with faint clouds.
    top = _hsv(rng.uniform(0.55, 0.63), rng.uniform(0.35, 0.7), 0.95)
    low = _hsv(rng.uniform(0.55, 0.63), rng.uniform(0.1, 0.3), 0.9)
    t = (yy / max(horizon, 1)).clip(0, 1)[..., None]
    clouds = 25 * _smooth_noise(rng, h, w, 24)[..., None]
    sky = top * (1 - t) + low * t + clouds
    paint(yy < horizon, ids['sky'], sky)
    # Road: dark noisy grey below the horizon.
    road = _texture(rng, 'noise', _hsv(0, 0, rng.uniform(0.25, 0.4)), h, w)
    paint(yy >= horizon, ids['road'], road)
    # Sidewalks: lighter checkered wedges widening towards the bottom.
    walk = _texture(rng, 'checker', _hsv(0.08, 0.15, rng.uniform(0.6, 0.75)),
                    h, w)
    depth = (yy - horizon) / max(h - horizon, 1)
    for side in (0, 1):
        if rng.random() < 0.85:
            width = w * (0.05 + rng.uniform(0.2, 0.35) * depth)
            edge = xx if side == 0 else (w - 1 - xx)
            paint((yy >= horizon) & (edge < width), ids['sidewalk'], walk)
    # Buildings: rectangles standing on the horizon, with window grids.
    x = -int(rng.integers(0, 40))
    while x < w:
        bw = int(rng.integers(w // 10, w // 4))
        top_y = int(horizon * rng.uniform(0.05, 0.7))
        mask = (xx >= x) & (xx < x + bw) & (yy >= top_y) & (yy < horizon)
        if rng.random() < 0.8:
            colour = _hsv(rng.uniform(0.0, 0.12), rng.uniform(0.1, 0.45),
                          rng.uniform(0.35, 0.8))
            wall = _texture(rng, 'solid', colour, h, w)
            windows = ((xx % 14 < 6) & (yy % 18 < 8))[..., None]
            wall = np.where(windows, colour * 0.45, wall)
            paint(mask, ids['building'], wall)
        x += bw + int(rng.integers(0, w // 12))
    # Vegetation: noisy green blobs around the horizon.
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0, w), horizon - rng.uniform(0, 0.25) * h
        rx, ry = rng.uniform(0.05, 0.15) * w, rng.uniform(0.08, 0.2) * h
        mask = ((xx - cx) / rx)**2 + ((yy - cy) / ry)**2 < 1
        green = _hsv(rng.uniform(0.22, 0.38), rng.uniform(0.5, 0.9),
                     rng.uniform(0.3, 0.7))
        leaves = green * (0.6 + 0.6 * _smooth_noise(rng, h, w, 4)[..., None])
        paint(mask, ids['vegetation'], leaves)
    # Cars on the road: rounded boxes with dark wheels, size grows with depth.
    for _ in range(int(rng.integers(0, 4))):
        cy = rng.uniform(horizon + 0.15 * (h - horizon), 0.85 * h)
        scale = 0.3 + (cy - horizon) / max(h - horizon, 1)
        cw, ch = 0.22 * w * scale, 0.14 * h * scale
        cx = rng.uniform(0.15 * w, 0.85 * w)
        body = Image.new('L', (w, h), 0)
        ImageDraw.Draw(body).rounded_rectangle(
            [cx - cw / 2, cy - ch, cx + cw / 2, cy], radius=ch / 4, fill=1)
        mask = np.asarray(body, bool)
        colour = _hsv(rng.random(), rng.uniform(0.3, 1), rng.uniform(0.3, 1))
        paint(mask, ids['car'], _texture(rng, 'solid', colour, h, w))
        for wx in (cx - cw / 3, cx + cw / 3):
            wheel = ((xx - wx)**2 + (yy - cy)**2) < (ch / 4)**2
            paint(wheel, ids['car'], _texture(rng, 'solid', _hsv(0, 0, 0.08),
                                              h, w))
    # People: an elliptic body and a round head, on either side.
    for _ in range(int(rng.integers(0, 4))):
        cy = rng.uniform(horizon + 0.1 * (h - horizon), 0.8 * h)
        scale = 0.3 + (cy - horizon) / max(h - horizon, 1)
        ph = 0.3 * h * scale
        cx = rng.uniform(0, 0.2 * w) if rng.random() < 0.5 else rng.uniform(
            0.8 * w, w)
        bodym = (((xx - cx) / (0.18 * ph))**2 +
                 ((yy - (cy - 0.4 * ph)) / (0.4 * ph))**2) < 1
        head = ((xx - cx)**2 + (yy - (cy - 0.9 * ph))**2) < (0.12 * ph)**2
        cloth = _texture(rng, 'stripes',
                         _hsv(rng.random(), rng.uniform(0.5, 1), 0.8), h, w)
        paint(bodym, ids['person'], cloth)
        paint(head, ids['person'],
              _texture(rng, 'solid', _hsv(0.07, 0.4, 0.85), h, w))
    # Ego-vehicle hood at the bottom: ignored, like Cityscapes' hood.
    hood_h = rng.uniform(0.06, 0.12) * h
    hood = ((xx - w / 2) / (0.7 * w))**2 + ((yy - h) / hood_h)**2 < 1
    img[hood] = _hsv(0.6, 0.2, 0.12)
    lab[hood] = IGNORE_INDEX
    img += rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), lab


def generate_cityscapes_segmentation(out_dir: str,
                                     num_train: int = 200,
                                     num_val: int = 40,
                                     size: Sequence[int] = (256, 512),
                                     seed: int = 0) -> str:
    """Write a Cityscapes-format segmentation data set and return its root.

    Layout (what mmseg's ``CityscapesDataset`` reads with
    ``data_prefix=dict(img_path='leftImg8bit/train',
    seg_map_path='gtFine/train')``)::

        leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
        gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png

    Label maps hold Cityscapes train ids (:data:`SEG_CLASSES`) and 255 for
    the ignored ego-vehicle hood.
    """
    _check_counts(num_train, num_val, size)
    h, w = int(size[0]), int(size[1])
    for split, count in (('train', num_train), ('val', num_val)):
        cities = _SEG_CITIES[split]
        for index in range(count):
            city = cities[index % len(cities)]
            name = f'{city}_{index // len(cities):06d}_000019'
            img_dir = osp.join(out_dir, 'leftImg8bit', split, city)
            gt_dir = osp.join(out_dir, 'gtFine', split, city)
            os.makedirs(img_dir, exist_ok=True)
            os.makedirs(gt_dir, exist_ok=True)
            img, lab = _draw_street_scene(_rng(seed, split, index, kind=1), h,
                                          w)
            Image.fromarray(img).save(
                osp.join(img_dir, f'{name}_leftImg8bit.png'))
            Image.fromarray(lab).save(
                osp.join(gt_dir, f'{name}_gtFine_labelTrainIds.png'))
    return out_dir


# --------------------------------------------------------------------- CLI --

_GENERATORS = {
    'coco': (generate_coco_detection, (320, 320)),
    'cityscapes': (generate_cityscapes_segmentation, (256, 512)),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry: ``coco|cityscapes OUT_DIR [options]``."""
    parser = argparse.ArgumentParser(
        description='Generate a synthetic COCO (detection) or Cityscapes '
        '(segmentation) data set.')
    parser.add_argument('format', choices=sorted(_GENERATORS))
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=None)
    parser.add_argument('--num-val', type=int, default=None)
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                        default=None)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    fn, default_size = _GENERATORS[args.format]
    kwargs: Dict = dict(seed=args.seed,
                        size=tuple(args.size or default_size))
    if args.num_train is not None:
        kwargs['num_train'] = args.num_train
    if args.num_val is not None:
        kwargs['num_val'] = args.num_val
    try:
        root = fn(args.out_dir, **kwargs)
    except ValueError as e:
        parser.error(str(e))
    print(f'{args.format}: wrote {root}')
    return 0
