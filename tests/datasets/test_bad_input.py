"""Bad input, case by case: each gets one clear line or documented handling,
and nothing already written is lost (README "When things go wrong").

Images (corrupted, truncated, grayscale, RGBA, smaller than the crop) go
through ``mobilenet_mm.RobustLoadImageFromFile`` and the hosts' transforms;
boxes through mmdet's COCO parser and ``mobilenet_mm.SanitizeBoxes``; COCO
annotation files through ``mobilenet_mm.datasets.coco_checks`` (called by
``tools/train.py``); label maps through ``mobilenet_mm.LoadSegAnnotations``;
checkpoints through the safe loader on every path. NaN/inf losses:
tests/engine/test_nan_guard.py. The tools run in this process
(``run_tool_in_process``: their ``main`` under ``run_cli``, the path a
script's error takes); one training run is a subprocess, for what only a
real terminal shows.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

import mobilenet_mm  # noqa: F401
from mobilenet_mm.datasets import (ImageLoadError, RobustLoadImageFromFile,
                                   SanitizeBoxes, generate_coco_detection)

from tests.conftest import REPO, run_tool, run_tool_in_process

TRAIN = osp.join(REPO, 'tools', 'train.py')
TINY_DET = osp.join(REPO, 'tests', 'configs', 'tiny_det.py')


@pytest.fixture(scope='module', autouse=True)
def _fast_configs(fast_host_base_lookup, unformatted_config_text):
    """Configs with mmdet::/mmseg:: bases load, and runners start, in a
    fraction of the time."""



def status_and_lines(result):
    """(exit status, non-empty stderr lines) of a subprocess, or what
    ``run_tool_in_process`` returns."""
    if isinstance(result, subprocess.CompletedProcess):
        return result.returncode, [
            line for line in result.stderr.splitlines() if line.strip()]
    return result


def one_error_line(result, *fragments):
    status, lines = status_and_lines(result)
    assert status == 1, lines[-20:]
    assert not any('Traceback' in line for line in lines), lines[-40:]
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def error_line_after_training_started(result, *fragments):
    """A run that fails after it started (the runner is built, warnings and
    log lines may precede): no traceback, and the last line is the one
    error line."""
    status, lines = status_and_lines(result)
    assert status == 1, lines[-20:]
    assert not any('Traceback' in line for line in lines), lines[-40:]
    errors = [line for line in lines if ': error: ' in line]
    assert errors == lines[-1:], lines[-5:]
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    return generate_coco_detection(
        str(tmp_path_factory.mktemp('coco')), num_train=8, num_val=2,
        size=(96, 96), seed=1)


def copy_coco(coco, tmp_path):
    root = str(tmp_path / 'coco')
    shutil.copytree(coco, root)
    return root


def det_config(tmp_path, root, **dataloader):
    """tiny_det on ``root``; training images loaded by
    RobustLoadImageFromFile."""
    path = tmp_path / 'det.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = [{TINY_DET!r}]
        train_pipeline = [
            dict(type='mobilenet_mm.RobustLoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='mobilenet_mm.SanitizeBoxes'),
            dict(type='Resize', scale=(96, 96), keep_ratio=True),
            dict(type='PackDetInputs'),
        ]
        train_dataloader = dict(
            dataset=dict(data_root={root!r}, pipeline=train_pipeline),
            **{dataloader!r})
        val_dataloader = None
        val_cfg = None
        val_evaluator = None
        '''))
    return path


def image_path(root, index=0, split='train2017'):
    return osp.join(root, split, sorted(os.listdir(osp.join(root,
                                                             split)))[index])


def load_image(path, **kwargs):
    return RobustLoadImageFromFile(**kwargs)(dict(img_path=str(path)))


# -- images ------------------------------------------------------------------

def write_truncated(src, dst, keep=0.6):
    data = open(src, 'rb').read()
    with open(dst, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'empty',
                                    'missing'])
def test_bad_image_raises_naming_the_file(coco, tmp_path, damage):
    path = tmp_path / 'bad.jpg'
    if damage == 'truncated':
        write_truncated(image_path(coco), path)
    elif damage == 'garbage':
        path.write_bytes(os.urandom(2000))
    elif damage == 'empty':
        path.write_bytes(b'')
    with pytest.raises(ImageLoadError) as err:
        load_image(path)
    message = str(err.value)
    assert str(path) in message and '\n' not in message
    expected = {'truncated': 'image file is truncated',
                'garbage': 'cannot be decoded', 'empty': 'is empty',
                'missing': 'does not exist'}[damage]
    assert expected in message, message


def test_truncated_jpeg_is_caught_before_decoding(coco, tmp_path,
                                                  monkeypatch):
    # OpenCV 4 decodes a cut JPEG into a half-grey image without an error;
    # the structural check must not depend on the decoder refusing it.
    path = tmp_path / 'cut.jpg'
    write_truncated(image_path(coco), path, keep=0.9)
    import mmcv
    monkeypatch.setattr(mmcv, 'imfrombytes',
                        lambda *a, **k: np.zeros((96, 96, 3), np.uint8))
    with pytest.raises(ImageLoadError, match='JPEG data ends early'):
        load_image(path)


def test_trailing_bytes_after_a_complete_jpeg_are_fine(coco, tmp_path):
    path = tmp_path / 'trailer.jpg'
    path.write_bytes(open(image_path(coco), 'rb').read() + b'CAMERA-TRAILER')
    assert load_image(path)['img'].shape == (96, 96, 3)


def test_bad_image_skipped_with_a_warning_when_configured(coco, tmp_path):
    from mmdet.datasets import CocoDataset
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    root = copy_coco(coco, tmp_path)
    bad = image_path(root, 3)
    write_truncated(bad, bad)
    dataset = CocoDataset(
        data_root=root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        metainfo=dict(classes=('circle', 'square', 'triangle', 'star',
                               'cross')),
        pipeline=[
            dict(type='mobilenet_mm.RobustLoadImageFromFile',
                 on_error='skip'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs'),
        ])
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'] == bad)
    loader = dataset.pipeline.transforms[0]
    sample = dataset[index]  # mmengine fetches another image instead
    assert sample['data_samples'].img_path != bad
    assert loader.num_skipped >= 1
    # The transform itself returns None for the bad file, not an error.
    assert loader(dict(img_path=bad)) is None


def test_corrupted_image_in_training_is_one_line_and_keeps_checkpoints(
        coco, tmp_path, capsys):
    root = copy_coco(coco, tmp_path)
    # Worker processes: the error crosses torch's DataLoader wrapper and
    # still ends as one line, on a real terminal (the resumed run).
    cfg = det_config(tmp_path, root, num_workers=1)
    work = tmp_path / 'work'
    status, err = run_tool_in_process('train.py', [
        cfg, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2',
        'train_dataloader.num_workers=0'], capsys)
    assert status == 0, err[-20:]
    checkpoint = (work / 'iter_2.pth').read_bytes()
    marker = (work / 'last_checkpoint').read_text()
    bad = image_path(root, 5)
    with open(bad, 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0 not really a jpeg')
    proc = run_tool(TRAIN, cfg, '--work-dir', work, '--resume',
                    '--cfg-options', 'train_cfg.max_iters=8')
    error_line_after_training_started(proc, 'train.py: error: image file ',
                                      bad)
    assert (work / 'iter_2.pth').read_bytes() == checkpoint
    assert (work / 'last_checkpoint').read_text() == marker


def test_grayscale_and_rgba_become_three_channels(tmp_path):
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    from mmcv.transforms import LoadImageFromFile
    rng = np.random.default_rng(0)
    gray, rgba = tmp_path / 'gray.png', tmp_path / 'rgba.png'
    Image.fromarray(rng.integers(0, 255, (32, 48), np.uint8)).save(gray)
    pixels = rng.integers(0, 255, (32, 48, 4), np.uint8)
    Image.fromarray(pixels, 'RGBA').save(rgba)
    # Control: mmcv with color_type='unchanged' hands the model 1 or 4
    # channels.
    plain = LoadImageFromFile(color_type='unchanged')
    assert plain(dict(img_path=str(gray)))['img'].ndim == 2
    assert plain(dict(img_path=str(rgba)))['img'].shape[2] == 4
    preprocessor = DetDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1],
                                       bgr_to_rgb=True)
    for color_type in ('color', 'unchanged'):
        g = load_image(gray, color_type=color_type)['img']
        a = load_image(rgba, color_type=color_type)['img']
        assert g.shape == a.shape == (32, 48, 3)
        assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[...,
                                                                  2]).all()
        # Alpha dropped, colour kept (BGR order, as decoders give it).
        assert (a == pixels[..., [2, 1, 0]]).all()
        batch = preprocessor(
            dict(inputs=[torch.from_numpy(x).permute(2, 0, 1)
                         for x in (g, a)]), training=False)
        assert batch['inputs'].shape == (2, 3, 32, 48)


def test_image_smaller_than_the_crop_is_padded(tmp_path):
    from mmseg.datasets.transforms import PackSegInputs, RandomCrop
    from mmseg.models.data_preprocessor import SegDataPreProcessor
    from mobilenet_mm.datasets.seg_transforms import LoadSegAnnotations
    img, label = tmp_path / 'img.png', tmp_path / 'label.png'
    Image.fromarray(np.full((40, 60, 3), 100, np.uint8)).save(img)
    Image.fromarray(np.full((40, 60), 3, np.uint8)).save(label)
    results = load_image(img)
    results.update(seg_map_path=str(label), seg_fields=[],
                   reduce_zero_label=False)
    results = LoadSegAnnotations(num_classes=19)(results)
    # mmseg's crop takes the whole (smaller) image ...
    results = RandomCrop(crop_size=(64, 128))(results)
    assert results['img'].shape[:2] == results['gt_seg_map'].shape == (40,
                                                                       60)
    packed = PackSegInputs()(results)
    # ... and the data preprocessor pads image and label to the crop size;
    # the padded label area is ignore_index (255), so it adds no loss.
    batch = SegDataPreProcessor(size=(64, 128), seg_pad_val=255)(
        dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']
                                                      ]), training=True)
    assert batch['inputs'].shape == (1, 3, 64, 128)
    seg = batch['data_samples'][0].gt_sem_seg.data[0]
    assert (seg[:40, :60] == 3).all() and (seg[40:] == 255).all() and (
        seg[:, 60:] == 255).all()

    from mmdet.datasets.transforms import RandomCrop as DetRandomCrop
    from mmdet.structures.bbox import HorizontalBoxes
    det = dict(img=np.zeros((40, 60, 3), np.uint8), img_shape=(40, 60),
               gt_bboxes=HorizontalBoxes(torch.tensor([[5., 5., 30., 20.]])),
               gt_bboxes_labels=np.array([1]),
               gt_ignore_flags=np.array([False]))
    det = DetRandomCrop(crop_size=(64, 128))(det)
    assert det['img'].shape[:2] == (40, 60)
    assert det['gt_bboxes'].tensor.tolist() == [[5., 5., 30., 20.]]


# -- boxes ------------------------------------------------------------------

def test_sanitize_boxes_clips_and_drops_with_a_warning():
    from mmdet.structures.bbox import HorizontalBoxes
    boxes = torch.tensor([
        [10., 10., 30., 30.],  # fine
        [-5., 20., 20., 120.],  # reaches past the border: clipped
        [40., 40., 40., 60.],  # zero width: dropped
        [50., 50., 45., 70.],  # negative width: dropped
        [200., 10., 220., 30.],  # outside the 100x80 image: dropped
        [float('nan'), 0., 5., 5.],  # not finite: dropped
    ])
    results = dict(img_path='a.jpg', img_shape=(80, 100),
                   gt_bboxes=HorizontalBoxes(boxes),
                   gt_bboxes_labels=np.arange(6),
                   gt_ignore_flags=np.zeros(6, bool))
    transform = SanitizeBoxes()
    out = transform(results)
    assert out['gt_bboxes'].tensor.tolist() == [[10., 10., 30., 30.],
                                                [0., 20., 20., 80.]]
    assert out['gt_bboxes_labels'].tolist() == [0, 1]
    assert out['gt_ignore_flags'].tolist() == [False, False]
    assert transform.num_changed == 1
    # Plain arrays (pipelines without box types) work the same way.
    out = SanitizeBoxes()(dict(img_shape=(80, 100),
                               gt_bboxes=boxes.numpy().copy(),
                               gt_bboxes_labels=np.arange(6)))
    assert out['gt_bboxes'].tolist() == [[10., 10., 30., 30.],
                                         [0., 20., 20., 80.]]
    # Nothing to change: the same results, untouched.
    good = dict(img_shape=(80, 100), gt_bboxes=boxes[:1].numpy().copy(),
                gt_bboxes_labels=np.arange(1))
    transform = SanitizeBoxes()
    assert transform(good)['gt_bboxes'].shape == (1, 4)
    assert transform.num_changed == 0


def test_coco_parser_drops_empty_and_outside_boxes(coco, tmp_path):
    # Documented handling for COCO files: mmdet's parser drops boxes with
    # no area or no overlap with the image (silently), SanitizeBoxes clips
    # those reaching past the border and says so.
    from mmdet.datasets import CocoDataset
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    root = copy_coco(coco, tmp_path)
    ann_file = osp.join(root, 'annotations', 'instances_train2017.json')
    ann = json.load(open(ann_file))
    image = ann['images'][0]
    extra = [[10, 10, 0, 20], [200, 200, 10, 10], [80, 80, 40, 40]]
    next_id = max(a['id'] for a in ann['annotations']) + 1
    for i, box in enumerate(extra):
        ann['annotations'].append(
            dict(id=next_id + i, image_id=image['id'], category_id=1,
                 bbox=box, area=box[2] * box[3], iscrowd=0))
    json.dump(ann, open(ann_file, 'w'))
    before = sum(a['image_id'] == image['id'] for a in ann['annotations'])
    dataset = CocoDataset(
        data_root=root, ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        metainfo=dict(classes=('circle', 'square', 'triangle', 'star',
                               'cross')),
        pipeline=[dict(type='mobilenet_mm.RobustLoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='mobilenet_mm.SanitizeBoxes')])
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_id'] == image['id'])
    instances = dataset.get_data_info(index)['instances']
    assert len(instances) == before - 2  # zero width, outside: dropped
    boxes = dataset[index]['gt_bboxes'].tensor
    assert boxes[:, 0::2].max() <= 96 and boxes[:, 1::2].max() <= 96
    assert [80., 80., 96., 96.] in boxes.tolist()  # clipped


# -- annotation files (coco_checks through tools/train.py) -------------------

def _mutate(kind):

    def change(ann):
        if kind == 'negative_box':
            ann['annotations'][0]['bbox'] = [10, 10, -4, 8]
        elif kind == 'undefined_category':
            ann['annotations'][0]['category_id'] = 42
        elif kind == 'category_not_in_classes':
            ann['categories'].append(dict(id=6, name='hexagon'))
            ann['annotations'][0]['category_id'] = 6
        return ann

    return change


@pytest.mark.parametrize('kind,expected', [
    ('malformed', 'annotation file is not valid JSON'),
    ('negative_box', 'bbox [10, 10, -4, 8]'),
    ('undefined_category', 'category_id 42, which is not among its'),
    ('category_not_in_classes', "category id 6 ('hexagon') is not in the "
     "config's classes"),
])
def test_bad_annotation_file_is_one_line(coco, tmp_path, capsys, kind,
                                         expected):
    root = copy_coco(coco, tmp_path)
    ann_file = osp.join(root, 'annotations', 'instances_train2017.json')
    if kind == 'malformed':
        text = open(ann_file).read()
        open(ann_file, 'w').write(text[:len(text) // 2])
    else:
        ann = _mutate(kind)(json.load(open(ann_file)))
        json.dump(ann, open(ann_file, 'w'))
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'iter_8.pth').write_bytes(b'an earlier checkpoint')
    cfg = det_config(tmp_path, root)
    one_error_line(run_tool_in_process('train.py', [cfg, '--work-dir', work],
                                       capsys), ann_file, expected)
    assert sorted(os.listdir(work)) == ['iter_8.pth']
    assert (work / 'iter_8.pth').read_bytes() == b'an earlier checkpoint'


# -- label maps -------------------------------------------------------------

def test_label_ids_outside_the_classes_are_ignored(tmp_path):
    from mmseg.datasets.transforms import LoadAnnotations
    from mmseg.models.losses import CrossEntropyLoss
    from mobilenet_mm.datasets.seg_transforms import LoadSegAnnotations
    label = np.full((8, 8), 2, np.uint8)
    label[:2] = 30  # not one of 19 classes
    label[-1] = 255  # already ignored
    path = tmp_path / 'label.png'
    Image.fromarray(label).save(path)

    def results():
        return dict(seg_map_path=str(path), img_path='x.png',
                    ori_shape=(8, 8), seg_fields=[], reduce_zero_label=False)

    logits = torch.zeros(1, 19, 8, 8)
    loss = CrossEntropyLoss()
    # Control: mmseg's loader keeps id 30 and the loss fails on it.
    raw = LoadAnnotations()(results())['gt_seg_map']
    with pytest.raises((IndexError, RuntimeError)):
        loss(logits, torch.from_numpy(raw[None]).long(), ignore_index=255)
    fixed = LoadSegAnnotations(num_classes=19)(results())['gt_seg_map']
    assert (fixed[:2] == 255).all() and (fixed[2:-1] == 2).all()
    assert torch.isfinite(
        loss(logits, torch.from_numpy(fixed[None]).long(), ignore_index=255))


# -- checkpoints on every load path ------------------------------------------

class _Evil:
    """Unpickling it runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture(scope='module')
