"""Bad input, second round (issue 18): each case ends in one line naming the
file, id or argument and what is allowed, or in a warning with the counts
where the run can go on; nothing is silently wrong.

In process where the check is a function or a data set; through the tools
where the user meets it there, with inputs that fail before anything
expensive is built: in this process (``run_tool_in_process``: the tool's
``main`` under ``run_cli``, the error path a script takes), and one
subprocess per tool for what only a real terminal shows.
"""
import json
import math
import os
import os.path as osp
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from PIL import Image

import mobilenet_mm  # noqa: F401
from mobilenet_mm.datasets import (DET_CLASSES,
                                   generate_cityscapes_segmentation,
                                   generate_coco_detection)
from mobilenet_mm.datasets.coco_checks import (CocoDataError, CocoDetection,
                                               check_coco_file)
from mobilenet_mm.datasets.seg_checks import check_segmentation_num_classes
from mobilenet_mm.datasets.seg_transforms import (LabelRangeError,
                                                  LoadSegAnnotations)
from mobilenet_mm.apis import load_config
from mobilenet_mm.errors import CLIError, ImageLoadError, SegLabelError
from mobilenet_mm.utils import (CheckpointLoadError, CheckpointMismatchError,
                                find_resume_checkpoint, safe_torch_load)
from mobilenet_mm.utils.preflight import check_batch_sizes, check_work_dir
from mobilenet_mm.utils.result_checks import check_finite_state, check_metrics

from tests.conftest import REPO, TEST_CONFIGS as CONFIGS, TOOLS, run_tool
from tests.conftest import (restored_process_state, run_in_process,
                            run_tool_in_process)
TINY_DET = osp.join(CONFIGS, 'tiny_det.py')
TINY_SEG = osp.join(CONFIGS, 'tiny_seg.py')
HOST_LRASPP = osp.join(CONFIGS, 'host_lraspp.py')  # a shipped config, tiny
DEMO_DET = osp.join(REPO, 'configs', 'demo',
                    'ssdlite_mobilenetv3-large-scratch_1xb16-400iter_synthetic-shapes-160x160.py')
DEMO_SEG = osp.join(REPO, 'configs', 'demo',
                    'lraspp_mobilenetv3-large-rf2-d16_1xb8-250iter_synthetic-cityscapes-128x256.py')
CUSTOM_SEG = osp.join(REPO, 'configs', 'lraspp',
                      'lraspp_mobilenetv3-large-rf2-d16-finetune_4xb8-20k_custom-512x512.py')


@pytest.fixture(scope='module', autouse=True)
def _fast_configs(fast_host_base_lookup, unformatted_config_text):
    """Configs with mmdet::/mmseg:: bases load, and runners start, in a
    fraction of the time."""


