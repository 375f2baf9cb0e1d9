"""SSDLite neck, head and anchors; the separable RetinaNet head."""
import math

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mobilenet_mm  # noqa: F401  (registers the modules)
from mobilenet_mm.models.dense_heads import (SepRetinaHead,
                                             SSDLiteAnchorGenerator,
                                             SSDLiteHead)
from mobilenet_mm.models.necks import SeparableConv2d, SSDLiteNeck

init_default_scope('mmdet')


@pytest.fixture(autouse=True)
def mmdet_scope():
    """mmdet's registries resolve bare names (DeltaXYWHBBoxCoder, ...) in
    the current default scope, which tests of other files switch to mmseg."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield

TRAIN_CFG = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                  min_pos_iou=0., ignore_iof_thr=-1, gt_max_assign_all=False),
    sampler=dict(type='PseudoSampler'),
    allowed_border=-1, pos_weight=-1, neg_pos_ratio=3, debug=False)
TEST_CFG = ConfigDict(
    nms_pre=1000, nms=dict(type='nms', iou_threshold=0.6), min_bbox_size=0,
    score_thr=0.001, max_per_img=100)


def _samples(size, boxes, labels):
    sample = DetDataSample(metainfo=dict(
        img_shape=(size, size), pad_shape=(size, size),
        ori_shape=(size, size), scale_factor=(1., 1.),
        batch_input_shape=(size, size)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        labels=torch.tensor(labels))
    return [sample]


# ---------------------------------------------------------------- neck --

def test_neck_shapes_and_layers():
    neck = SSDLiteNeck(in_channels=(672, 960))
    maps = (torch.rand(2, 672, 20, 20), torch.rand(2, 960, 10, 10))
    outs = neck(maps)
    assert [o.shape[1] for o in outs] == [672, 960, 512, 256, 256, 128]
    assert [o.shape[-1] for o in outs] == [20, 10, 5, 3, 2, 1]
    assert neck.out_channels == (672, 960, 512, 256, 256, 128)
    assert outs[0] is maps[0] and outs[1] is maps[1]
    first = neck.extra_layers[0]
    # 1x1 to half width, 3x3 depthwise stride 2, 1x1 to full width.
    assert first[0].conv.kernel_size == (1, 1)
    assert first[0].conv.out_channels == 256
    assert first[1].conv.groups == 256 and first[1].conv.stride == (2, 2)
    assert first[2].conv.out_channels == 512
    for module in neck.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert module.eps == 1e-3 and module.momentum == 0.03
    assert all(isinstance(layer[i].activate, nn.ReLU6)
               for layer in neck.extra_layers for i in range(3))


def test_neck_rejects_wrong_channels():
    neck = SSDLiteNeck(in_channels=(672, 960))
    with pytest.raises(ValueError, match=r'\(576, 1280\) channels'):
        neck((torch.rand(1, 576, 20, 20), torch.rand(1, 1280, 10, 10)))
    with pytest.raises(ValueError, match='two backbone maps'):
        SSDLiteNeck(in_channels=(672, ))


def test_neck_init_is_truncated_normal():
    neck = SSDLiteNeck(in_channels=(672, 960))
    neck.init_weights()
    weight = neck.extra_layers[0][0].conv.weight
    # Kaiming (ConvModule's default) would give std sqrt(2 / 256) = 0.088.
    assert 0.02 < weight.std().item() < 0.03
    assert weight.abs().max().item() <= 0.06 + 1e-6


# ------------------------------------------------------------- anchors --

def _tf_box_specs():
    """TF create_ssd_anchors' (scale, aspect) per map, written out."""
    scales = [0.2 + 0.75 * i / 5 for i in range(6)] + [1.0]
    specs = [[(0.1, 1.0), (0.2, 2.0), (0.2, 0.5)]]
    for i in range(1, 6):
        specs.append([(scales[i], r) for r in (1.0, 2.0, 0.5, 3.0, 1 / 3)] +
                     [(math.sqrt(scales[i] * scales[i + 1]), 1.0)])
    return specs