def evil_checkpoint(tmp_path_factory):
    """A checkpoint that runs a command when unpickled, and its marker."""
    tmp = tmp_path_factory.mktemp('evil')
    evil, marker = tmp / 'evil.pth', tmp / 'PWNED'
    torch.save({'state_dict': {'w': torch.zeros(1)},
                'meta': _Evil(marker)}, str(evil))
    assert evil.is_file() and not marker.exists()
    return evil, marker


@pytest.mark.parametrize('path_kind', ['resume', 'load_from',
                                       'convert_weights'])
def test_malicious_checkpoint_refused_on_every_tool_path(
        coco, evil_checkpoint, tmp_path, capsys, path_kind):
    # test.py, init_cfg Pretrained and mmengine's loader:
    # tests/engine/test_checkpoint_safety.py and
    # tests/tools/test_train_test_tools.py.
    evil, marker = evil_checkpoint
    cfg = det_config(tmp_path, coco)
    if path_kind == 'resume':
        result = run_tool_in_process('train.py', [
            cfg, '--work-dir', tmp_path / 'work', '--resume', evil], capsys)
    elif path_kind == 'load_from':
        result = run_tool_in_process('train.py', [
            cfg, '--work-dir', tmp_path / 'work', '--cfg-options',
            f'load_from={evil}'], capsys)
    else:
        result = run_tool_in_process('convert_weights.py', [
            evil, tmp_path / 'out.pth', '--arch', 'v2'], capsys)
    assert not marker.exists()
    assert not (tmp_path / 'out.pth').exists()
    tool = 'convert_weights' if path_kind == 'convert_weights' else \
        'train.py'
    line = one_error_line(result, f'{tool}: error: refusing to load '
                          f'checkpoint {evil}')
    assert f'{os.system.__module__}.system' in line