def one_error_line(result, *fragments):
    """Exit status 1, no traceback, and the last line of stderr is the one
    error line (warnings of a build may come before it). ``result``: a
    subprocess, or (status, stderr lines) of ``run_tool_in_process``."""
    if isinstance(result, subprocess.CompletedProcess):
        status, text = result.returncode, result.stderr
        lines = [line for line in text.splitlines() if line.strip()]
    else:
        (status, lines), text = result, '\n'.join(result[1])
    assert status == 1, text[-3000:] + getattr(result, 'stdout', '')[-2000:]
    assert 'Traceback' not in text, text[-3000:]
    errors = [line for line in lines if ': error: ' in line]
    assert len(errors) == 1 and lines[-1] == errors[0], text[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def raised_one_line(info, *fragments):
    message = str(info.value)
    assert '\n' not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    return generate_coco_detection(
        str(tmp_path_factory.mktemp('coco2')), num_train=4, num_val=2,
        size=(64, 64), seed=2)


def coco_json(root, split='train'):
    return osp.join(root, 'annotations', f'instances_{split}2017.json')


def copy_coco(coco, tmp_path):
    root = str(tmp_path / 'coco')
    shutil.copytree(coco, root)
    return root


def edit_json(path, edit):
    with open(path) as f:
        data = json.load(f)
    edit(data)
    with open(path, 'w') as f:
        json.dump(data, f)
    return data


def coco_dataset(root, split='train', **overrides):
    """mobilenet_mm.CocoDetection with the demo config's pipeline."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(DEMO_DET)
    key = 'train_dataloader' if split == 'train' else 'test_dataloader'
    dataset = cfg[key].dataset
    dataset.data_root = root
    dataset.update(overrides)
    dataset.pop('type')
    dataset.pop('_scope_', None)
    return CocoDetection(**dataset)


# ---------------------------------------------- 2. duplicate COCO ids --

def test_duplicate_image_id_names_file_and_id(coco, tmp_path):
    path = coco_json(copy_coco(coco, tmp_path))
    data = edit_json(path, lambda d: d['images'][1].update(
        id=d['images'][0]['id']))
    with pytest.raises(CocoDataError) as info:
        check_coco_file(path, DET_CLASSES)
    raised_one_line(info, path, f"image id {data['images'][0]['id']} is "
                    'used twice')


def test_duplicate_annotation_id_names_file_and_id(coco, tmp_path):
    path = coco_json(copy_coco(coco, tmp_path))
    data = edit_json(path, lambda d: d['annotations'][1].update(
        id=d['annotations'][0]['id']))
    with pytest.raises(CocoDataError) as info:
        check_coco_file(path, DET_CLASSES)
    raised_one_line(info, path, f"annotation id {data['annotations'][0]['id']}"
                    ' is used twice')


# ---------------------------------------------------- 4. all iscrowd --

def test_all_crowd_file_warns_once_with_counts(coco, tmp_path):
    path = coco_json(copy_coco(coco, tmp_path))
    data = edit_json(path, lambda d: [a.update(iscrowd=1)
                                      for a in d['annotations']])
    log_file = tmp_path / 'crowd.log'
    MMLogger.get_instance('i18_crowd', log_file=str(log_file))
    check_coco_file(path, DET_CLASSES)
    check_coco_file(path, DET_CLASSES)  # the tool, then the data set
    lines = [line for line in log_file.read_text().splitlines()
             if 'iscrowd=1' in line]
    assert len(lines) == 1, lines
    n = len(data['annotations'])
    assert path in lines[0] and f'all {n} annotations' in lines[0]
    assert f"of {len(data['images'])} images" in lines[0]


def test_data_set_left_empty_by_filtering_is_one_line(coco):
    # The generated images are 64x64: min_size=100 drops every one.
    with pytest.raises(CocoDataError) as info:
        coco_dataset(coco, filter_cfg=dict(filter_empty_gt=True,
                                           min_size=100))
    raised_one_line(info, coco_json(coco), 'leaves none of its 4 images')


# ------------------------------------------------ 5. EXIF orientation --

def test_exif_rotated_image_is_refused_naming_it(coco, tmp_path):
    root = copy_coco(coco, tmp_path)
    path = coco_json(root)
    with open(path) as f:
        image = json.load(f)['images'][0]
    jpeg = osp.join(root, 'train2017', image['file_name'])
    # Stored 64 wide, 48 high, as the JSON says; EXIF 6 = rotate 90 degrees.
    picture = Image.open(jpeg).convert('RGB').resize((64, 48))
    exif = picture.getexif()
    exif[0x0112] = 6
    picture.save(jpeg, exif=exif)
    edit_json(path, lambda d: d['images'][0].update(width=64, height=48))
    dataset = coco_dataset(root, filter_cfg=None)
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'] == jpeg)
    with pytest.raises(CocoDataError) as info:
        dataset[index]
    raised_one_line(info, jpeg, 'decodes to 48x64', 'gives 64x48',
                    'EXIF orientation')
    # The other images (no EXIF tag) load.
    assert dataset[(index + 1) % len(dataset)]['inputs'].shape[0] == 3


# ---------------------------------------------- 8. 0-byte / bad image --

@pytest.mark.parametrize('split', ['train', 'test'])
@pytest.mark.parametrize('content, expected', [
    (b'', 'image file is empty'),
    (b'\x89PNG\r\n\x1a\n not a png at all', 'image file'),
])
def test_empty_or_undecodable_image_names_it(coco, tmp_path, split, content,
                                             expected):
    root = copy_coco(coco, tmp_path)
    folder = 'train2017' if split == 'train' else 'val2017'
    bad = osp.join(root, folder, sorted(os.listdir(osp.join(root,
                                                            folder)))[0])
    with open(bad, 'wb') as f:
        f.write(content)
    dataset = coco_dataset(root, split)
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'] == bad)
    with pytest.raises(CocoDataError) as info:
        dataset[index]
    raised_one_line(info, 'image cannot be loaded', expected, bad)


# ----------------------- 8. 0-byte / bad image: segmentation -------------
# The shipped seg pipelines keep mmcv's LoadImageFromFile (the inferencers
# look it up by name); their data sets (mobilenet_mm.CityscapesSegmentation,
# FolderSegmentation, VOCSegmentation) name the file instead.
BAD_CONTENT = {'empty': (b'', 'image file is empty'),
               'undecodable': (b'this is no image, whatever its name',
                               'image file cannot be decoded')}
MMSEG_TOOLS = osp.join(osp.dirname(__import__('mmseg').__file__), '.mim',
                       'tools')


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    return generate_cityscapes_segmentation(
        str(tmp_path_factory.mktemp('cs2')), num_train=2, num_val=2,
        size=(64, 128), seed=2)


def copy_cityscapes(cityscapes, tmp_path):
    root = str(tmp_path / 'cityscapes')
    shutil.copytree(cityscapes, root)
    return root


def damage_first(root, split, kind, content):
    """Overwrite the first image (or label map) of ``split``; its path."""
    folder, ending = (('leftImg8bit', '_leftImg8bit.png') if kind == 'image'
                      else ('gtFine', '_labelTrainIds.png'))
    path = sorted(
        osp.join(d, f) for d, _, files in os.walk(osp.join(root, folder,
                                                           split))
        for f in files if f.endswith(ending))[0]
    with open(path, 'wb') as f:
        f.write(content)
    return path


def seg_dataset(config, root, loader, **overrides):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    dataset = Config.fromfile(config)[loader].dataset
    dataset.update(data_root=root, **overrides)
    return DATASETS.build(dataset)


def sample_of(dataset, path):
    return next(i for i in range(len(dataset))
                if path in (dataset.get_data_info(i)['img_path'],
                            dataset.get_data_info(i)['seg_map_path']))


@pytest.mark.parametrize('content', sorted(BAD_CONTENT))
@pytest.mark.parametrize('split', ['train', 'val'])
def test_seg_data_set_names_a_bad_image(cityscapes, tmp_path, split,
                                        content):
    root = copy_cityscapes(cityscapes, tmp_path)
    data, expected = BAD_CONTENT[content]
    bad = damage_first(root, split, 'image', data)
    loader = 'train_dataloader' if split == 'train' else 'test_dataloader'
    dataset = seg_dataset(DEMO_SEG, root, loader)
    assert type(dataset).__name__ == 'CityscapesSegmentation'
    with pytest.raises(ImageLoadError) as info:
        dataset[sample_of(dataset, bad)]
    raised_one_line(info, 'image cannot be loaded', expected, bad)


@pytest.mark.parametrize('content', sorted(BAD_CONTENT))
def test_seg_data_set_names_a_bad_label_map_and_its_image(cityscapes,
                                                          tmp_path, content):
    """The custom-data config's data set (mmseg's BaseSegDataset)."""
    root = copy_cityscapes(cityscapes, tmp_path)
    data, expected = BAD_CONTENT[content]
    bad = damage_first(root, 'train', 'label', data)
    dataset = seg_dataset(
        CUSTOM_SEG, root, 'train_dataloader',
        data_prefix=dict(img_path='leftImg8bit/train',
                         seg_map_path='gtFine/train'),
        img_suffix='_leftImg8bit.png',
        seg_map_suffix='_gtFine_labelTrainIds.png')
    assert type(dataset).__name__ == 'FolderSegmentation'
    index = sample_of(dataset, bad)
    with pytest.raises(SegLabelError) as info:
        dataset[index]
    raised_one_line(info, 'label map of image '
                    f"{dataset.get_data_info(index)['img_path']} cannot be "
                    'loaded', expected, bad)


def seg_config(path, root):
    """HOST_LRASPP (the shipped LR-ASPP-V3-Small config, tiny) on ``root``."""
    path.write_text('\n'.join([
        f'_base_ = [{HOST_LRASPP!r}]',
        f'root = {root + "/"!r}',
        'train_dataloader = dict(dataset=dict(data_root=root))',
        'val_dataloader = dict(dataset=dict(data_root=root))',
        'test_dataloader = val_dataloader',
    ]) + '\n')
    return str(path)


@pytest.fixture(scope='module')
def seg_checkpoint(tmp_path_factory):
    """Weights of HOST_LRASPP's model (random), for the test tools."""
    from mobilenet_mm.analysis.model_stats import build_model_from_config
    path = tmp_path_factory.mktemp('seg_ckpt') / 'model.pth'
    torch.manual_seed(0)
    model = build_model_from_config(Config.fromfile(HOST_LRASPP))
    torch.save({'state_dict': model.state_dict()}, str(path))
    return str(path)


