"""The synthetic COCO and Cityscapes generators."""
import filecmp
import glob
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mobilenet_mm.datasets import (DET_CLASSES, IGNORE_INDEX, SEG_CLASSES,
                                   generate_cityscapes_segmentation,
                                   generate_coco_detection)

from tests.conftest import REPO, run_tool


def load_json(root, split):
    with open(osp.join(root, 'annotations',
                       f'instances_{split}2017.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    return generate_coco_detection(
        str(tmp_path_factory.mktemp('coco')), num_train=24, num_val=6,
        size=(128, 160), seed=3)


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    return generate_cityscapes_segmentation(
        str(tmp_path_factory.mktemp('cs')), num_train=4, num_val=2,
        size=(64, 128), seed=3)


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def test_coco_structure(coco):
    for split, count in (('train', 24), ('val', 6)):
        ann = load_json(coco, split)
        assert [c['id'] for c in ann['categories']] == [1, 2, 3, 4, 5]
        assert tuple(c['name'] for c in ann['categories']) == DET_CLASSES
        assert len(ann['images']) == count
        ids = {img['id'] for img in ann['images']}
        assert len(ids) == count
        for img in ann['images']:
            path = osp.join(coco, f'{split}2017', img['file_name'])
            assert img['file_name'].endswith('.jpg')
            with Image.open(path) as im:
                assert im.size == (img['width'], img['height']) == (160, 128)
        assert len({a['id'] for a in ann['annotations']}) == len(
            ann['annotations'])
        per_image = {i: 0 for i in ids}
        for a in ann['annotations']:
            assert a['image_id'] in ids and a['iscrowd'] == 0
            assert 1 <= a['category_id'] <= len(DET_CLASSES)
            x, y, w, h = a['bbox']
            assert x >= 0 and y >= 0 and x + w <= 160 and y + h <= 128
            assert w >= 8 and h >= 8  # objects are reasonably large
            assert 0 < a['area'] <= w * h
            per_image[a['image_id']] += 1
        assert min(per_image.values()) >= 1


def test_coco_is_varied(coco):
    ann = load_json(coco, 'train')
    boxes = {}
    for a in ann['annotations']:
        boxes.setdefault(a['image_id'], []).append(a['bbox'])
    assert {a['category_id'] for a in ann['annotations']} == {1, 2, 3, 4, 5}
    assert max(len(b) for b in boxes.values()) >= 3
    overlapping = sum(
        iou(b[i], b[j]) > 0 for b in boxes.values()
        for i in range(len(b)) for j in range(i + 1, len(b)))
    assert overlapping >= 1
    # Backgrounds differ between images (not one flat colour).
    corners = [
        np.asarray(Image.open(p))[:8, :8].mean()
        for p in sorted(glob.glob(osp.join(coco, 'train2017', '*.jpg')))
    ]
    assert np.std(corners) > 10


def saturation(rgb):
    rgb = rgb.astype(np.float32)
    hi, lo = rgb.max(-1), rgb.min(-1)
    return (hi - lo) / np.maximum(hi, 1)


def test_coco_boxes_hold_the_objects(coco):
    # Objects are saturated, backgrounds are not: the centre of (nearly)
    # every box is an object pixel, and pixels outside all boxes are
    # background.
    ann = load_json(coco, 'train')
    centre_sat, outside_sat = [], []
    for img in ann['images']:
        pix = np.asarray(
            Image.open(osp.join(coco, 'train2017', img['file_name'])))
        sat = saturation(pix)
        outside = np.ones(sat.shape, bool)
        for a in ann['annotations']:
            if a['image_id'] != img['id']:
                continue
            x, y, w, h = map(int, a['bbox'])
            outside[y:y + h, x:x + w] = False
            cy, cx = y + h // 2, x + w // 2
            centre_sat.append(np.median(sat[cy - 1:cy + 2, cx - 1:cx + 2]))
        outside_sat.append(sat[outside])
    outside_sat = np.concatenate(outside_sat)
    assert np.mean(np.array(centre_sat) > 0.45) > 0.85
    assert np.mean(outside_sat < 0.45) > 0.95


def test_coco_loads_in_mmdet(coco):
    from mmdet.datasets import CocoDataset
    dataset = CocoDataset(
        data_root=coco, ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'), metainfo=dict(classes=DET_CLASSES),
        pipeline=[], test_mode=False)
    assert len(dataset) == 24
    labels = {i['bbox_label'] for d in dataset for i in d['instances']}
    assert labels == set(range(len(DET_CLASSES)))


def test_same_seed_same_data_and_val_independent_of_train(tmp_path):
    a = generate_coco_detection(str(tmp_path / 'a'), 3, 2, (64, 64), seed=5)
    b = generate_coco_detection(str(tmp_path / 'b'), 5, 2, (64, 64), seed=5)
    c = generate_coco_detection(str(tmp_path / 'c'), 3, 2, (64, 64), seed=6)
    assert load_json(a, 'val') == load_json(b, 'val')
    assert filecmp.cmp(osp.join(a, 'val2017', '000000000001.jpg'),
                       osp.join(b, 'val2017', '000000000001.jpg'),
                       shallow=False)
    assert load_json(a, 'train')['annotations'] == load_json(
        b, 'train')['annotations'][:len(load_json(a, 'train')['annotations'])]
    assert load_json(a, 'train')['annotations'] != load_json(
        c, 'train')['annotations']


def test_cityscapes_layout_and_labels(cityscapes):
    used = set(SEG_CLASSES.values())
    for split, count in (('train', 4), ('val', 2)):
        images = sorted(
            glob.glob(osp.join(cityscapes, 'leftImg8bit', split, '*',
                               '*_leftImg8bit.png')))
        assert len(images) == count
        for path in images:
            gt = path.replace(osp.join('leftImg8bit', split),
                              osp.join('gtFine', split)).replace(
                                  '_leftImg8bit.png',
                                  '_gtFine_labelTrainIds.png')
            img, lab = np.asarray(Image.open(path)), np.asarray(Image.open(gt))
            assert img.shape == (64, 128, 3) and lab.shape == (64, 128)
            values = set(np.unique(lab).tolist())
            assert IGNORE_INDEX in values  # the ego-vehicle hood
            assert values - {IGNORE_INDEX} <= used
            assert len(values - {IGNORE_INDEX}) >= 3


def test_cityscapes_loads_in_mmseg(cityscapes):
    from mmseg.datasets import CityscapesDataset
    for split, count in (('train', 4), ('val', 2)):
        dataset = CityscapesDataset(
            data_root=cityscapes,
            data_prefix=dict(img_path=f'leftImg8bit/{split}',
                             seg_map_path=f'gtFine/{split}'),
            pipeline=[])
        assert len(dataset) == count
        assert all(osp.isfile(d['seg_map_path']) for d in dataset)


def test_cli(tmp_path):
    script = osp.join(REPO, 'tools', 'data', 'generate_synthetic.py')
    out = tmp_path / 'cs'
    proc = run_tool(script, 'cityscapes', out, '--num-train', '2',
                    '--num-val', '1', '--size', '48', '96', '--seed', '2')
    assert proc.returncode == 0, proc.stderr
    assert len(glob.glob(str(out / 'gtFine' / '*' / '*' / '*.png'))) == 3
    bad = run_tool(script, 'coco', tmp_path / 'x', '--num-train', '-1')
    assert bad.returncode == 2
    assert 'num_train must be an integer >= 0, got -1' in bad.stderr
    assert 'Traceback' not in bad.stderr


@pytest.mark.parametrize('kwargs, message', [
    (dict(size=(16, 64)), 'size must be'),
    (dict(num_val=1.5), 'num_val must be'),
    (dict(radius_range=(0.3, 0.1)), 'radius_range'),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_coco_detection(str(tmp_path), **kwargs)