def test_anchor_layout_matches_tf():
    gen = SSDLiteAnchorGenerator(input_size=320)
    assert gen.num_base_priors == [3, 6, 6, 6, 6, 6]
    assert gen.map_sizes == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2),
                             (1, 1)]
    anchors = gen.grid_priors(gen.map_sizes, device='cpu')
    assert sum(a.shape[0] for a in anchors) == 2034
    for level, specs in enumerate(_tf_box_specs()):
        n = gen.map_sizes[level][0]
        cell = anchors[level][:len(specs)]  # the top-left cell
        centre = 320 / n / 2
        torch.testing.assert_close(
            (cell[:, :2] + cell[:, 2:]) / 2,
            torch.full((len(specs), 2), centre))
        w = cell[:, 2] - cell[:, 0]
        h = cell[:, 3] - cell[:, 1]
        expect_w = torch.tensor([s * math.sqrt(r) * 320 for s, r in specs])
        expect_h = torch.tensor([s / math.sqrt(r) * 320 for s, r in specs])
        torch.testing.assert_close(w, expect_w)
        torch.testing.assert_close(h, expect_h)
    # Centres of the 3x3 map at (i + 0.5) / 3 of the image.
    centres = anchors[3].view(3, 3, 6, 4)[0, :, 0]
    torch.testing.assert_close((centres[:, 0] + centres[:, 2]) / 2,
                               torch.tensor([320 / 6, 160, 320 * 5 / 6]))


def test_anchor_generator_refuses_other_map_sizes():
    gen = SSDLiteAnchorGenerator(input_size=320)
    other = SSDLiteAnchorGenerator(input_size=256).map_sizes
    with pytest.raises(ValueError, match='input_size=.320, 320.'):
        gen.grid_priors(other, device='cpu')


def test_anchor_generator_builds_from_mmdet_registry():
    gen = MMDET_TASK_UTILS.build(
        dict(type='mobilenet_mm.SSDLiteAnchorGenerator', input_size=192))
    assert isinstance(gen, SSDLiteAnchorGenerator)
    assert gen.map_sizes[0] == (12, 12)


# ---------------------------------------------------------------- head --

def _head(num_classes=80, **kwargs):
    return SSDLiteHead(num_classes=num_classes, train_cfg=TRAIN_CFG,
                       test_cfg=TEST_CFG, **kwargs)


def test_head_layers_are_separable_predictors():
    head = _head()
    for convs, per_box in ((head.cls_convs, 81), (head.reg_convs, 4)):
        for branch, channels, boxes in zip(
                convs, (672, 960, 512, 256, 256, 128), (3, 6, 6, 6, 6, 6)):
            depthwise, pointwise = branch
            assert depthwise.conv.groups == channels
            assert depthwise.conv.kernel_size == (3, 3)
            assert isinstance(depthwise.bn, nn.BatchNorm2d)
            assert depthwise.bn.eps == 1e-3
            assert isinstance(depthwise.activate, nn.ReLU6)
            assert isinstance(pointwise, nn.Conv2d)
            assert pointwise.kernel_size == (1, 1)
            assert pointwise.bias is not None
            assert pointwise.out_channels == boxes * per_box


def test_head_init_is_normal_003():
    head = _head()
    head.init_weights()
    for conv in (head.cls_convs[0][0].conv, head.cls_convs[1][1]):
        assert 0.025 < conv.weight.std().item() < 0.035
    assert head.cls_convs[1][1].bias.abs().max().item() == 0


def test_mmdet_ssdhead_predict_crash_is_fixed():
    feats = [torch.rand(1, c, s, s) for c, s in zip(
        (672, 960, 512, 256, 256, 128), (20, 10, 5, 3, 2, 1))]
    metas = [dict(img_shape=(320, 320), ori_shape=(320, 320),
                  scale_factor=(1., 1.))]
    common = dict(in_channels=(672, 960, 512, 256, 256, 128),
                  use_depthwise=True, test_cfg=TEST_CFG,
                  anchor_generator=dict(
                      type='mobilenet_mm.SSDLiteAnchorGenerator'))
    # The bug this class fixes: mmdet 3.3.0's SSDHead cannot predict.
    mmdet_head = MMDET_MODELS.build(dict(type='SSDHead', **common)).eval()
    with pytest.raises(AttributeError, match='loss_cls'):
        mmdet_head.predict_by_feat(*mmdet_head(feats), batch_img_metas=metas)
    head = _head().eval()
    with torch.no_grad():
        result = head.predict_by_feat(*head(feats), batch_img_metas=metas,
                                      rescale=True)[0]
    assert result.bboxes.shape == (100, 4)
    assert result.labels.max() < 80


