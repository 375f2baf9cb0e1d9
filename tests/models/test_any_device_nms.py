"""NMS (and the focal loss) where mmcv has no kernel for the device.

On this CPU machine mmcv has its NMS kernel, so the torchvision path is
forced by making ``mmcv_has_kernel`` answer False; it must give exactly
mmcv's detections: single NMS with ties, score thresholds and ``max_num``,
batched NMS with class offsets, ``split_thr`` and class-agnostic runs, and
whole SSDLite-V3 and RetinaNet-V4 predictions from their configs.
"""
import os.path as osp

import pytest
import torch
from mmcv.ops import batched_nms as mmcv_batched_nms
from mmcv.ops import nms as mmcv_nms

import mobilenet_mm  # noqa: F401  (registers the modules)
from mobilenet_mm.models.utils import (batched_nms, mmcv_has_kernel,
                                       torchvision_nms)
from mobilenet_mm.models.utils import nms as nms_module

from tests.conftest import REPO as ROOT  # noqa: E402


def random_boxes(n, seed, ties=False, scale=100.):
    generator = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=generator) * scale
    wh = torch.rand(n, 2, generator=generator) * scale / 3 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    if ties:
        # Few distinct scores, and some boxes repeated exactly.
        scores = torch.randint(1, 5, (n, ), generator=generator) / 5.
        boxes[n // 2:n // 2 + n // 8] = boxes[:n // 8]
    else:
        scores = torch.rand(n, generator=generator)
    labels = torch.randint(0, 4, (n, ), generator=generator)
    return boxes, scores, labels


@pytest.fixture
def forced_fallback(monkeypatch):
    """Make every NMS take the torchvision path and count its calls."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return torchvision_nms(*args, **kwargs)

    monkeypatch.setattr(nms_module, 'mmcv_has_kernel', lambda op, dev: False)
    monkeypatch.setattr(nms_module, 'torchvision_nms', counting)
    return calls


def test_kernel_probe_tells_present_from_missing():
    assert mmcv_has_kernel('nms', 'cpu')
    # mmcv has no CPU kernel for sigmoid_focal_loss (mmdet never asks for
    # one): the probe's "missing" answer, from a real mmcv build.
    assert not mmcv_has_kernel('sigmoid_focal_loss', torch.device('cpu'))
    with pytest.raises(ValueError, match="no kernel probe for mmcv op 'x'"):
        mmcv_has_kernel('x', 'cpu')


@pytest.mark.parametrize('seed,ties', [(0, False), (1, True), (2, True)])
@pytest.mark.parametrize('iou', [0.3, 0.5, 0.7])
def test_single_nms_equals_mmcv(seed, ties, iou):
    boxes, scores, _ = random_boxes(300, seed, ties)
    for kwargs in ({}, dict(score_threshold=0.3), dict(max_num=17),
                   dict(score_threshold=0.5, max_num=5)):
        dets, keep = torchvision_nms(boxes, scores, iou, **kwargs)
        ref_dets, ref_keep = mmcv_nms(boxes, scores, iou, **kwargs)
        assert torch.equal(keep, ref_keep), kwargs
        assert torch.equal(dets, ref_dets), kwargs
    assert 0 < len(keep) < 300


@pytest.mark.parametrize('seed,ties', [(3, False), (4, True)])
@pytest.mark.parametrize('cfg', [
    dict(type='nms', iou_threshold=0.5),
    dict(type='nms', iou_threshold=0.6, split_thr=0),  # class by class
    dict(type='nms', iou_threshold=0.45, split_thr=0, max_num=40),
    dict(type='nms', iou_threshold=0.5, class_agnostic=True),
])
def test_batched_nms_equals_mmcv(forced_fallback, seed, ties, cfg):
    boxes, scores, labels = random_boxes(400, seed, ties, scale=40.)
    dets, keep = batched_nms(boxes, scores, labels, cfg)
    ref_dets, ref_keep = mmcv_batched_nms(boxes, scores, labels, cfg)
    assert forced_fallback, 'the torchvision path did not run'
    assert torch.equal(keep, ref_keep)
    assert torch.equal(dets, ref_dets)
    # Class offsets at work: class-wise NMS keeps overlapping boxes of
    # different classes that class-agnostic NMS drops.
    if not cfg.get('class_agnostic') and 'max_num' not in cfg:
        # (mmcv's split_thr path is class-wise whatever class_agnostic says)
        agnostic, _ = mmcv_batched_nms(
            boxes, scores, labels, dict(iou_threshold=cfg['iou_threshold'],
                                        class_agnostic=True))
        assert len(agnostic) < len(dets)


def test_fallback_refuses_what_torchvision_cannot_do(forced_fallback):
    boxes, scores, labels = random_boxes(20, 5)
    with pytest.raises(ValueError, match="NMS type 'soft_nms' has no kernel"):
        batched_nms(boxes, scores, labels,
                    dict(type='soft_nms', iou_threshold=0.5))
    with pytest.raises(ValueError, match='offset=1 has no torchvision'):
        batched_nms(boxes, scores, labels,
                    dict(type='nms', iou_threshold=0.5, offset=1))
    # No NMS config: mmcv's sort-only path, no kernel needed.
    dets, keep = batched_nms(boxes, scores, labels, None)
    assert torch.equal(dets[:, -1], scores.sort(descending=True).values)


def _detector(config, shape):
    from mobilenet_mm.deploy.build import build_config_model, calibrate_bn
    model = build_config_model(osp.join(ROOT, 'configs', config), shape)
    probe = torch.rand(2, 3, *shape) * 2 - 1
    # Well-spread scores: many candidates, many suppressions.
    calibrate_bn(model, probe, mode='tensor')
    return model


@pytest.mark.parametrize('config,shape', [
    ('ssdlite_v3.py', (320, 320)),
    ('retinanet/retinanet_mobilenetv4-conv-medium-imagenet_8xb32-600e_coco-384x384.py',
     (256, 256)),
])
def test_whole_detector_predicts_the_same_through_the_fallback(
        monkeypatch, config, shape):
    from mobilenet_mm.analysis.benchmark import (det_batch,
                                                 predict_step_fn,
                                                 random_images)
    torch.manual_seed(0)
    model = _detector(config, shape)
    # RetinaNet's prior (p = 0.01) keeps untrained scores under its 0.05.
    model.bbox_head.test_cfg.score_thr = 0.
    data = det_batch(random_images(2, *shape, seed=3))
    reference = predict_step_fn(model, data)()
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return torchvision_nms(*args, **kwargs)

    monkeypatch.setattr(nms_module, 'mmcv_has_kernel', lambda op, dev: False)
    monkeypatch.setattr(nms_module, 'torchvision_nms', counting)
    fallback = predict_step_fn(model, data)()
    assert calls, 'the torchvision path did not run'
    for ref, got in zip(reference, fallback):
        ref, got = ref.pred_instances, got.pred_instances
        assert len(ref) > 10
        assert torch.equal(ref.labels, got.labels)
        assert torch.equal(ref.bboxes, got.bboxes)
        assert torch.equal(ref.scores, got.scores)


def test_portable_focal_loss_is_mmdets_focal_loss():
    """The configs' focal loss builds, and its one-hot path (taken where
    mmcv lacks the CUDA kernel) gives mmdet's loss."""
    import torch.nn.functional as F
    from mmdet.models.losses import FocalLoss
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from mobilenet_mm.models.losses import PortableFocalLoss
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'retinanet',
                 'retinanet_mobilenetv4-conv-medium-imagenet_8xb32-600e_coco-'
                 '384x384.py'))
    loss = MODELS.build(cfg.model.bbox_head.loss_cls)
    assert isinstance(loss, PortableFocalLoss)
    assert (loss.gamma, loss.alpha, loss.use_sigmoid) == (1.5, 0.25, True)
    pred = torch.randn(50, 80)
    target = torch.randint(0, 81, (50, ))  # 80 = background
    weight = torch.rand(50)
    one_hot = F.one_hot(target, 81)[:, :80]
    expected = FocalLoss(gamma=1.5, alpha=0.25)(pred, target, weight,
                                                avg_factor=7.)
    assert torch.allclose(loss(pred, target, weight, avg_factor=7.),
                          expected)
    assert torch.allclose(
        FocalLoss(gamma=1.5, alpha=0.25)(pred, one_hot, weight,
                                          avg_factor=7.), expected)