@pytest.mark.parametrize('tool, content', [('train.py', 'empty'),
                                           ('train.py', 'undecodable'),
                                           ('test.py', 'empty'),
                                           ('test.py', 'undecodable')])
def test_seg_tools_name_a_bad_image(cityscapes, seg_checkpoint, tmp_path,
                                    capsys, tool, content):
    root = copy_cityscapes(cityscapes, tmp_path)
    data, expected = BAD_CONTENT[content]
    bad = damage_first(root, 'train' if tool == 'train.py' else 'val',
                       'image', data)
    config = seg_config(tmp_path / 'seg.py', root)
    work = tmp_path / 'work'
    argv = [config] + ([seg_checkpoint] if tool == 'test.py' else []) + [
        '--work-dir', work]
    if content == 'undecodable':  # raised in a data loader worker
        loader = 'train' if tool == 'train.py' else 'test'
        argv += ['--cfg-options', f'{loader}_dataloader.num_workers=1']
    one_error_line(run_tool_in_process(tool, argv, capsys),
                   f'{tool}: error: image cannot be loaded', expected, bad)
    assert not list(work.rglob('*.pth'))


def test_mmseg_train_tool_names_a_bad_image(cityscapes, tmp_path):
    """mmseg's own train.py (its wheel's .mim/tools), on a terminal: a
    traceback, whose last line is our one line naming the file."""
    root = copy_cityscapes(cityscapes, tmp_path)
    data, expected = BAD_CONTENT['empty']
    bad = damage_first(root, 'train', 'image', data)
    proc = run_tool(osp.join(MMSEG_TOOLS, 'train.py'),
                    seg_config(tmp_path / 'seg.py', root), '--work-dir',
                    tmp_path / 'work', cwd=tmp_path)
    assert proc.returncode != 0
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith('mobilenet_mm.errors.ImageLoadError: image '
                           'cannot be loaded'), proc.stderr[-3000:]
    assert expected in last and bad in last, last