def _head_outputs(head, temperature):
    """Class scores and box deltas on the six 320x320 maps; a larger
    ``temperature`` makes the softmax peakier, so that ``score_thr``
    really cuts."""
    torch.manual_seed(3)
    cls_scores, bbox_preds = [], []
    for size, boxes in zip((20, 10, 5, 3, 2, 1), head.num_base_priors):
        cls_scores.append(
            torch.randn(1, boxes * head.cls_out_channels, size, size) *
            temperature)
        bbox_preds.append(torch.randn(1, boxes * 4, size, size))
    return cls_scores, bbox_preds


@pytest.mark.parametrize('nms_pre,score_thr,temperature,with_nms', [
    (1000, 0.001, 1.0, True),   # the configs' setting, every score passes
    (1000, 0.001, 1.0, False),  # the candidates themselves, in order
    (50, 0.05, 4.0, True),      # the threshold and the top-k both cut
    (50, 0.05, 4.0, False),
])
def test_topk_selection_keeps_mmdets_detections(nms_pre, score_thr,
                                                temperature, with_nms):
    """SSDLiteHead's partial top-k picks the candidates mmdet's
    BaseDenseHead picks with its full sort: same boxes, scores, labels."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    head = _head().eval()
    cfg = ConfigDict(TEST_CFG, nms_pre=nms_pre, score_thr=score_thr)
    cls_scores, bbox_preds = _head_outputs(head, temperature)
    priors = head.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls_scores], device='cpu')
    meta = dict(img_shape=(320, 320), ori_shape=(480, 400),
                scale_factor=(320 / 400, 320 / 480))
    args = ([c[0] for c in cls_scores], [b[0] for b in bbox_preds],
            [None] * len(cls_scores), priors, meta, cfg)
    ours = head._predict_by_feat_single(*args, rescale=True,
                                        with_nms=with_nms)
    reference = BaseDenseHead._predict_by_feat_single(
        head, *args, rescale=True, with_nms=with_nms)
    assert len(ours) > 0
    if with_nms:
        assert len(ours) <= cfg.max_per_img
    else:
        assert len(ours) < nms_pre * len(cls_scores)  # the threshold cut
    assert ours.scores.min() > score_thr
    torch.testing.assert_close(ours.bboxes, reference.bboxes)
    torch.testing.assert_close(ours.scores, reference.scores)
    assert torch.equal(ours.labels, reference.labels)


def test_topk_selection_without_nms_pre_keeps_every_candidate():
    head = _head().eval()
    cfg = ConfigDict(TEST_CFG, nms_pre=-1, score_thr=0.05)
    cls_scores, bbox_preds = _head_outputs(head, 4.0)
    priors = head.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls_scores], device='cpu')
    meta = dict(img_shape=(320, 320), ori_shape=(320, 320),
                scale_factor=(1., 1.))
    ours = head._predict_by_feat_single(
        [c[0] for c in cls_scores], [b[0] for b in bbox_preds],
        [None] * len(cls_scores), priors, meta, cfg, with_nms=False)
    expected = sum(
        int((c[0].permute(1, 2, 0).reshape(-1, 81).softmax(-1)[:, :80] >
             0.05).sum()) for c in cls_scores)
    assert len(ours) == expected


def test_hard_negative_mining_keeps_three_negatives_per_positive():
    head = _head(num_classes=2)
    n = 20
    labels = torch.full((n, ), 2)  # background
    labels[:2] = torch.tensor([0, 1])
    scores = torch.zeros(n, 3)
    # Negatives 2..19: the larger the foreground logit, the larger the loss.
    scores[2:, 0] = torch.arange(18, dtype=torch.float32)
    targets = torch.zeros(n, 4)
    weights = torch.zeros(n, 4)
    weights[:2] = 1
    loss_cls, loss_bbox = head.loss_by_feat_single(
        scores, torch.zeros(n, 4), torch.zeros(n, 4), labels,
        torch.ones(n), targets, weights, avg_factor=2)
    per_anchor = nn.functional.cross_entropy(scores, labels, reduction='none')
    hardest = per_anchor[2:].topk(6).values  # 3 x 2 positives
    expect = (per_anchor[:2].sum() + hardest.sum()) / 2
    torch.testing.assert_close(loss_cls, expect[None])
    assert loss_bbox.item() == 0


def test_head_loss_and_predict_through_detector():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/ssdlite/ssdlite_mobilenetv3-small-scratch_'
                          '8xb24-660e_coco-320x320.py')
    detector = MMDET_MODELS.build(cfg.model)
    detector.init_weights()
    size = 320
    # Two images: the last map is 1x1, and BN needs more than one value.
    data = detector.data_preprocessor(dict(
        inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=_samples(size, [[20, 30, 150, 200]], [5]) +
        _samples(size, [[100, 100, 300, 260]], [0])), True)
    losses = detector(**data, mode='loss')
    total = sum(sum(v) for v in losses.values())
    total.backward()
    assert torch.isfinite(total)
    assert detector.bbox_head.cls_convs[0][1].weight.grad is not None
    detector.eval()
    with torch.no_grad():
        results = detector(**data, mode='predict')
    assert results[0].pred_instances.bboxes.shape[1] == 4


TF_V3_LOSS = dict(type='mobilenet_mm.PortableFocalLoss', use_sigmoid=True,
                  gamma=2.0, alpha=0.75)


def _tf_v3_head(num_classes):
    """TF's ssdlite_mobilenet_v3_large_320x320_coco.config loss: sigmoid
    focal alpha 0.75 gamma 2 over every anchor, class bias -4.6, the
    background output's target 0 (encode_background_as_zeros)."""
    return SSDLiteHead(num_classes=num_classes, loss_cls=TF_V3_LOSS,
                       cls_bias_init=-4.6, encode_background_as_zeros=True,
                       train_cfg=dict(TRAIN_CFG, neg_pos_ratio=None),
                       test_cfg=TEST_CFG)


