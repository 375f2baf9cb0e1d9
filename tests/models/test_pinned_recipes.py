"""The recipe constants of every SSDLite config (and the LR-ASPP gate pool
and normalisation), pinned by exact values in the resolved configs and in
the modules built from them.

SSDLite ([V2] section 6.2, [V3] section 6.2, TF object_detection's
ssdlite configs, torchvision's ssdlite320): anchor scales 0.2-0.95 over
six maps, TF's box coder scales (10, 10, 5, 5) = stds (0.1, 0.1, 0.2, 0.2),
inputs mapped to [-1, 1] in RGB order, NMS IoU 0.6 class by class
(``split_thr=0``), at most 100 detections, IoU 0.5 matching, TF's losses
(V1/V2: sigmoid with 3:1 hard negatives; V3/V4: focal over every anchor),
BN eps 1e-3 / momentum 0.03 (TF decay 0.97).
"""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mobilenet_mm  # noqa: F401

from tests.conftest import REPO as ROOT  # noqa: E402


def _paper_recipes(family: str):
    # The family folder and the demo; torchvision's layouts (other anchors,
    # gate and classes) are pinned by their own tests.
    paths = (glob.glob(osp.join(ROOT, 'configs', family, f'{family}_*.py')) +
             glob.glob(osp.join(ROOT, 'configs', 'demo', f'{family}*.py')))
    return sorted(p for p in paths if 'torchvision' not in osp.basename(p))


SSDLITE_CONFIGS = _paper_recipes('ssdlite')
LRASPP_CONFIGS = _paper_recipes('lraspp')

SCALES = (0.2, 0.35, 0.5, 0.65, 0.8, 0.95)
STDS = [0.1, 0.1, 0.2, 0.2]
TF_NORM = dict(type='BN', eps=1e-3, momentum=0.03)


@pytest.fixture(scope='module', params=SSDLITE_CONFIGS,
                ids=lambda p: osp.relpath(p, osp.join(ROOT, 'configs')))
def ssdlite(request):
    return Config.fromfile(request.param)


def test_every_ssdlite_config_is_pinned():
    names = {osp.basename(p) for p in SSDLITE_CONFIGS}
    # 11 backbones, the test-dev variant of V3 and the demo
    assert len(names) == 13 and any(n.startswith('ssdlite_') and
                                    'synthetic' in n for n in names)


def test_anchor_scales(ssdlite):
    anchors = ssdlite.model.bbox_head.anchor_generator
    assert anchors.type == 'mobilenet_mm.SSDLiteAnchorGenerator'
    assert (anchors.min_scale, anchors.max_scale) == (0.2, 0.95)
    # The input size the images are resized to.
    resize = [t for t in ssdlite.test_pipeline if t.type == 'Resize'][0]
    assert tuple(resize.scale) == (anchors.input_size, anchors.input_size)
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import TASK_UTILS
        generator = TASK_UTILS.build(anchors)
    specs = generator.box_specs
    assert specs[0] == [(0.1, 1.0), (0.2, 2.0), (0.2, 0.5)]
    for level in range(1, 6):
        scale = specs[level][0][0]
        assert scale == pytest.approx(SCALES[level], abs=1e-12)
        next_scale = SCALES[level + 1] if level < 5 else 1.0
        expected = [(scale, r) for r in (1.0, 2.0, 0.5, 3.0, 1 / 3)] + [
            (math.sqrt(scale * next_scale), 1.0)]
        assert [v for box in specs[level] for v in box] == pytest.approx(
            [v for box in expected for v in box], abs=1e-12)


def test_box_coder_stds(ssdlite):
    coder = ssdlite.model.bbox_head.bbox_coder
    assert coder.type == 'DeltaXYWHBBoxCoder'
    assert list(coder.target_means) == [0., 0., 0., 0.]
    assert list(coder.target_stds) == STDS
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import TASK_UTILS
        built = TASK_UTILS.build(coder)
    assert list(built.stds) == STDS and list(built.means) == [0.] * 4


