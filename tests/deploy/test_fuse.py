"""Conv + BN fusion for inference: same outputs, fewer layers."""
import copy
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm

from mobilenet_mm.deploy import fold_bn_into_conv, fuse_conv_bn
from mobilenet_mm.models.backbones import ARCH_NAMES, build_backbone_by_name
from mobilenet_mm.models.layers import MobileMQA
from mobilenet_mm.models.necks import SeparableConv2d

from tests.conftest import REPO as ROOT
from tests.conftest import randomize_bn

CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p.split(osp.sep))
RTOL = 1e-4


def assert_close(fused_out, reference_out):
    """Every output within RTOL of the reference's largest magnitude."""
    if isinstance(reference_out, torch.Tensor):
        fused_out, reference_out = [fused_out], [reference_out]
    assert len(fused_out) == len(reference_out)
    for got, ref in zip(fused_out, reference_out):
        if isinstance(ref, (list, tuple)):
            assert_close(got, ref)
            continue
        scale = ref.abs().max().item()
        assert scale > 0
        error = (got - ref).abs().max().item()
        assert error <= RTOL * scale, f'{error:.3g} vs scale {scale:.3g}'


def count_bn(model):
    return sum(isinstance(m, _BatchNorm) for m in model.modules())


def fused_copy(model):
    return fuse_conv_bn(copy.deepcopy(model))


@pytest.mark.parametrize('arch', list(ARCH_NAMES))
def test_backbone_fusion_keeps_outputs(arch):
    model = randomize_bn(build_backbone_by_name(
        arch, out_indices=(0, 1, 2, 3, 4), drop_path_rate=0.1))
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model(x)
        fused = fused_copy(model)
        got = fused(x)
    assert_close(got, reference)
    # Every BN is gone except the norm in front of a Mobile MQA whose keys
    # and values start with a strided (padded) conv: that one cannot fold.
    kept = [m for m in fused.modules() if isinstance(m, MobileMQA)
            and isinstance(m.norm, _BatchNorm)]
    assert all(not isinstance(m.attn.key[0], nn.Conv2d) for m in kept)
    assert count_bn(fused) == len(kept)
    assert fused.fused_bn_count == count_bn(model) - len(kept)
    assert all(getattr(m, 'drop_path', None) is None and getattr(
        m, 'layer_scale', None) is None for m in fused.modules()
        if hasattr(m, 'drop_path'))
    assert not fused.training


def test_layer_scale_and_mqa_norm_are_folded():
    model = randomize_bn(build_backbone_by_name('v4_hybrid_medium'))
    blocks = [m for m in model.modules() if isinstance(m, MobileMQA)]
    unstrided = [b for b in blocks if isinstance(b.attn.key[0], nn.Conv2d)]
    assert unstrided and len(unstrided) < len(blocks)  # both kinds exist
    fused = fused_copy(model)
    for block in fused.modules():
        if isinstance(block, MobileMQA):
            assert block.layer_scale is None
            strided = not isinstance(block.attn.key[0], nn.Conv2d)
            assert isinstance(block.norm, _BatchNorm) == strided


def test_fold_bn_into_conv_matches_pair():
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=True)
    bn = randomize_bn(nn.BatchNorm2d(6))
    x = torch.randn(1, 4, 7, 7)
    with torch.no_grad():
        reference = bn(conv(x))
        fold_bn_into_conv(conv, bn)
        assert_close(conv(x), reference)