def _sigmoid_batch(num_classes, n=30):
    """Logits of n anchors (classes + background output), the first four
    positive, the rest background."""
    torch.manual_seed(0)
    scores = torch.randn(n, num_classes + 1)
    labels = torch.full((n, ), num_classes)  # background
    labels[:4] = torch.tensor([0, 1, 2, 1])
    return scores, labels


def test_sigmoid_focal_loss_over_every_anchor():
    """TF V3's loss: the same num_classes + 1 outputs per box as the
    softmax head (TF keeps its background output), the focal loss of every
    anchor and output (torchvision.ops' formula) over the positives, the
    background output's target 0 everywhere; the class bias starts at -4.6
    (scores 0.01), and only the classes are scored."""
    from torchvision.ops import sigmoid_focal_loss
    head = _tf_v3_head(num_classes=3)
    head.init_weights()
    assert head.cls_out_channels == 4
    assert head.cls_out_channels == SSDLiteHead(num_classes=3).cls_out_channels
    for convs, boxes in zip(head.cls_convs, (3, 6, 6, 6, 6, 6)):
        assert convs[-1].out_channels == boxes * 4
        assert torch.all(convs[-1].bias == -4.6)
    scores, labels = _sigmoid_batch(3)
    n = len(labels)
    loss_cls, _ = head.loss_by_feat_single(
        scores, torch.zeros(n, 4), torch.zeros(n, 4), labels, torch.ones(n),
        torch.zeros(n, 4), torch.zeros(n, 4), avg_factor=4)
    target = nn.functional.one_hot(labels, 4).float()
    target[:, 3] = 0  # TF encode_background_as_zeros
    expect = sigmoid_focal_loss(scores, target, alpha=0.75, gamma=2.0,
                                reduction='sum') / 4
    torch.testing.assert_close(loss_cls, expect[None])
    # predicting: sigmoid scores of the classes, the background dropped
    head.eval()
    feats = [torch.zeros(1, c, s, s) for c, s in zip(
        (672, 960, 512, 256, 256, 128), (20, 10, 5, 3, 2, 1))]
    with torch.no_grad():
        cls_scores, _ = head(feats)
    scores = head._anchor_scores(cls_scores[0][0])
    assert scores.shape == (20 * 20 * 3, 3)
    torch.testing.assert_close(scores, torch.full_like(scores, 0.01),
                               atol=1e-4, rtol=0)
    logits = torch.randn(5, 4)
    torch.testing.assert_close(head.class_scores(logits),
                               logits[:, :3].sigmoid())