def test_inputs_are_mapped_to_minus_one_one_in_rgb(ssdlite):
    pre = ssdlite.model.data_preprocessor
    assert pre.type == 'DetDataPreprocessor'
    assert list(pre.mean) == [127.5] * 3 and list(pre.std) == [127.5] * 3
    assert pre.bgr_to_rgb is True
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import MODELS
        built = MODELS.build(pre)
    image = torch.zeros(3, 4, 4, dtype=torch.uint8)
    image[0] = 255  # blue first, as mmcv loads images (BGR)
    out = built(dict(inputs=[image], data_samples=None))['inputs'][0]
    assert torch.equal(out[2], torch.ones(4, 4))   # blue goes last (RGB)
    assert torch.equal(out[0], -torch.ones(4, 4))


def test_post_processing_and_matching(ssdlite):
    test_cfg = ssdlite.model.test_cfg
    assert test_cfg.nms == dict(type='nms', iou_threshold=0.6, split_thr=0)
    assert (test_cfg.max_per_img, test_cfg.score_thr, test_cfg.nms_pre) == \
        (100, 0.001, 1000)
    train_cfg = ssdlite.model.train_cfg
    assigner = train_cfg.assigner
    assert (assigner.type, assigner.pos_iou_thr, assigner.neg_iou_thr,
            assigner.min_pos_iou, assigner.gt_max_assign_all) == \
        ('MaxIoUAssigner', 0.5, 0.5, 0., False)
    head = ssdlite.model.bbox_head
    if ssdlite.model.backbone.type in ('mobilenet_mm.MobileNetV1',
                                       'mobilenet_mm.MobileNetV2'):
        # TF ssdlite_mobilenet_v{1,2}_coco.config: sigmoid, background as a
        # class, 3:1 hard negatives, box loss over the matches
        assert head.loss_cls == dict(type='CrossEntropyLoss',
                                     use_sigmoid=True, loss_weight=1.0)
        assert (head.encode_background_as_zeros, head.cls_bias_init,
                train_cfg.neg_pos_ratio, head.loss_bbox.loss_weight) == \
            (False, 0., 3, 1.0)
    else:
        # TF ssdlite_mobilenet_v3_large_320x320_coco.config: focal over every
        # anchor, background target 0, bias -4.6, box loss / code size 4
        assert head.loss_cls == dict(
            type='mobilenet_mm.PortableFocalLoss', use_sigmoid=True,
            gamma=2.0, alpha=0.75, loss_weight=1.0)
        assert (head.encode_background_as_zeros, head.cls_bias_init,
                train_cfg.neg_pos_ratio, head.loss_bbox.loss_weight) == \
            (True, -4.6, None, 0.25)
    assert (head.loss_bbox.type, head.loss_bbox.beta) == ('SmoothL1Loss', 1.)


def test_tf_batch_norm_everywhere(ssdlite):
    model = ssdlite.model
    for part in (model.backbone, model.neck, model.bbox_head):
        assert part.norm_cfg == TF_NORM


@pytest.mark.parametrize('path', LRASPP_CONFIGS,
                         ids=lambda p: osp.relpath(p, osp.join(ROOT,
                                                               'configs')))
def test_lraspp_gate_pool_and_normalisation(path):
    cfg = Config.fromfile(path)
    pre = cfg.model.data_preprocessor
    # ImageNet statistics (the backbones' pretraining), RGB.
    assert list(pre.mean) == [123.675, 116.28, 103.53]
    assert list(pre.std) == [58.395, 57.12, 57.375]
    assert pre.bgr_to_rgb is True and pre.seg_pad_val == 255
    head = cfg.model.decode_head
    assert head.type == 'mobilenet_mm.LRASPPHead'
    # [V3] Figure 10: 49x49 pool, stride (16, 20), on the 64x128 map.
    assert tuple(head.pool_kernel) == (49 / 64, 49 / 128)
    assert tuple(head.pool_stride) == (16 / 64, 20 / 128)