def test_mmseg_test_tool_names_a_bad_image(cityscapes, seg_checkpoint,
                                           tmp_path, monkeypatch):
    """mmseg's own test.py, run as its ``__main__`` in this process: the
    error it ends with (the last line of its traceback) names the file."""
    import runpy
    root = copy_cityscapes(cityscapes, tmp_path)
    data, expected = BAD_CONTENT['undecodable']
    bad = damage_first(root, 'val', 'image', data)
    tool = osp.join(MMSEG_TOOLS, 'test.py')
    monkeypatch.chdir(tmp_path)
    with restored_process_state(), pytest.raises(ImageLoadError) as info:
        sys.argv = [tool, seg_config(tmp_path / 'seg.py', root),
                    seg_checkpoint, '--work-dir', str(tmp_path / 'work')]
        runpy.run_path(tool, run_name='__main__')
    raised_one_line(info, 'image cannot be loaded', expected, bad)


# --------------------------------------------- 3. 16-bit label maps --

def label_transform():
    return LoadSegAnnotations(num_classes=19)


def load_label(path, shape):
    return label_transform()(dict(seg_map_path=str(path), img_path='x.png',
                                  ori_shape=shape, seg_fields=[],
                                  reduce_zero_label=False))['gt_seg_map']


def test_16bit_label_ids_above_255_are_refused_not_wrapped(tmp_path):
    path = tmp_path / 'label16.png'
    # mmseg casts to uint8: 259 would become 3, a valid class.
    Image.fromarray(np.array([[0, 5], [259, 1]], np.uint16)).save(path)
    with pytest.raises(LabelRangeError) as info:
        load_label(path, (2, 2))
    raised_one_line(info, str(path), 'holds id 259', '0..255')


