"""Bad detection data ends in one clear line naming the file, id or key."""
import json
import os
import os.path as osp
import shutil

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mobilenet_mm  # noqa: F401
from mobilenet_mm.datasets import DET_CLASSES, generate_coco_detection
from mobilenet_mm.datasets.coco_checks import (CocoDataError, CocoDetection,
                                               check_coco_file,
                                               check_detection_config,
                                               check_num_classes)
from mobilenet_mm.errors import CLIError

from tests.conftest import REPO as ROOT, run_tool

DEMO = osp.join(
    ROOT, 'configs', 'demo',
    'ssdlite_mobilenetv3-large-scratch_1xb16-400iter_synthetic-shapes-'
    '160x160.py')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('coco'))
    generate_coco_detection(root, num_train=4, num_val=2, size=(64, 64))
    return root


def _ann(data):
    with open(osp.join(data, 'annotations', 'instances_train2017.json')) as f:
        return json.load(f)


def _write(tmp_path, content):
    path = str(tmp_path / 'ann.json')
    with open(path, 'w') as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


def _one_line(error, *needles):
    message = str(error.value)
    assert '\n' not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_good_file_passes(data):
    summary = check_coco_file(
        osp.join(data, 'annotations', 'instances_train2017.json'),
        DET_CLASSES)
    assert summary['num_images'] == 4
    assert set(summary['categories'].values()) == set(DET_CLASSES)


def test_error_is_a_cli_error():
    assert issubclass(CocoDataError, CLIError)
    assert issubclass(CocoDataError, ValueError)


def test_empty_file(tmp_path):
    path = _write(tmp_path, '  \n')
    with pytest.raises(CocoDataError) as e:
        check_coco_file(path)
    _one_line(e, 'annotation file is empty', path)


def test_malformed_json(tmp_path):
    path = _write(tmp_path, '{"images": [')
    with pytest.raises(CocoDataError) as e:
        check_coco_file(path)
    _one_line(e, 'not valid JSON', path, 'line 1')


def test_missing_section(tmp_path, data):
    ann = _ann(data)
    del ann['categories']
    path = _write(tmp_path, ann)
    with pytest.raises(CocoDataError) as e:
        check_coco_file(path)
    _one_line(e, path, "'categories'")


def test_category_id_not_defined(tmp_path, data):
    ann = _ann(data)
    ann['annotations'][0]['category_id'] = 42
    path = _write(tmp_path, ann)
    with pytest.raises(CocoDataError) as e:
        check_coco_file(path)
    _one_line(e, path, 'category_id 42',
              f"annotation {ann['annotations'][0]['id']}")


def test_category_not_in_config_classes(tmp_path, data):
    path = osp.join(data, 'annotations', 'instances_train2017.json')
    classes = DET_CLASSES[:-1]  # 'cross' (id 5) left out
    if 5 not in {a['category_id'] for a in _ann(data)['annotations']}:
        pytest.skip('no cross in the tiny data set')
    with pytest.raises(CocoDataError) as e:
        check_coco_file(path, classes)
    _one_line(e, path, "5 ('cross')", "config's classes")


def test_config_class_not_in_file(data):
    path = osp.join(data, 'annotations', 'instances_train2017.json')
    with pytest.raises(CocoDataError) as e:
        check_coco_file(path, DET_CLASSES + ('hexagon', ))
    _one_line(e, path, "'hexagon'")


def test_bad_box(tmp_path, data):
    ann = _ann(data)
    ann['annotations'][0]['bbox'] = [0, 0, -3, 4]
    path = _write(tmp_path, ann)
    with pytest.raises(CocoDataError) as e:
        check_coco_file(path)
    _one_line(e, path, 'bbox [0, 0, -3, 4]')


def _demo_cfg(data):
    cfg = Config.fromfile(DEMO)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = data + '/'
    return cfg


def test_class_count_mismatch(data):
    cfg = _demo_cfg(data)
    check_detection_config(cfg)  # the demo config fits its data
    cfg.model.bbox_head.num_classes = 80
    with pytest.raises(CocoDataError) as e:
        check_num_classes(cfg)
    _one_line(e, 'model.bbox_head.num_classes is 80', 'has 5 classes')
    with pytest.raises(CocoDataError):
        check_detection_config(cfg)


def test_unreadable_image_is_named(tmp_path, data):
    root = str(tmp_path / 'coco')
    shutil.copytree(data, root)
    broken = osp.join(root, 'train2017', sorted(
        os.listdir(osp.join(root, 'train2017')))[0])
    with open(broken, 'wb') as f:
        f.write(b'not a jpeg')
    init_default_scope('mmdet')
    cfg = _demo_cfg(root).train_dataloader.dataset
    cfg.pop('type')
    cfg.pop('_scope_', None)
    dataset = CocoDetection(**cfg)
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'] == broken)
    with pytest.raises(CocoDataError) as e:
        dataset[index]
    _one_line(e, 'image cannot be loaded', broken)


def test_train_tool_prints_one_line_and_keeps_work_dir(tmp_path, data):
    root = str(tmp_path / 'coco')
    shutil.copytree(data, root)
    bad = osp.join(root, 'annotations', 'instances_train2017.json')
    with open(bad, 'w') as f:
        f.write('')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'iter_100.pth').write_bytes(b'earlier checkpoint')
    options = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options.append(f'{key}.dataset.data_root={root}/')
    result = run_tool(
        osp.join(ROOT, 'tools', 'train.py'), DEMO, '--work-dir', work_dir,
        '--cfg-options', *options,
        f'val_evaluator.ann_file={root}/annotations/instances_val2017.json')
    assert result.returncode == 1, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert f'annotation file is empty: {bad}' in lines[-1]
    assert not any('Traceback' in line for line in lines)
    assert (work_dir / 'iter_100.pth').read_bytes() == b'earlier checkpoint'
