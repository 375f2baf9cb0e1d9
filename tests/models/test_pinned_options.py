"""Options whose effect does not show in output shapes, pinned by exact
values or by a control that fails when the option is switched off.

* ``with_cp``: each checkpointed block runs its forward twice in a training
  step (once more during backward); never in eval or without the option.
* ``drop_path_rate``: the rate of each block, ``rate * i / blocks`` (timm's
  rule), only on residual blocks.
* ``output_stride``: stride and dilation of every block's depthwise conv.
* R-ASPP's image-pooling branch and LR-ASPP's ``pool_kernel`` /
  ``pool_stride``: hand computations, and the output changes with them.
* The attention MAdds: the exact count of a Mobile MQA layer by hand.
* Channels-last: whole detectors and segmentors (necks and heads too) give
  the NCHW results.
* ``split_thr=0`` (NMS class by class): the same detections as one NMS
  over all boxes.
"""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mobilenet_mm  # noqa: F401  (registers the modules)
from mobilenet_mm.analysis import count_madds
from mobilenet_mm.models.backbones import MobileNetV2
from mobilenet_mm.models.decode_heads import LRASPPHead, RASPPHead
from mobilenet_mm.models.decode_heads.lraspp_head import relative_avg_pool
from mobilenet_mm.models.layers import InvertedBottleneck, MultiQueryAttention

# MobileNetV2's 18 table rows ([V2] Table 2), numbered from 0: which have a
# residual (stride 1, same width in and out) and which carry a stride.
V2_BLOCKS = 18
V2_RESIDUAL = (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)
V2_STAGE_BLOCKS = ((0, ), (1, 2), (3, 4, 5), tuple(range(6, 13)),
                   tuple(range(13, 18)))


def randomize_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.uniform_(-0.5, 0.5, generator=gen)
    return module.eval()


def v2_blocks(model):
    """The 18 table blocks in order (the stem conv left out)."""
    blocks = [b for stage in model.stages for b in stage]
    return blocks[1:]


# ------------------------------------------------------------ with_cp --