def test_16bit_label_map_with_small_ids_is_read_as_is(tmp_path):
    path = tmp_path / 'label16.png'
    Image.fromarray(np.array([[0, 5], [18, 255]], np.uint16)).save(path)
    label = load_label(path, (2, 2))
    assert label.dtype == np.uint8
    assert label.tolist() == [[0, 5], [18, 255]]


def test_one_pixel_wide_label_map_is_accepted(tmp_path):
    path = tmp_path / 'tall.png'
    values = (np.arange(512) % 19).astype(np.uint8).reshape(512, 1)
    Image.fromarray(values).save(path)
    label = load_label(path, (512, 1))
    assert label.shape == (512, 1)
    assert np.array_equal(label, values)


def test_reduce_zero_label_and_label_map_as_mmseg_does(tmp_path):
    from mmseg.datasets.transforms import LoadAnnotations
    path = tmp_path / 'label.png'
    Image.fromarray(np.array([[0, 1, 2], [3, 254, 255]], np.uint8)).save(path)
    for reduce, label_map in ((False, {1: 2, 2: 0}), (True, {0: 5, 1: 7})):
        results = dict(seg_map_path=str(path), img_path='x.png',
                       ori_shape=(2, 3), seg_fields=[],
                       reduce_zero_label=reduce, label_map=label_map)
        ours = LoadSegAnnotations(num_classes=255)(dict(results,
                                                        seg_fields=[]))
        theirs = LoadAnnotations()(dict(results, seg_fields=[]))
        assert np.array_equal(ours['gt_seg_map'], theirs['gt_seg_map'])


# ------------------------------------ 12. segmentation num_classes --

def test_segmentation_num_classes_must_match_the_data_set():
    cfg = Config.fromfile(TINY_SEG)
    check_segmentation_num_classes(cfg, ['train_dataloader'])  # 19 == 19
    cfg.model.decode_head.num_classes = 10
    with pytest.raises(CLIError) as info:
        check_segmentation_num_classes(cfg, ['train_dataloader'])
    raised_one_line(info, 'model.decode_head.num_classes is 10',
                    'CityscapesDataset', 'has 19 classes')


# ------------------------------------ 6. NaN checkpoints, bad metrics --

def test_non_finite_checkpoint_and_metrics_are_errors():
    state = {'a.weight': torch.ones(2), 'b.weight': torch.ones(3),
             'n': torch.tensor(3)}
    check_finite_state(state, 'ok.pth')
    state['b.weight'][1] = math.nan
    with pytest.raises(CLIError) as info:
        check_finite_state(state, 'nan.pth')
    raised_one_line(info, 'nan.pth', '1 of 3 tensors', 'first: b.weight')
    check_metrics({'coco/bbox_mAP': 0.5}, 'testing x')
    with pytest.raises(CLIError, match='gave no metrics'):
        check_metrics({}, 'testing x')
    with pytest.raises(CLIError, match=r'coco/bbox_mAP=nan'):
        check_metrics({'coco/bbox_mAP': float('nan'), 'n': 3}, 'testing x')


# ------------------------ 7, 9. resume: copied dirs, garbled marker --

def small_checkpoint(path):
    torch.save({'state_dict': {'w': torch.zeros(1)}}, str(path))
    return str(path)


def test_copied_work_dir_resumes_from_its_own_copy_and_says_so(tmp_path):
    original, copy = tmp_path / 'original', tmp_path / 'copy'
    original.mkdir()
    small_checkpoint(original / 'iter_4.pth')
    (original / 'last_checkpoint').write_text(str(original / 'iter_4.pth'))
    shutil.copytree(original, copy)
    notes = []
    found = find_resume_checkpoint(str(copy), report=notes.append)
    assert found == str(copy / 'iter_4.pth')
    assert len(notes) == 1 and str(original) in notes[0] and \
        str(copy) in notes[0], notes
    # Without a copy of the file, the original is used, and named.
    os.remove(copy / 'iter_4.pth')
    notes.clear()
    assert find_resume_checkpoint(
        str(copy), report=notes.append) == str(original / 'iter_4.pth')
    assert len(notes) == 1 and f'checkpoint in {original}' in notes[0], notes


