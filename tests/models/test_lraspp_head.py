"""LR-ASPP and R-ASPP heads: the computation of [V3] Figure 10, the gate
pool that follows the input size, registration in our scope only."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mobilenet_mm.analysis import count_madds, count_params
from mobilenet_mm.models.decode_heads import LRASPPHead, RASPPHead
from mobilenet_mm.models.decode_heads.lraspp_head import (PAPER_POOL_KERNEL,
                                                          PAPER_POOL_STRIDE,
                                                          relative_avg_pool)

from tests.conftest import randomize_bn


def features(low=(2, 40, 32, 64), high=(2, 480, 16, 32), seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*low, generator=gen), torch.randn(*high,
                                                           generator=gen)]


def test_forward_gives_logits_at_the_low_level_resolution():
    head = LRASPPHead((40, 480), 128, num_classes=19)
    out = head(features())
    assert out.shape == (2, 19, 32, 64)


def test_matches_figure_10_computed_by_hand():
    head = randomize_bn(LRASPPHead((40, 480), 16, num_classes=5))
    for p in head.parameters():  # the class convs start near zero
        p.data.normal_(0, 0.2)
    low, high = features(high=(2, 480, 64, 128), low=(2, 40, 128, 256))

    conv, bn = head.aspp_conv.conv, head.aspp_conv.bn
    a = F.conv2d(high, conv.weight)
    a = (a - bn.running_mean[:, None, None]) / torch.sqrt(
        bn.running_var[:, None, None] + bn.eps)
    a = F.relu(a * bn.weight[:, None, None] + bn.bias[:, None, None])
    # Paper geometry on a 64x128 map: 49x49 average pool, stride (16, 20).
    pooled = F.avg_pool2d(high, 49, (16, 20))
    assert pooled.shape[-2:] == (1, 4)
    gate = torch.sigmoid(F.conv2d(pooled, head.gate_conv.conv.weight,
                                  head.gate_conv.conv.bias))
    gate = F.interpolate(gate, size=(64, 128), mode='bilinear',
                         align_corners=False)
    x = F.interpolate(a * gate, size=(128, 256), mode='bilinear',
                      align_corners=False)
    expected = F.conv2d(x, head.conv_seg.weight, head.conv_seg.bias) + \
        F.conv2d(low, head.conv_seg_low.weight, head.conv_seg_low.bias)
    with torch.no_grad():
        out = head([low, high])
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('size', [(16, 32), (32, 64), (49, 49), (48, 96),
                                  (64, 128)])
def test_gate_pool_follows_the_input_size(size):
    # Maps of 256x512 ... 1024x2048 inputs and of 769x769 crops at OS16:
    # always the paper's 1x4 grid, where a fixed 49x49 pool would fail on
    # small maps and change its grid with the input.
    x = torch.randn(1, 3, *size)
    pooled = relative_avg_pool(x, PAPER_POOL_KERNEL, PAPER_POOL_STRIDE)
    assert pooled.shape[-2:] == (1, 4)


def test_global_pool_option():
    x = torch.randn(2, 3, 13, 29)
    pooled = relative_avg_pool(x, (1., 1.), (1., 1.))
    torch.testing.assert_close(pooled, x.mean((2, 3), keepdim=True))
    head = LRASPPHead((8, 16), 4, num_classes=3, pool_kernel=(1., 1.),
                      pool_stride=(1., 1.)).eval()
    low, high = features(low=(1, 8, 26, 58), high=(1, 16, 13, 29))
    # A global gate is one value per channel: every position is gated alike.
    gate = head.gate_conv(relative_avg_pool(high, (1., 1.), (1., 1.)))
    assert gate.shape == (1, 4, 1, 1)
    assert head([low, high]).shape == (1, 3, 26, 58)


def test_madds_put_the_class_conv_at_one_eighth():
    # [V3] Table 7 rows 3/4 (F 256 -> 128) differ by 0.26B MAdds: that is
    # the high-level 1x1 conv at 1/16 plus the class conv at 1/8.
    low_c, high_c, f, k = 40, 480, 128, 19
    head = LRASPPHead((low_c, high_c), f, num_classes=k)
    low, high = torch.zeros(1, low_c, 128, 256), torch.zeros(1, high_c, 64,
                                                             128)
    expected = (high_c * f * 64 * 128 + high_c * f * 1 * 4 +
                f * k * 128 * 256 + low_c * k * 128 * 256)
    assert count_madds(head, [low, high]) == expected
    expected_params = (high_c * f + 2 * f + high_c * f + f + f * k + k +
                       low_c * k + k)
    assert count_params(head) == expected_params


def test_every_parameter_gets_a_gradient():
    head = LRASPPHead((40, 480), 32, num_classes=7).train()
    head(features()).sum().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_class_layers_are_the_two_class_convs():
    head = LRASPPHead((40, 480), 128, num_classes=19)
    assert head.class_layers == ('conv_seg', 'conv_seg_low')
    for name in head.class_layers:
        assert getattr(head, name).out_channels == 19
    # Initialised like mmseg's conv_seg: small normal weights, zero bias.
    head.init_weights()
    for name in head.class_layers:
        layer = getattr(head, name)
        assert layer.weight.std() < 0.02 and layer.bias.abs().max() == 0


def test_raspp_head():
    head = randomize_bn(RASPPHead(320, 256, num_classes=19))
    x = torch.randn(2, 320, 16, 32)
    out = head([x])
    assert out.shape == (2, 19, 16, 32)
    # Two branches of F from the input, projection 2F -> F (all with BN),
    # the class conv: [V3] Table 7 row 1's head on MobileNetV2's 320 ch.
    f = 256
    assert count_params(head) == (2 * (320 * f + 2 * f) + 2 * f * f + 2 * f +
                                  f * 19 + 19)
    # The image-pooling branch is global: it is constant over positions.
    pooled = head.image_pool_conv(x.mean((2, 3), keepdim=True))
    assert pooled.shape == (2, f, 1, 1)


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=480), 'two feature maps'),
    (dict(in_channels=(40, 480), in_index=0), 'two feature maps'),
    (dict(in_channels=(40, 480), pool_kernel=(0., 1.)), 'pool_kernel'),
    (dict(in_channels=(40, 480), pool_stride=(0.5, 2)), 'pool_stride'),
    (dict(in_channels=(40, 480), input_transform='resize_concat'),
     'input_transform'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LRASPPHead(channels=8, num_classes=3, **kwargs)


def test_raspp_takes_one_map():
    with pytest.raises(ValueError, match='one feature map'):
        RASPPHead((40, 480), 8, num_classes=3)


def test_registered_in_our_scope_only():
    import mmseg.models  # noqa: F401  (mmseg's LRASPPHead)
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as MMSEG_MODELS

    from mobilenet_mm.registry import MODELS
    cfg = dict(in_channels=(40, 480), in_index=(0, 1), channels=16,
               num_classes=3)
    with DefaultScope.overwrite_default_scope('mmseg'):
        ours = MMSEG_MODELS.build(dict(type='mobilenet_mm.LRASPPHead', **cfg))
        raspp = MMSEG_MODELS.build(
            dict(type='mobilenet_mm.RASPPHead', in_channels=40, channels=8,
                 num_classes=3))
        theirs = MMSEG_MODELS.build(
            dict(type='LRASPPHead', in_channels=(16, 24, 40),
                 in_index=(0, 1, 2), channels=16, input_transform=
                 'multiple_select', num_classes=3))
    assert type(ours) is LRASPPHead and type(raspp) is RASPPHead
    assert type(theirs) is not LRASPPHead
    assert type(theirs).__module__.startswith('mmseg.')
    assert MODELS.get('LRASPPHead') is LRASPPHead
    assert 'LRASPPHead' not in MMSEG_MODELS.module_dict or \
        MMSEG_MODELS.module_dict['LRASPPHead'] is not LRASPPHead