def test_sigmoid_loss_with_background_class_and_mining():
    """TF V2's loss: a sigmoid over every output with the background
    output trained as a class (target 1 at unmatched anchors, TF's default
    encode_background_as_zeros=false), 3:1 hard negatives ranked by the
    loss summed over the outputs; an unused output's target is 0."""
    head = SSDLiteHead(
        num_classes=3, unused_class_outputs=1,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
        train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)
    assert head.cls_out_channels == 5
    scores, labels = _sigmoid_batch(3, n=40)
    scores = torch.cat([scores, torch.randn(40, 1)], 1)  # the unused one
    n = len(labels)
    loss_cls, _ = head.loss_by_feat_single(
        scores, torch.zeros(n, 4), torch.zeros(n, 4), labels, torch.ones(n),
        torch.zeros(n, 4), torch.zeros(n, 4), avg_factor=4)
    target = nn.functional.one_hot(labels, 5).float()
    per_anchor = nn.functional.binary_cross_entropy_with_logits(
        scores, target, reduction='none').sum(1)
    hardest = per_anchor[4:].topk(3 * 4).values
    expect = (per_anchor[:4].sum() + hardest.sum()) / 4
    torch.testing.assert_close(loss_cls, expect[None])


def test_head_rejects_settings_it_would_ignore():
    with pytest.raises(ValueError, match='needs a sigmoid loss_cls'):
        SSDLiteHead(train_cfg=dict(TRAIN_CFG, neg_pos_ratio=None))
    with pytest.raises(ValueError, match='neg_pos_ratio must be an int'):
        SSDLiteHead(train_cfg=dict(TRAIN_CFG, neg_pos_ratio=0))
    with pytest.raises(ValueError, match='encode_background_as_zeros=True '
                       'needs a sigmoid'):
        SSDLiteHead(encode_background_as_zeros=True)
    with pytest.raises(ValueError, match='must be True or False'):
        SSDLiteHead(loss_cls=TF_V3_LOSS, encode_background_as_zeros=1)
    with pytest.raises(ValueError, match='smoothl1_beta'):
        SSDLiteHead(train_cfg=dict(TRAIN_CFG, smoothl1_beta=1.0))
    cfg = dict(TRAIN_CFG)
    del cfg['neg_pos_ratio']
    with pytest.raises(ValueError, match='neg_pos_ratio'):
        SSDLiteHead(train_cfg=cfg)
    with pytest.raises(ValueError, match='anchor generator'):
        SSDLiteHead(in_channels=(672, 960, 512))


def test_modules_live_in_our_scope():
    from mobilenet_mm.registry import MODELS
    assert MODELS.get('SSDLiteHead') is SSDLiteHead
    assert MODELS.get('SSDLiteNeck') is SSDLiteNeck
    assert MMDET_MODELS.get('mobilenet_mm.SSDLiteHead') is SSDLiteHead
    assert MMDET_MODELS.get('mobilenet_mm.SepRetinaHead') is SepRetinaHead


# ----------------------------------------------------- separable RetinaNet --

def test_separable_conv():
    conv = SeparableConv2d(16, 32, 3, stride=2, padding=1)
    assert conv.depthwise.groups == 16 and conv.depthwise.bias is None
    assert conv(torch.rand(1, 16, 8, 8)).shape == (1, 32, 4, 4)
    pointwise_only = SeparableConv2d(16, 32, 1)
    assert pointwise_only.depthwise is None
    assert sum(p.numel() for p in pointwise_only.parameters()) == 16 * 32 + 32
    with pytest.raises(ValueError, match='groups'):
        SeparableConv2d(16, 32, 3, groups=2)


def test_sep_retina_head():
    head = SepRetinaHead(
        num_classes=80, in_channels=256, stacked_convs=4, feat_channels=256,
        norm_cfg=dict(type='BN'),
        anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=3, scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]))
    head.init_weights()
    assert len(head.cls_convs) == 4 and len(head.reg_convs) == 4
    for conv in list(head.cls_convs) + list(head.reg_convs):
        assert isinstance(conv.conv, SeparableConv2d)
        assert isinstance(conv.activate, nn.ReLU6)
    assert isinstance(head.retina_cls, SeparableConv2d)
    assert head.retina_cls.pointwise.out_channels == 9 * 80
    bias = head.retina_cls.pointwise.bias
    torch.testing.assert_close(bias, torch.full_like(bias, -math.log(99)))
    cls_scores, box_preds = head([torch.rand(1, 256, 6, 6)] * 5)
    assert cls_scores[0].shape == (1, 720, 6, 6)
    assert box_preds[0].shape == (1, 36, 6, 6)
    with pytest.raises(ValueError, match='conv_cfg'):
        SepRetinaHead(num_classes=80, in_channels=256,
                      conv_cfg=dict(type='Conv2d'))