def test_missing_label_file_in_training_is_one_line(tmp_path, capsys):
    from mobilenet_mm.datasets import generate_cityscapes_segmentation
    root = generate_cityscapes_segmentation(
        str(tmp_path / 'cityscapes'), num_train=4, num_val=1, size=(64, 128),
        seed=1)
    label = sorted(
        os.path.join(d, f)
        for d, _, files in os.walk(osp.join(root, 'gtFine', 'train'))
        for f in files if f.endswith('_labelTrainIds.png'))[2]
    os.remove(label)
    cfg = tmp_path / 'seg.py'
    base = osp.join(REPO, 'tests', 'configs', 'tiny_seg.py')
    cfg.write_text(textwrap.dedent(f'''
        _base_ = [{base!r}]
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='mobilenet_mm.LoadSegAnnotations', num_classes=19),
            dict(type='PackSegInputs'),
        ]
        train_dataloader = dict(
            num_workers=1,
            dataset=dict(data_root={root!r}, pipeline=train_pipeline))
        val_dataloader = None
        val_cfg = None
        val_evaluator = None
        '''))
    error_line_after_training_started(
        run_tool_in_process('train.py', [cfg, '--work-dir',
                                         tmp_path / 'work'], capsys),
        'train.py: error: label file of image', label,
        'does not exist')