@pytest.mark.parametrize('garbage', [b'\x00' * 64, bytes(range(256))])
def test_garbled_last_checkpoint_falls_back_with_a_line(tmp_path, garbage):
    good = small_checkpoint(tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_bytes(garbage)
    notes = []
    assert find_resume_checkpoint(str(tmp_path), report=notes.append) == good
    assert len(notes) == 1 and 'holds no path' in notes[0] and \
        good in notes[0], notes


# ---------------------------------- 10. safetensors renamed to .pth --

def test_safetensors_named_pth_is_named_as_such(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / 'weights.pth'
    save_file({'w': torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointLoadError) as info:
        safe_torch_load(str(path))
    message = raised_one_line(info, str(path), 'safetensors file')
    assert 'likely succeed' not in message and 'weights_only' not in message


def test_malformed_pickle_gets_no_weights_only_advice(tmp_path):
    path = tmp_path / 'junk.pth'
    path.write_bytes(b'\x80\x02' + struct.pack('<Q', 7) + b'}q\x00garbage')
    with pytest.raises(CheckpointLoadError) as info:
        safe_torch_load(str(path))
    message = raised_one_line(info, str(path))
    assert 'likely succeed' not in message and 'weights_only' not in message


# ----------------------- 11. Pretrained init of another architecture --

def test_pretrained_init_of_another_architecture_is_one_line(tmp_path):
    from mobilenet_mm.models.backbones import MobileNetV3
    path = tmp_path / 'large.pth'
    torch.save({'state_dict': MobileNetV3(arch='large').state_dict()},
               str(path))
    small = MobileNetV3(arch='small',
                        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError) as info:
        small.init_weights()
    raised_one_line(info, str(path), 'does not fit this architecture',
                    'first:')
    with pytest.raises(ValueError, match='needs checkpoint=PATH'):
        MobileNetV3(arch='small', init_cfg=dict(type='Pretrained'))


# ------------------------------------------ 13. arguments and dirs --

WIDEN = 'widen_factor must be a positive number, at most 4.0'


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(widen_factor=float('nan')), WIDEN),
    (dict(widen_factor=float('inf')), WIDEN),
    (dict(widen_factor=1e9), WIDEN),
    (dict(drop_path_rate='0.1'), 'drop_path_rate must be in [0, 1)'),
])
def test_backbone_arguments_out_of_range(kwargs, fragment):
    from mobilenet_mm.models.backbones import MobileNetV3
    with pytest.raises(ValueError) as info:
        MobileNetV3(arch='small', **kwargs)
    raised_one_line(info, fragment)


def test_batch_size_must_be_positive():
    cfg = Config.fromfile(TINY_DET)
    check_batch_sizes(cfg, ['train_dataloader', 'val_dataloader'])
    for bad in (0, -1, 1.5, True):
        cfg.train_dataloader.batch_size = bad
        with pytest.raises(CLIError) as info:
            check_batch_sizes(cfg, ['train_dataloader'])
        raised_one_line(info, f'train_dataloader.batch_size must be an int '
                        f'>= 1, got {bad!r}')


def test_misspelt_cfg_options_key_is_refused():
    with pytest.raises(CLIError) as info:
        load_config(TINY_DET, {'train_cfg.max_iter': 2})
    raised_one_line(info, 'train_cfg.max_iter', 'did you mean '
                    'train_cfg.max_iters?')
    with pytest.raises(CLIError, match=r'did you mean train_cfg\?'):
        load_config(TINY_DET, {'trian_cfg.max_iters': 2})
    # Existing keys and new keys unlike any existing one are fine.
    cfg = load_config(TINY_DET, {'train_cfg.max_iters': 2,
                                 'model.backbone.frozen_stages': 1,
                                 'randomness.deterministic': True})
    assert cfg.train_cfg.max_iters == 2
    assert cfg.model.backbone.frozen_stages == 1