def test_conv_module_orders_and_separable_conv():
    x = torch.randn(2, 8, 9, 9)
    fused_order = randomize_bn(ConvModule(8, 8, 3, padding=1,
                                          norm_cfg=dict(type='BN'),
                                          order=('act', 'conv', 'norm')))
    # The norm precedes the conv here: folding it after would be wrong.
    kept_order = randomize_bn(ConvModule(8, 8, 3, padding=1,
                                         norm_cfg=dict(type='BN'),
                                         order=('norm', 'conv', 'act')))
    separable = randomize_bn(ConvModule(
        8, 16, 3, padding=1, conv_cfg=dict(type=SeparableConv2d),
        norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU6')))
    for module, folds in ((fused_order, 1), (kept_order, 0),
                          (separable, 1)):
        with torch.no_grad():
            reference = module(x)
            fused = fused_copy(module)
            assert_close(fused(x), reference)
        assert fused.fused_bn_count == folds
        assert count_bn(fused) == 1 - folds
        assert fused.with_norm == (folds == 0)


def test_plain_sequential_like_torchvision():
    import torchvision
    model = randomize_bn(torchvision.models.mobilenet_v3_small(weights=None))
    model.classifier[2].p = 0.5  # dropped in the fused model
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        fused = fused_copy(model)
        assert_close(fused(x), reference)
    assert count_bn(fused) == 0
    assert not any(isinstance(m, (nn.Identity, nn.Dropout))
                   for m in fused.modules())


def test_custom_sequential_forward_is_left_alone():
    class Reversed(nn.Sequential):
        def forward(self, x):  # runs the children backwards
            for module in reversed(self):
                x = module(x)
            return x

    model = randomize_bn(Reversed(nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1)))
    fused = fused_copy(model)
    assert fused.fused_bn_count == 0 and count_bn(fused) == 1


def test_rejects_non_module():
    with pytest.raises(TypeError, match='nn.Module'):
        fuse_conv_bn({'not': 'a model'})


def _config_shape(cfg):
    return (64, 128) if cfg.get('default_scope') == 'mmseg' else (96, 96)


def _flatten(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in _flatten(item)]


def _relative_errors(outputs, reference):
    return [((got.double() - ref).abs().max() / ref.abs().max()).item()
            for got, ref in zip(_flatten(outputs), _flatten(reference))]


@pytest.mark.skipif(not CONFIGS, reason='no configs yet')
@pytest.mark.parametrize('config', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_model_fusion_keeps_outputs(config):
    """Whole detectors and segmentors. With random BN statistics, deep
    outputs of these models carry float32 rounding of about 1e-4 already
    (unfused float32 against float64), so the check is twofold: in float64
    the fused model equals the unfused one (the folding is exact), and in
    float32 it is within 1e-4, or within the unfused model's own float32
    error where that is larger."""
    from mmengine.config import Config

    from mobilenet_mm.deploy.build import build_config_model
    cfg = Config.fromfile(config)
    model = randomize_bn(build_config_model(cfg))
    x = torch.randn(2, 3, *_config_shape(cfg),
                    generator=torch.Generator().manual_seed(2))
    model64 = copy.deepcopy(model).double()
    with torch.no_grad():
        reference64 = model64(x.double(), mode='tensor')
        fused64 = fused_copy(model64)
        exact = _relative_errors(fused64(x.double(), mode='tensor'),
                                 reference64)
        unfused32 = _relative_errors(model(x, mode='tensor'), reference64)
        fused = fused_copy(model)
        fused32 = _relative_errors(fused(x, mode='tensor'), reference64)
    assert max(exact) < 1e-9
    for own, got in zip(unfused32, fused32):
        assert got <= max(RTOL, 3 * own), (got, own)
    assert fused.fused_bn_count > 0
    # Only a Mobile MQA norm before strided keys/values may remain.
    assert count_bn(fused) == sum(
        isinstance(m, MobileMQA) and isinstance(m.norm, _BatchNorm)
        for m in fused.modules())


def test_fuse_hook_folds_the_runner_model_before_testing():
    from types import SimpleNamespace

    from mmengine.logging import MMLogger
    from mmengine.registry import HOOKS
    hook = HOOKS.build(dict(type='mobilenet_mm.FuseConvBNHook'))
    model = randomize_bn(build_backbone_by_name('v3_small'))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
    model.train()  # as a runner may leave it; the hook fuses for eval
    runner = SimpleNamespace(model=model,
                             logger=MMLogger.get_current_instance())
    hook.before_test(runner)
    assert count_bn(model) == 0 and not model.training
    with torch.no_grad():
        assert_close(model(x), reference)
