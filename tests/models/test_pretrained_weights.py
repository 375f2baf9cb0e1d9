"""Loading timm/torchvision ImageNet weights: init_cfg Pretrained (.pth and
.safetensors) and tools/convert_weights.py."""
import os

import pytest
import torch
from mmengine.runner import load_checkpoint
from safetensors.torch import save_file

from mobilenet_mm.analysis.model_stats import build_reference_classifier
from mobilenet_mm.models.backbones import (MobileNetV3, MobileNetV4,
                                           build_backbone_by_name)

from tests.conftest import run_tool


def _reference_state(library, name, seed=0):
    torch.manual_seed(seed)
    model = build_reference_classifier(library, name)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval(), model.state_dict()


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_init_cfg_pretrained_loads_timm_weights(tmp_path, suffix):
    reference, state = _reference_state('timm', 'mobilenetv4_conv_small')
    path = str(tmp_path / f'timm{suffix}')
    if suffix == '.safetensors':
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    backbone = MobileNetV4(arch='conv_small',
                           init_cfg=dict(type='Pretrained', checkpoint=path))
    backbone.init_weights()
    backbone.eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(backbone(x)[0], reference.forward_features(x),
                              rtol=1e-4, atol=1e-5)


def test_init_cfg_pretrained_loads_torchvision_weights_and_logs(tmp_path):
    import logging

    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    MMLogger.get_current_instance().addHandler(handler)
    reference, state = _reference_state('torchvision', 'mobilenet_v3_large')
    path = str(tmp_path / 'tv.pth')
    torch.save(state, path)
    backbone = MobileNetV3(
        arch='large', norm_cfg=dict(type='BN', eps=1e-3),
        init_cfg=dict(type='Pretrained', checkpoint=path))
    backbone.init_weights()
    backbone.eval()
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        assert torch.allclose(backbone(x)[0], reference.features(x),
                              rtol=1e-4, atol=1e-5)
    MMLogger.get_current_instance().removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert any('dropped classifier keys: classifier.0.weight' in m
               for m in messages), messages


def test_pretrained_with_prefix_from_a_detector_checkpoint(tmp_path):
    source = MobileNetV3(arch='small').eval()
    path = str(tmp_path / 'detector.pth')
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in
                                source.state_dict().items()},
                    meta={}), path)
    target = MobileNetV3(arch='small', init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.'))
    target.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key


def test_wrong_architecture_is_reported_by_key(tmp_path):
    _, state = _reference_state('torchvision', 'mobilenet_v3_small')
    path = str(tmp_path / 'small.pth')
    torch.save(state, path)
    backbone = MobileNetV3(arch='large', init_cfg=dict(type='Pretrained',
                                                       checkpoint=path))
    with pytest.raises(ValueError, match=r'features\.\S+ .* would load into '
                       r'stages\.'):
        backbone.init_weights()


def test_convert_weights_tool_output_loads_strictly(tmp_path):
    reference, state = _reference_state('timm', 'mobilenetv1_100')
    src, dst = str(tmp_path / 'v1.pth'), str(tmp_path / 'v1_mm.pth')
    torch.save(state, src)
    result = run_tool('tools/convert_weights.py', src, dst, '--arch', 'v1')
    assert result.returncode == 0, result.stderr
    assert 'dropped 2 classifier keys: classifier.weight, classifier.bias' \
        in result.stdout
    backbone = build_backbone_by_name('v1').eval()
    load_checkpoint(backbone, dst, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(backbone(x)[0], reference.forward_features(x),
                              rtol=1e-4, atol=1e-5)
    # Refuses to overwrite, and a mismatching arch is one clear line.
    again = run_tool('tools/convert_weights.py', src, dst, '--arch', 'v1')
    assert again.returncode != 0 and 'exists' in again.stderr
    wrong = run_tool('tools/convert_weights.py', src, tmp_path / 'x.pth',
                     '--arch', 'v2')
    assert wrong.returncode != 0
    assert wrong.stderr.strip().count('\n') == 0
    assert 'does not fit this architecture' in wrong.stderr
    assert not os.path.exists(tmp_path / 'x.pth')