def test_work_dir_that_is_a_file_or_read_only(tmp_path):
    work_file = tmp_path / 'work'
    work_file.write_text('')
    with pytest.raises(CLIError, match='is a file, not a directory'):
        check_work_dir(str(work_file))
    check_work_dir(str(tmp_path / 'new' / 'nested'))  # can be created


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody can create files in: mode 555, and for root
    (whom the mode does not stop) the immutable attribute as well."""
    path = tmp_path / 'ro'
    path.mkdir()
    os.chmod(path, 0o555)
    immutable = os.geteuid() == 0
    if immutable:
        subprocess.run(['chattr', '+i', str(path)], check=True)
    yield str(path)
    if immutable:
        subprocess.run(['chattr', '-i', str(path)], check=True)
    os.chmod(path, 0o755)


def test_read_only_work_dir_is_one_line_before_building(read_only_dir,
                                                        capsys):
    with pytest.raises(OSError):  # the condition the check is about
        open(osp.join(read_only_dir, 'probe'), 'w').close()
    result = run_tool_in_process('train.py', [TINY_DET, '--work-dir',
                                              read_only_dir], capsys)
    one_error_line(result, f'work dir {read_only_dir} is not writable')
    assert os.listdir(read_only_dir) == []


# ------------------------------------------- 6, 13. tools/test.py --

@pytest.fixture(scope='module')
def det_test_setup(coco, tmp_path_factory):
    """A tiny_det config on the generated data and a checkpoint of its
    (randomly initialised) model."""
    from mobilenet_mm.analysis.model_stats import build_model_from_config
    tmp = tmp_path_factory.mktemp('det_test')
    config = tmp / 'det.py'
    config.write_text('\n'.join([
        f'_base_ = [{TINY_DET!r}]',
        f'root = {coco + "/"!r}',
        'test_dataloader = dict(dataset=dict(data_root=root))',
        "test_evaluator = dict(ann_file=root + "
        "'annotations/instances_val2017.json')",
    ]) + '\n')
    torch.manual_seed(0)
    model = build_model_from_config(Config.fromfile(str(config)))
    checkpoint = tmp / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, str(checkpoint))
    return str(config), str(checkpoint), tmp


def test_test_tool_refuses_a_nan_checkpoint_before_testing(det_test_setup):
    config, checkpoint, tmp = det_test_setup
    state = torch.load(checkpoint)['state_dict']
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key][0] = math.nan
    nan_checkpoint = tmp / 'nan.pth'
    torch.save({'state_dict': state}, str(nan_checkpoint))
    proc = run_tool(osp.join(TOOLS, 'test.py'), config, nan_checkpoint,
                    '--work-dir', tmp / 'work_nan')
    one_error_line(proc, str(nan_checkpoint), 'NaN or infinite',
                   f'first: {key}')
    assert 'Epoch(test)' not in proc.stdout + proc.stderr  # not evaluated


def test_test_tool_exits_non_zero_on_empty_metrics(det_test_setup, capsys):
    config, checkpoint, tmp = det_test_setup
    # No box passes score_thr: mmdet only logs "results ... empty".
    result = run_tool_in_process('test.py', [
        config, checkpoint, '--work-dir', tmp / 'work_empty',
        '--cfg-options', 'model.test_cfg.score_thr=1.01'], capsys)
    one_error_line(result, f'testing {checkpoint} gave no metrics')


def test_test_tool_checks_out_before_evaluating(det_test_setup, capsys):
    config, checkpoint, tmp = det_test_setup
    out_dir = tmp / 'predictions.pkl'
    out_dir.mkdir()
    result = run_tool_in_process('test.py', [
        config, checkpoint, '--work-dir', tmp / 'work_out', '--out',
        out_dir], capsys)
    one_error_line(result, f'--out {out_dir} is a directory')
    assert not (tmp / 'work_out').exists()  # nothing was built or run


# ------------------------------ 13. export, model_stats, convert --

@pytest.fixture(scope='module')
def two_stage_config(tmp_path_factory):
    path = tmp_path_factory.mktemp('frcnn') / 'faster_rcnn.py'
    path.write_text(
        "_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']\n"
        'model = dict(backbone=dict(depth=18, init_cfg=None), '
        'neck=dict(in_channels=[64, 128, 256, 512]))\n')
    return str(path)


def test_export_and_count_refuse_unsupported_models(two_stage_config,
                                                    tmp_path, capsys):
    proc = run_tool(osp.join(TOOLS, 'deploy', 'export_onnx.py'),
                    two_stage_config, '--no-verify', '--out',
                    tmp_path / 'x.onnx')
    one_error_line(proc, 'export_onnx.py: error: ONNX export supports '
                   'single-stage detectors', 'not FasterRCNN')
    result = run_tool_in_process(osp.join('analysis', 'model_stats.py'),
                                 [two_stage_config], capsys)
    one_error_line(result, 'counting supports single-stage detectors',
                   'not FasterRCNN')


def test_psp_head_export_is_one_line(tmp_path, capsys):
    config = tmp_path / 'psp.py'
    config.write_text(
        f'_base_ = [{TINY_SEG!r}]\n'
        "model = dict(decode_head=dict(_delete_=True, type='PSPHead', "
        'in_channels=24, channels=16, num_classes=19, '
        'pool_scales=(1, 2, 3, 6)))\n')
    result = run_tool_in_process(osp.join('deploy', 'export_onnx.py'), [
        config, '--no-verify', '--out', tmp_path / 'psp.onnx'], capsys)
    one_error_line(result, 'torch cannot export EncoderDecoder (PSPHead)',
                   'adaptive_avg_pool2d')
    assert not (tmp_path / 'psp.onnx').exists()


def test_bad_arguments_of_export_and_model_stats(capsys):
    from mobilenet_mm.deploy.onnx_export import max_opset
    result = run_tool_in_process(osp.join('deploy', 'export_onnx.py'), [
        TINY_DET, '--opset', max_opset() + 1], capsys)
    one_error_line(result, f'at most {max_opset()}', f'got {max_opset() + 1}')
    # argparse's usage error (status 2): on a terminal once, then in process.
    proc = run_tool(osp.join(TOOLS, 'analysis', 'model_stats.py'), '--arch',
                    'v3_small', '--resolution', '0')
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(
        '--resolution must be >= 32, got 0'), proc.stderr
    with pytest.raises(SystemExit) as info:
        run_tool_in_process(osp.join('analysis', 'model_stats.py'), [
            TINY_DET, '--shape', '64', '-5'], capsys)
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        '--shape H W must both be >= 32, got 64 -5')


def test_convert_weights_on_a_list(tmp_path):
    src = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], str(src))
    proc = run_tool(osp.join(TOOLS, 'convert_weights.py'), src,
                    tmp_path / 'out.pth', '--arch', 'v3_small')
    one_error_line(proc, f'{src} holds a list, not a state dict')
    assert not (tmp_path / 'out.pth').exists()


# -------------------------------------- the general rule: run_cli --

def crash(log):
    """A tool's main that fails unexpectedly; with ``log``, after a runner
    would have made its logger (with a log file), else before any logger
    exists."""

    def main(argv):
        MMLogger._instance_dict.clear()  # run_in_process restores them
        if log:
            MMLogger.get_instance('crash_test', log_file=str(log))
        {}['missing key']

    return main


@pytest.mark.parametrize('with_run_log', [False, True])
def test_unexpected_error_is_one_line_with_traceback_file(tmp_path, capsys,
                                                          with_run_log):
    log = tmp_path / 'run.log' if with_run_log else None
    result = run_in_process(crash(log), [], capsys, 'crash.py')
    assert 'crash_test' not in MMLogger._instance_dict  # nothing leaks
    line = one_error_line(result, "crash.py: error: unexpected KeyError: "
                          "'missing key'", 'full traceback: ')
    path = line.rsplit('full traceback: ', 1)[1].rstrip(')')
    if with_run_log:
        assert path == str(log)
    text = open(path).read()
    assert 'Traceback (most recent call last)' in text and \
        "KeyError: 'missing key'" in text
    if not with_run_log:
        assert 'crash.py-traceback-' in path  # a temporary file
        os.remove(path)