@pytest.mark.parametrize('with_cp,training,expected', [
    (True, True, 2),    # forward + recomputation during backward
    (False, True, 1),
    (True, False, 1),   # eval: nothing to recompute
])
def test_with_cp_recomputes_every_block_in_backward(with_cp, training,
                                                    expected):
    model = MobileNetV2(widen_factor=0.35, out_indices=(4, ),
                        with_cp=with_cp).train(training)
    blocks = v2_blocks(model)
    calls = [0] * len(blocks)
    # Pre-hooks: torch's recomputation stops as soon as it has rebuilt the
    # saved tensors, before a block's forward returns.
    for i, block in enumerate(blocks):
        block.register_forward_pre_hook(
            lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    stem_calls = []
    model.stages[0][0].register_forward_pre_hook(
        lambda *_: stem_calls.append(1))
    x = torch.randn(2, 3, 32, 32)  # images do not require grad
    if training:
        model(x)[0].sum().backward()
    else:
        with torch.no_grad():
            model(x)
    assert calls == [expected] * V2_BLOCKS
    # The stem sees the image, which needs no gradient: not checkpointed.
    assert len(stem_calls) == 1


# --------------------------------------------------------- drop path --

def test_drop_path_rate_of_each_block_is_linear_in_its_index():
    model = MobileNetV2(widen_factor=0.35, drop_path_rate=0.2)
    rates = [b.drop_path.drop_prob if b.drop_path is not None else 0.
             for b in v2_blocks(model)]
    expected = [0.2 * i / V2_BLOCKS if i in V2_RESIDUAL else 0.
                for i in range(V2_BLOCKS)]
    assert rates == pytest.approx(expected, abs=1e-12)
    assert [b.has_skip for b in v2_blocks(model)] == [
        i in V2_RESIDUAL for i in range(V2_BLOCKS)]


def test_drop_path_is_applied_in_training_only():
    model = MobileNetV2(widen_factor=0.35, drop_path_rate=0.5)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        a, b = model(x)[0], model(x)[0]
    assert torch.equal(a, b)
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        outs = [model(x)[0] for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


# ---------------------------------------------------- output stride --

def depthwise_geometry(model):
    """(stride, dilation) of each block's depthwise conv, per stage."""
    result = []
    blocks = v2_blocks(model)
    for stage in V2_STAGE_BLOCKS:
        row = []
        for i in stage:
            block = blocks[i]
            if isinstance(block, InvertedBottleneck):
                conv = block.mid_dw.conv
                row.append((conv.stride[0], conv.dilation[0]))
        result.append(row)
    return result


@pytest.mark.parametrize('output_stride,stage3,stage4', [
    (32, [(2, 1)] + [(1, 1)] * 6, [(2, 1)] + [(1, 1)] * 3),
    # The block whose stride is removed keeps the previous dilation; the
    # blocks after it get the new one (TF-slim, timm).
    (16, [(2, 1)] + [(1, 1)] * 6, [(1, 1)] + [(1, 2)] * 3),
    (8, [(1, 1)] + [(1, 2)] * 6, [(1, 2)] + [(1, 4)] * 3),
])
def test_dilation_of_each_block(output_stride, stage3, stage4):
    model = MobileNetV2(widen_factor=0.35, output_stride=output_stride)
    geometry = depthwise_geometry(model)
    assert geometry[:3] == [[(1, 1)], [(2, 1), (1, 1)],
                            [(2, 1), (1, 1), (1, 1)]]
    assert geometry[3] == stage3
    assert geometry[4] == stage4
    # Padding follows the dilation: the map keeps its size.
    assert model.out_strides == (min(32, output_stride), )
    (out, ) = model.eval()(torch.zeros(1, 3, 64, 64))
    assert out.shape[-1] == 64 // output_stride


# ------------------------------------------------------ ASPP heads --

def bn_relu(x, module):
    """conv (no bias) + eval BN + ReLU of an mmcv ConvModule, by hand."""
    conv, bn = module.conv, module.bn
    y = F.conv2d(x, conv.weight, conv.bias)
    y = (y - bn.running_mean[:, None, None]) / torch.sqrt(
        bn.running_var[:, None, None] + bn.eps)
    return F.relu(y * bn.weight[:, None, None] + bn.bias[:, None, None])


def test_raspp_head_with_its_pooled_branch_by_hand():
    torch.manual_seed(0)
    head = randomize_bn(RASPPHead(12, 8, num_classes=3))
    x = torch.randn(2, 12, 6, 10)
    pooled = bn_relu(x.mean((2, 3), keepdim=True), head.image_pool_conv)
    branches = torch.cat([bn_relu(x, head.aspp_conv),
                          pooled.expand(-1, -1, 6, 10)], dim=1)
    expected = F.conv2d(bn_relu(branches, head.project),
                        head.conv_seg.weight, head.conv_seg.bias)
    with torch.no_grad():
        out = head([x])
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        # Control: without the pooled branch's contribution the output moves.
        head.image_pool_conv.bn.bias.zero_()
        head.image_pool_conv.bn.weight.zero_()
        assert (head([x]) - out).abs().max() > 1e-3


def test_raspp_pooled_branch_follows_its_pool_options():
    # A 2x2 grid of cells (kernel and stride half the map), resized back.
    torch.manual_seed(0)
    head = randomize_bn(RASPPHead(12, 8, num_classes=3,
                                  pool_kernel=(0.5, 0.5),
                                  pool_stride=(0.5, 0.5)))
    x = torch.randn(1, 12, 8, 8)
    pooled = bn_relu(F.avg_pool2d(x, 4, 4), head.image_pool_conv)
    pooled = F.interpolate(pooled, size=(8, 8), mode='bilinear',
                           align_corners=False)
    branches = torch.cat([bn_relu(x, head.aspp_conv), pooled], dim=1)
    expected = F.conv2d(bn_relu(branches, head.project),
                        head.conv_seg.weight, head.conv_seg.bias)
    with torch.no_grad():
        torch.testing.assert_close(head([x]), expected, rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize('size,kernel,stride,kernel_px,stride_px', [
    # [V3] Figure 10: 49x49, stride (16, 20) on the 64x128 map.
    ((64, 128), (49 / 64, 49 / 128), (16 / 64, 20 / 128), (49, 49),
     (16, 20)),
    # Kernels round up (4.5 -> 5, 3.2 -> 4), strides to the nearest pixel.
    ((15, 16), (0.3, 0.2), (0.2, 0.3), (5, 4), (3, 5)),
    ((16, 32), (0.5, 0.5), (0.25, 0.25), (8, 16), (4, 8)),
])
def test_relative_pool_kernel_and_stride_in_pixels(size, kernel, stride,
                                                   kernel_px, stride_px):
    x = torch.randn(1, 2, *size)
    torch.testing.assert_close(relative_avg_pool(x, kernel, stride),
                               F.avg_pool2d(x, kernel_px, stride_px))


def test_lraspp_pool_options_change_the_gate():
    torch.manual_seed(0)
    kwargs = dict(in_channels=(4, 12), channels=8, num_classes=3)
    paper = randomize_bn(LRASPPHead(**kwargs))
    other = randomize_bn(LRASPPHead(pool_kernel=(0.5, 0.5),
                                    pool_stride=(0.25, 0.25), **kwargs))
    other.load_state_dict(paper.state_dict())
    low, high = torch.randn(1, 4, 32, 64), torch.randn(1, 12, 16, 32)
    # By hand with the options' pixels: an 8x16 pool, stride (4, 8).
    gate = torch.sigmoid(F.conv2d(F.avg_pool2d(high, (8, 16), (4, 8)),
                                  other.gate_conv.conv.weight,
                                  other.gate_conv.conv.bias))
    assert gate.shape[-2:] == (3, 3)
    x = bn_relu(high, other.aspp_conv) * F.interpolate(
        gate, size=(16, 32), mode='bilinear', align_corners=False)
    x = F.interpolate(x, size=(32, 64), mode='bilinear', align_corners=False)
    expected = F.conv2d(x, other.conv_seg.weight, other.conv_seg.bias) + \
        F.conv2d(low, other.conv_seg_low.weight, other.conv_seg_low.bias)
    with torch.no_grad():
        torch.testing.assert_close(other([low, high]), expected, rtol=1e-5,
                                   atol=1e-5)
        assert (other([low, high]) - paper([low, high])).abs().max() > 1e-4


# ------------------------------------------------- attention MAdds --

def test_attention_madds_by_hand():
    c, out_c, heads, kd, vd, kernel = 16, 24, 2, 8, 4, 3
    attn = MultiQueryAttention(c, out_c, heads, kd, vd, kv_stride=2,
                               kv_kernel=kernel,
                               norm_cfg=dict(type='BN')).eval()
    h, w = 8, 12
    queries, keys = h * w, (h // 2) * (w // 2)
    expected = (
        queries * c * heads * kd            # query projection
        + 2 * keys * c * kernel * kernel    # key and value depthwise down
        + keys * c * kd + keys * c * vd     # key and value projections
        + queries * keys * heads * (kd + vd)  # q k^T and attn v
        + queries * heads * vd * out_c)     # output projection
    assert count_madds(attn, torch.zeros(1, c, h, w)) == expected
    assert count_madds(attn, torch.zeros(1, c, h, w),
                       include_attention=False) == \
        expected - queries * keys * heads * (kd + vd)
    # Twice the batch, twice the MAdds.
    assert count_madds(attn, torch.zeros(2, c, h, w)) == 2 * expected


# ---------------------------------------------------- channels-last --

def build_model(path, channels_last):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    cfg.model.backbone.channels_last = channels_last
    torch.manual_seed(0)
    return randomize_bn(MODELS.build(cfg.model))


def flatten(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for o in outputs for t in flatten(o)]


@pytest.mark.parametrize('path,scope,size', [
    ('configs/ssdlite/ssdlite_mobilenetv3-small-scratch_8xb24-660e_coco-320x320.py', 'mmdet', (320, 320)),
    ('configs/retinanet/retinanet_mobilenetv4-conv-medium-imagenet_8xb32-600e_coco-384x384.py', 'mmdet', (128, 128)),
    ('configs/lraspp/lraspp_mobilenetv3-small-rf2-d16_4xb4-90k_cityscapes-769x769.py', 'mmseg', (128, 256)),
])
def test_channels_last_whole_models_give_the_nchw_results(path, scope, size):
    import mmdet.models  # noqa: F401
    import mmseg.models  # noqa: F401
    with DefaultScope.overwrite_default_scope(scope):
        if scope == 'mmseg':
            from mmseg.registry import MODELS
            cfg = Config.fromfile(path)
            cfg.model.data_preprocessor = None
            models = {}
            for mode in ('cpu', False):
                cfg.model.backbone.channels_last = mode
                cfg.model.backbone.norm_cfg = dict(type='BN')
                cfg.model.decode_head.norm_cfg = dict(type='BN')
                torch.manual_seed(0)
                models[mode] = randomize_bn(MODELS.build(cfg.model))
        else:
            models = {mode: build_model(path, mode) for mode in ('cpu', False)}
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            nhwc = models['cpu'](x, mode='tensor')
            nchw = models[False](x, mode='tensor')
            # Control: the channels-last run really is channels-last after
            # the backbone (the first neck/head input).
            maps = models['cpu'].extract_feat(x)
        first = flatten(maps)[0]
        assert first.dim() == 4 and first.shape[-1] > 1
        assert first.is_contiguous(memory_format=torch.channels_last)
        assert not first.is_contiguous()
        a, b = flatten(nhwc), flatten(nchw)
        assert len(a) == len(b) > 0
        for got, want in zip(a, b):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------- split_thr --

def test_nms_class_by_class_keeps_the_detections():
    """The configs' ``split_thr=0`` (mmcv NMS class by class) against one
    NMS over every box with class offsets (mmcv's default below 10000
    boxes): the same boxes, scores and labels."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile('configs/ssdlite/ssdlite_mobilenetv3-small-scratch_8xb24-660e_coco-320x320.py')
    assert cfg.model.test_cfg.nms.split_thr == 0
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = MODELS.build(cfg.model.bbox_head).eval()
    torch.manual_seed(3)
    cls_scores, bbox_preds = [], []
    # logits of scale 2: larger ones saturate the sigmoid into tied scores
    # near 1, whose order the two NMS runs may break differently
    for size, boxes in zip((20, 10, 5, 3, 2, 1), head.num_base_priors):
        cls_scores.append(
            torch.randn(1, boxes * head.cls_out_channels, size, size) * 2)
        bbox_preds.append(torch.randn(1, boxes * 4, size, size))
    meta = [dict(img_shape=(320, 320), ori_shape=(320, 320),
                 scale_factor=(1., 1.))]
    results = {}
    for split_thr in (0, 100000):
        test_cfg = copy.deepcopy(cfg.model.test_cfg)
        test_cfg.nms.split_thr = split_thr
        with torch.no_grad():
            results[split_thr] = head.predict_by_feat(
                cls_scores, bbox_preds, batch_img_metas=meta, cfg=test_cfg,
                rescale=False)[0]
    ours, one_pass = results[0], results[100000]
    assert len(ours) == cfg.model.test_cfg.max_per_img
    assert len(set(ours.labels.tolist())) > 10
    torch.testing.assert_close(ours.bboxes, one_pass.bboxes)
    torch.testing.assert_close(ours.scores, one_pass.scores)
    assert torch.equal(ours.labels, one_pass.labels)
