"""COCO test-dev: tools/test.py writes the evaluation server's result JSON
from an image-info file without annotations (the SSDLite-V3 test-dev config).
"""
import json
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mobilenet_mm  # noqa: F401
from mobilenet_mm.datasets import generate_coco_detection
from mobilenet_mm.datasets.coco_checks import CocoDataError, check_coco_file
from mobilenet_mm.datasets.coco_testdev import (CocoImageInfo,
                                                check_image_info_file)

init_default_scope('mmdet')
from mmdet.datasets import CocoDataset  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402

from tests.conftest import REPO, run_tool  # noqa: E402

CONFIG = osp.join(REPO, 'configs', 'ssdlite',
                  'ssdlite_mobilenetv3-large-scratch_8xb24-660e_'
                  'coco-testdev-320x320.py')
INFO = 'annotations/image_info_test-dev2017.json'


@pytest.fixture(scope='module')
def testdev_root(tmp_path_factory):
    """test2017/ images and an image_info file in the test-dev format:
    images and COCO's 80 categories, no annotations."""
    root = tmp_path_factory.mktemp('coco_testdev')
    generate_coco_detection(str(root / 'gen'), num_train=1, num_val=3,
                            size=(96, 128))
    shutil.copytree(root / 'gen' / 'val2017', root / 'test2017')
    with open(root / 'gen' / 'annotations' / 'instances_val2017.json') as f:
        images = json.load(f)['images']
    categories = [dict(id=i + 1, name=name, supercategory='')
                  for i, name in enumerate(CocoDataset.METAINFO['classes'])]
    (root / 'annotations').mkdir()
    with open(root / INFO, 'w') as f:
        json.dump(dict(info={}, licenses=[], images=images,
                       categories=categories), f)
    return root


def test_tools_test_writes_the_server_file(testdev_root, tmp_path):
    init_default_scope('mmdet')
    cfg = Config.fromfile(CONFIG)
    model = MODELS.build(cfg.model)
    model.init_weights()
    checkpoint = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    prefix = tmp_path / 'out' / 'detections_test-dev2017'
    proc = run_tool(
        osp.join(REPO, 'tools', 'test.py'), CONFIG, checkpoint,
        '--work-dir', tmp_path / 'work',
        '--cfg-options', f'test_dataloader.dataset.data_root={testdev_root}/',
        f'test_evaluator.ann_file={testdev_root / INFO}',
        f'test_evaluator.outfile_prefix={prefix}')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(f'{prefix}.bbox.json') as f:
        detections = json.load(f)
    with open(testdev_root / INFO) as f:
        info = json.load(f)
    image_ids = {img['id'] for img in info['images']}
    assert detections, 'no detections written'
    assert {d['image_id'] for d in detections} == image_ids
    assert {d['category_id'] for d in detections} <= set(range(1, 81))
    for d in detections[:50]:
        assert len(d['bbox']) == 4 and 0 <= d['score'] <= 1
    # at most max_per_img (100) per image, as the server expects
    assert len(detections) <= 100 * len(image_ids)


def test_image_info_files_are_checked(testdev_root, tmp_path):
    info = str(testdev_root / INFO)
    summary = check_image_info_file(info, CocoDataset.METAINFO['classes'])
    assert summary['num_images'] == 3
    # the training class refuses it: that is why CocoImageInfo exists
    with pytest.raises(CocoDataError, match="no 'annotations' list"):
        check_coco_file(info)
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(categories=[])))
    with pytest.raises(CocoDataError, match="no 'images' list"):
        check_image_info_file(str(bad))
    with pytest.raises(CocoDataError, match="no category named 'unicorn'"):
        check_image_info_file(info, ('unicorn', ))
    with pytest.raises(CocoDataError, match='test_mode=True'):
        CocoImageInfo(ann_file=info, data_root=str(testdev_root))
