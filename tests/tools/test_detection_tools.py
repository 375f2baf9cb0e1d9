"""Train -> test with mmdet's COCO metric -> mmdet's own inference API, on a
tiny synthetic data set and a few iterations of the demo config."""
import glob
import os.path as osp

import numpy as np
import pytest

import mobilenet_mm  # noqa: F401
from mobilenet_mm.datasets import DET_CLASSES, generate_coco_detection

from tests.conftest import REPO as ROOT, run_tool

SIZE = 96


def _run(*args):
    result = run_tool(*args, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('det_tools')
    data = str(tmp / 'data') + '/'
    generate_coco_detection(data, num_train=8, num_val=4, size=(SIZE, SIZE))
    # The demo config at SIZE px, 4 iterations, on the tiny data set.
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'demo', 'ssdlite_mobilenetv3-large-scratch_1xb16-'
        '400iter_synthetic-shapes-160x160.py'))
    cfg.model.bbox_head.anchor_generator.input_size = SIZE
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = data
        cfg[key].batch_size = 4 if key == 'train_dataloader' else 2
        for step in cfg[key].dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (SIZE, SIZE)
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = data + 'annotations/instances_val2017.json'
    cfg.train_cfg.update(max_iters=4, val_interval=100)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0,
                                by_epoch=False)]
    cfg.default_hooks.checkpoint.interval = 4
    config = str(tmp / 'tiny_ssdlite.py')
    cfg.dump(config)
    work = str(tmp / 'work')
    _run('tools/train.py', config, '--work-dir', work)
    checkpoint = osp.join(work, 'iter_4.pth')
    assert osp.isfile(checkpoint)
    return config, checkpoint, data, tmp


def test_test_tool_reports_coco_metric_and_draws(trained):
    config, checkpoint, _, tmp = trained
    work = str(tmp / 'test')
    log = _run('tools/test.py', config, checkpoint, '--work-dir', work,
               '--show-dir', 'painted')
    for key in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s',
                'bbox_mAP_m', 'bbox_mAP_l'):
        assert f'coco/{key}:' in log, log[-2000:]
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95' in log  # pycocotools
    painted = glob.glob(osp.join(work, '*', 'painted', '*.jpg'))
    assert len(painted) == 4


def test_mmdet_inference_api(trained):
    from mmdet.apis import inference_detector, init_detector
    config, checkpoint, data, _ = trained
    model = init_detector(config, checkpoint, device='cpu')
    assert model.dataset_meta['classes'] == DET_CLASSES
    image = sorted(glob.glob(osp.join(data, 'val2017', '*.jpg')))[0]
    result = inference_detector(model, image)
    boxes = result.pred_instances.bboxes
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) > 0
    assert result.pred_instances.labels.max() < len(DET_CLASSES)
    import mmcv
    array_result = inference_detector(model, mmcv.imread(image))
    np.testing.assert_allclose(array_result.pred_instances.bboxes.numpy(),
                               boxes.numpy(), rtol=1e-4, atol=1e-3)
