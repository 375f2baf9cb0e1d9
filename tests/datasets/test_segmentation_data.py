"""Bad segmentation labels: ids outside the classes are ignored (never a
crash), a label map of the wrong size or a missing label file stops with one
line naming the file. Run through the pipelines of the real configs."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mobilenet_mm.datasets import generate_cityscapes_segmentation
from mobilenet_mm.datasets.seg_transforms import (LabelSizeError,
                                                  LoadSegAnnotations,
                                                  MissingLabelError,
                                                  SegLabelError)

CONFIG = ('configs/lraspp/lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_'
          'cityscapes-769x769.py')


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cityscapes'))
    return generate_cityscapes_segmentation(root, num_train=3, num_val=1,
                                            size=(64, 128), seed=3)


def label_files(root, split='train'):
    return sorted(glob.glob(osp.join(root, 'gtFine', split, '*',
                                     '*_labelTrainIds.png')))


def build_dataset(root, pipeline_key='train_pipeline', config=CONFIG):
    """The config's own data set and pipeline, on ``root``."""
    import mobilenet_mm.datasets.seg_transforms  # noqa: F401
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(config)
    loader = 'train_dataloader' if pipeline_key == 'train_pipeline' else \
        'val_dataloader'
    dataset = cfg[loader].dataset
    dataset.data_root = root
    dataset.pipeline = cfg[pipeline_key]
    return DATASETS.build(dataset)


def load(path, img_shape, **kwargs):
    transform = LoadSegAnnotations(**kwargs)
    return transform(dict(seg_map_path=path, img_path='x.png',
                          ori_shape=img_shape, seg_fields=[],
                          reduce_zero_label=False))


def write_label(path, array):
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def test_ids_outside_the_classes_become_ignore(tmp_path):
    path = str(tmp_path / 'label.png')
    write_label(path, [[0, 1, 18, 19], [30, 254, 255, 2]])
    out = load(path, (2, 4), num_classes=19)
    assert out['gt_seg_map'].tolist() == [[0, 1, 18, 255], [255, 255, 255, 2]]


def test_the_first_file_with_bad_ids_is_logged_once(tmp_path, monkeypatch):
    import mobilenet_mm.datasets.seg_transforms as module
    messages = []
    monkeypatch.setattr(module, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    transform = LoadSegAnnotations(num_classes=19)
    paths = []
    for i in range(2):
        paths.append(str(tmp_path / f'l{i}.png'))
        write_label(paths[-1], [[0, 40], [1, 2]])
        transform(dict(seg_map_path=paths[-1], img_path='i.png',
                       ori_shape=(2, 2), seg_fields=[],
                       reduce_zero_label=False))
    assert len(messages) == 1
    assert paths[0] in messages[0] and '[40]' in messages[0]


def test_mmseg_loss_crashes_on_such_ids_and_our_pipeline_avoids_it(
        cityscapes, tmp_path):
    """The reason for the transform: mmseg's cross-entropy indexes with the
    label, and a label >= num_classes (other than 255) is an error."""
    from mmseg.models.losses import CrossEntropyLoss
    loss = CrossEntropyLoss(avg_non_ignore=True)
    logits = torch.randn(1, 19, 2, 2)
    bad = torch.tensor([[[0, 30], [255, 1]]])
    with pytest.raises((IndexError, RuntimeError)):
        loss(logits, bad, ignore_index=255)

    # A copy of the data set whose labels contain 19..254: the config's
    # train pipeline turns them into 255 and the loss is finite.
    import shutil
    root = str(tmp_path / 'bad_ids')
    shutil.copytree(cityscapes, root)
    for path in label_files(root):
        label = np.array(Image.open(path))
        label[::4] = 30  # in every crop
        label[2::4, ::2] = 200
        write_label(path, label)
    dataset = build_dataset(root)
    sample = dataset[0]['data_samples']
    seg = sample.gt_sem_seg.data
    assert not ((seg >= 19) & (seg != 255)).any()
    assert (seg == 255).any()
    loss_value = loss(torch.randn(1, 19, *seg.shape[-2:]), seg.long(),
                      ignore_index=255)
    assert torch.isfinite(loss_value)


def test_label_of_another_size_names_both_files(cityscapes, tmp_path):
    import shutil
    root = str(tmp_path / 'bad_size')
    shutil.copytree(cityscapes, root)
    path = label_files(root)[0]
    write_label(path, np.zeros((32, 64)))
    dataset = build_dataset(root)
    index = [i for i in range(len(dataset))
             if dataset.get_data_info(i)['seg_map_path'] == path][0]
    with pytest.raises(LabelSizeError) as info:
        dataset[index]
    message = str(info.value)
    assert '\n' not in message
    assert path in message and '32x64' in message and '64x128' in message
    assert dataset.get_data_info(index)['img_path'] in message


def test_colour_label_maps_are_refused(tmp_path):
    path = str(tmp_path / 'rgb.png')
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path)
    with pytest.raises(LabelSizeError, match='4x6x3'):
        load(path, (4, 6), num_classes=19)


def test_missing_label_file_names_it(cityscapes, tmp_path):
    import os
    import shutil
    root = str(tmp_path / 'missing')
    shutil.copytree(cityscapes, root)
    path = label_files(root, 'val')[0]
    os.remove(path)
    dataset = build_dataset(root, 'test_pipeline')
    with pytest.raises(MissingLabelError) as info:
        dataset[0]
    message = str(info.value)
    assert '\n' not in message and path in message
    assert isinstance(info.value, (FileNotFoundError, SegLabelError))


def test_test_pipeline_resizes_the_image_before_loading_the_label(
        cityscapes):
    # The size check uses the image as loaded, not after Resize.
    dataset = build_dataset(cityscapes, 'test_pipeline')
    cfg = Config.fromfile(CONFIG)
    assert [s['type'] for s in cfg.test_pipeline][1:3] == [
        'Resize', 'mobilenet_mm.LoadSegAnnotations']
    data = dataset[0]
    assert data['data_samples'].gt_sem_seg.data.shape[-2:] == (64, 128)


@pytest.mark.parametrize('kwargs', [
    dict(num_classes=0), dict(num_classes=19, ignore_index=10),
    dict(num_classes=True)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        LoadSegAnnotations(**kwargs)


@pytest.mark.parametrize('fault', ['missing', 'size'])
def test_train_tool_reports_a_bad_label_in_one_line(cityscapes, tmp_path,
                                                    fault):
    """As a user meets it: ``tools/train.py`` on the demo config stops with
    one line on stderr that names the label file."""
    import os
    import shutil
    from tests.conftest import run_tool
    root = str(tmp_path / 'data')
    shutil.copytree(cityscapes, root)
    paths = label_files(root)
    for path in paths:  # every label: whichever the sampler draws first
        if fault == 'missing':
            os.remove(path)
        else:
            write_label(path, np.zeros((32, 64)))
    roots = [f'{key}.dataset.data_root={root}' for key in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')]
    proc = run_tool(
        'tools/train.py', 'configs/demo/lraspp_mobilenetv3-large-rf2-d16_'
        '1xb8-250iter_synthetic-cityscapes-128x256.py', '--work-dir',
        tmp_path / 'work', '--cfg-options', *roots, 'train_cfg.max_iters=2',
        timeout=600)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    error = [line for line in lines if 'error:' in line]
    assert len(error) == 1, proc.stderr[-2000:]
    assert '_gtFine_labelTrainIds.png' in error[0]
    assert ('does not exist' if fault == 'missing' else '32x64') in error[0]
