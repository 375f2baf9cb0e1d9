"""ONNX export of every config, every backbone and the export CLI: parity
with onnxruntime on raw outputs and on the detections after NMS."""
import glob
import os.path as osp

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn

from mobilenet_mm.deploy.build import (build_config_model, calibrate_bn,
                                       load_config_file)
from mobilenet_mm.deploy.onnx_export import (BackboneExport, DetectorExport,
                                             _BatchedNMS, build_export_module,
                                             detections_from_raw,
                                             detections_match, export_onnx,
                                             verify_export)
from mobilenet_mm.models.backbones import ARCH_NAMES, build_backbone_by_name

from tests.conftest import REPO as ROOT

CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p.split(osp.sep))
DET_SHAPE = (64, 64)  # six SSDLite maps (4, 2, 1, 1, 1, 1), P3-P7 too
SEG_SHAPE = (64, 128)


def calibrated(model: nn.Module, shape, seed: int = 0, **kwargs):
    """Random BN affines and the BN statistics of the model's own
    activations: well-conditioned random weights (see calibrate_bn)."""
    inputs = torch.randn(8, 3, *shape,
                         generator=torch.Generator().manual_seed(seed))
    return calibrate_bn(model, inputs, seed=seed, **kwargs)


@torch.no_grad()
def spread_scores(model, shape, std=3., mean=-3.):
    """Rescale each class predictor so its logits have the given mean and
    std: scores spread out as a trained model's do, instead of all sitting
    near the prior (RetinaNet's 0.01 is below its 0.05 threshold), so that
    NMS has real work and few near-ties."""
    head = model.bbox_head
    priors = head.num_base_priors  # a list (SSD heads) or an int
    priors = set(priors) if isinstance(priors, (list, tuple)) else {priors}
    finals = [m for n, m in head.named_modules()
              if isinstance(m, nn.Conv2d) and 'cls' in n
              and m.kernel_size == (1, 1)
              and m.out_channels % head.cls_out_channels == 0
              and m.out_channels // head.cls_out_channels in priors]
    assert finals
    outputs = {id(m): [] for m in finals}
    hooks = [m.register_forward_hook(
        lambda module, _, out: outputs[id(module)].append(out.flatten()))
        for m in finals]
    model(torch.randn(2, 3, *shape,
                      generator=torch.Generator().manual_seed(9)),
          mode='tensor')
    for hook in hooks:
        hook.remove()
    for conv in finals:
        logits = torch.cat(outputs[id(conv)])
        scale = std / logits.std().clamp(min=1e-12)
        conv.weight.mul_(scale)
        conv.bias.copy_((conv.bias - logits.mean()) * scale + mean)
    return model


def build_for_test(config, shape, seed: int = 0):
    """A config's model with calibrated random weights (detectors: with
    spread scores)."""
    if isinstance(config, str):
        config = load_config_file(config)
    # He init, as the parity cases were chosen with: the configs' from-scratch
    # normal(0, 0.03) (issue 14) packs a random detector's scores so close
    # together that float32 noise reorders them; parity is about the graph.
    config.model.backbone.init_cfg = None
    model = calibrated(build_config_model(config, shape), shape, seed,
                       mode='tensor')
    if hasattr(model, 'bbox_head'):
        spread_scores(model, shape)
    return model


def op_types(path):
    return {node.op_type for node in onnx.load(path).graph.node}


def shape_of(cfg):
    return SEG_SHAPE if cfg.get('default_scope') == 'mmseg' else DET_SHAPE


def predict_like_mmdet(model, image):
    """mmdet's own pipeline tail on the same image: data preprocessor, then
    ``predict`` without rescaling."""
    from mmdet.structures import DetDataSample
    height, width = image.shape[-2:]
    samples = [DetDataSample(metainfo=dict(
        img_shape=(height, width), ori_shape=(height, width),
        scale_factor=(1., 1.))) for _ in range(len(image))]
    data = model.data_preprocessor(
        dict(inputs=list(image), data_samples=samples), False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'],
                                rescale=False)
    return [r.pred_instances for r in results]


@pytest.mark.skipif(not CONFIGS, reason='no configs yet')
@pytest.mark.parametrize('config', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_export_parity(config, tmp_path):
    cfg = load_config_file(config)
    shape = shape_of(cfg)
    model = build_for_test(cfg, shape)
    wrapper = build_export_module(model, shape)
    path = str(tmp_path / 'model.onnx')
    names = export_onnx(wrapper, shape, path, batch=2)
    proto = onnx.load(path)
    assert max(o.version for o in proto.opset_import
               if o.domain in ('', 'ai.onnx')) >= 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    # A batch other than the traced one: the batch axis is dynamic.
    result = verify_export(wrapper, path, shape, batch=1,
                           float64_fallback=True)
    assert result.ok, result.lines
    if isinstance(wrapper, DetectorExport):
        assert names == ['boxes', 'scores']
        # The raw outputs, post-processed as mmdet does, are mmdet's own
        # detections.
        image = torch.rand(2, 3, *shape,
                           generator=torch.Generator().manual_seed(5)) * 255
        with torch.no_grad():
            boxes, scores = wrapper(image)
        ours = detections_from_raw(wrapper.head, boxes, scores,
                                   wrapper.level_sizes)
        for got, expected in zip(ours, predict_like_mmdet(model, image)):
            assert len(expected) > 0
            cfg = model.bbox_head.test_cfg
            match, message = detections_match(
                got, expected, cfg.nms.iou_threshold,
                score_floor=cfg.score_thr, cap=cfg.max_per_img)
            assert match, message
    else:
        assert names == ['logits']
        assert 'HardSwish' in op_types(path) or 'v3' not in osp.basename(
            config)


@pytest.mark.parametrize('config', [
    'ssdlite_v3.py',
    'retinanet/retinanet_mobilenetv4-conv-medium-imagenet_8xb32-600e_coco-'
    '384x384.py'])
def test_detector_exports_nms_in_graph(config, tmp_path):
    path_cfg = osp.join(ROOT, 'configs', config)
    if not osp.isfile(path_cfg):
        pytest.skip(f'{config} does not exist yet')
    model = build_for_test(path_cfg, DET_SHAPE)
    wrapper = build_export_module(model, DET_SHAPE, with_nms=True)
    path = str(tmp_path / 'nms.onnx')
    names = export_onnx(wrapper, DET_SHAPE, path)
    assert names == ['det_boxes', 'det_scores', 'det_labels', 'det_batch']
    assert 'NonMaxSuppression' in op_types(path)
    result = verify_export(wrapper, path, DET_SHAPE, batch=2)
    assert result.ok, result.lines
    image = torch.rand(2, 3, *DET_SHAPE) * 255
    with torch.no_grad():
        boxes, scores, labels, batch = wrapper(image)
    assert len(boxes) > 0 and set(batch.tolist()) == {0, 1}
    max_per_class, _, score_thr = wrapper.nms_args
    assert bool((scores > score_thr).all())
    groups = torch.stack([batch, labels], 1).unique(dim=0, return_counts=True)
    assert int(groups[1].max()) <= max_per_class


def test_batched_nms_selects_per_image_and_class():
    from torchvision.ops import nms
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(2, 40, 2, generator=generator) * 50
    boxes = torch.cat([corners, corners + 5 + torch.rand(
        2, 40, 2, generator=generator) * 20], dim=-1)
    scores = torch.rand(2, 3, 40, generator=generator)
    selected = _BatchedNMS.apply(boxes, scores, 4, 0.3, 0.2)
    expected = []
    for image in range(2):
        for cls in range(3):
            keep = (scores[image, cls] > 0.2).nonzero()[:, 0]
            kept = keep[nms(boxes[image, keep], scores[image, cls, keep],
                            0.3)][:4]
            expected += [[image, cls, int(i)] for i in kept]
    assert selected.tolist() == expected


class _BackboneHolder(nn.Module):
    """What BackboneExport reads from a detector: a backbone and a data
    preprocessor."""

    def __init__(self, backbone):
        super().__init__()
        from mmengine.model import ImgDataPreprocessor
        self.backbone = backbone
        self.data_preprocessor = ImgDataPreprocessor(
            mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True)


# Every block type (V1 separable, V2 inverted residual, V3 SE + hard-swish,
# V3 minimalistic, V4 UIB/FusedIB, V4 Mobile MQA); the other archs are
# exported inside their SSDLite configs above.
BACKBONE_ARCHS = ['v1', 'v2', 'v3_large', 'v3_small_minimalistic',
                  'v4_conv_small', 'v4_hybrid_medium']


def test_backbone_archs_exist():
    assert set(BACKBONE_ARCHS) <= set(ARCH_NAMES)


@pytest.mark.parametrize('arch', BACKBONE_ARCHS)
def test_backbone_export_parity(arch, tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone_by_name(arch, out_indices=(1, 2, 3, 4))
    calibrated(backbone, (64, 64))
    wrapper = BackboneExport(_BackboneHolder(backbone))
    path = str(tmp_path / 'backbone.onnx')
    shape = (64, 64)
    names = export_onnx(wrapper, shape, path)
    assert names == ['feat0', 'feat1', 'feat2', 'feat3']
    result = verify_export(wrapper, path, shape, batch=1,
                           float64_fallback=True)
    assert result.ok, result.lines
    ops = op_types(path)
    if arch == 'v3_large':
        # Exported as the native opset-14+ ops, not decomposed.
        assert {'HardSwish', 'HardSigmoid'} <= ops
    if arch.startswith('v4_hybrid'):
        assert {'MatMul', 'Softmax'} <= ops


def test_export_rejects_old_opset(tmp_path):
    backbone = build_backbone_by_name('v3_small')
    wrapper = BackboneExport(_BackboneHolder(backbone).eval())
    with pytest.raises(ValueError, match='opset must be >= 17'):
        export_onnx(wrapper, (64, 64), str(tmp_path / 'x.onnx'), opset=13)


def test_detections_match_tells_noise_from_bugs():
    from mobilenet_mm.deploy.onnx_export import Detections
    generator = torch.Generator().manual_seed(0)
    corners = torch.arange(40.)[:, None].repeat(1, 2) * 30  # disjoint
    boxes = torch.cat([corners, corners + 20], dim=1)
    scores = torch.linspace(0.9, 0.1, 40)
    labels = torch.randint(0, 5, (40, ), generator=generator)
    base = Detections(boxes, scores, labels)

    def variant(boxes=boxes, scores=scores, labels=labels, keep=None):
        keep = torch.ones(40, dtype=torch.bool) if keep is None else keep
        return Detections(boxes[keep], scores[keep], labels[keep])

    def same(other, **kwargs):
        return detections_match(base, other, 0.5, score_floor=0.05,
                                **kwargs)[0]

    order = torch.randperm(40, generator=generator)
    assert same(Detections(boxes[order], scores[order], labels[order]))
    assert not same(variant(boxes=boxes + 3.))  # every box shifted
    relabelled = labels.clone()
    relabelled[3] = (relabelled[3] + 1) % 5
    assert not same(variant(labels=relabelled))
    dropped = torch.ones(40, dtype=torch.bool)
    dropped[5] = False  # a confident, isolated detection lost
    assert not same(variant(keep=dropped))
    # The lowest detection sits at the threshold: keeping it or not is
    # float noise.
    at_floor = scores.clone()
    at_floor[-1] = 0.05
    lowest_lost = torch.ones(40, dtype=torch.bool)
    lowest_lost[-1] = False
    assert detections_match(Detections(boxes, at_floor, labels),
                            variant(scores=at_floor, keep=lowest_lost), 0.5,
                            score_floor=0.05, score_eps=1e-4)[0]
    # Two same-class boxes overlapping at the NMS threshold with equal
    # scores: either one may survive.
    twin = Detections(boxes[:1] + torch.tensor([[2., 0., 2., 0.]]),
                      scores[:1], labels[:1])
    swapped = Detections(torch.cat([twin.boxes, boxes[1:]]), scores,
                         labels)
    assert detections_match(base, swapped, 0.5, score_eps=1e-4)[0]


# -- the CLI -----------------------------------------------------------------
def _load_cli():
    from tools.deploy import export_onnx
    return export_onnx


def run_cli(argv):
    from mobilenet_mm.apis.cli import run_cli as run
    return run(_load_cli().main, argv)


SSDLITE_V3 = osp.join(ROOT, 'configs', 'ssdlite_v3.py')
LRASPP_V3 = osp.join(
    ROOT, 'configs', 'lraspp',
    'lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_cityscapes-769x769.py')


@pytest.mark.skipif(not osp.isfile(SSDLITE_V3), reason='no SSDLite config')
def test_cli_exports_checkpoint_fused(tmp_path, capsys):
    model = build_for_test(SSDLITE_V3, DET_SHAPE, seed=3)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    out = str(tmp_path / 'det.onnx')
    assert run_cli([SSDLITE_V3, checkpoint, '--out', out, '--shape', '64',
                    '64', '--fuse']) == 0
    printed = capsys.readouterr().out
    assert 'fused' in printed and 'FAILED' not in printed
    assert 'after NMS' in printed and osp.isfile(out)
    # The file holds the checkpoint's weights: its raw outputs are those of
    # the (unfused) model the checkpoint came from.
    from mobilenet_mm.deploy.onnx_export import ort_session, run_ort
    image = torch.rand(1, 3, *DET_SHAPE) * 255
    with torch.no_grad():
        boxes, scores = build_export_module(model, DET_SHAPE)(image)
    got_boxes, got_scores = run_ort(ort_session(out), image)
    assert np.abs(got_scores - scores.numpy()).max() <= 1e-4 * float(
        scores.abs().max())
    assert np.abs(got_boxes - boxes.numpy()).max() <= 1e-4 * 64


@pytest.mark.skipif(not osp.isfile(SSDLITE_V3), reason='no SSDLite config')
def test_cli_backbone_only(tmp_path, capsys):
    out = str(tmp_path / 'bb.onnx')
    assert run_cli([SSDLITE_V3, '--backbone-only', '--out', out, '--shape',
                    '64', '64']) == 0
    assert [o.name for o in onnx.load(out).graph.output] == ['feat0',
                                                             'feat1']
    assert 'ok' in capsys.readouterr().out


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    cases = [
        ([str(tmp_path / 'missing.py')], 'config file does not exist'),
        ([SSDLITE_V3, str(tmp_path / 'missing.pth')],
         'checkpoint file does not exist'),
        ([SSDLITE_V3, '--opset', '16'], '--opset must be 17 or newer'),
        ([SSDLITE_V3, '--with-nms', '--backbone-only'], 'exclude each other'),
        ([LRASPP_V3, '--with-nms'], 'applies to detection configs'),
    ]
    for argv, message in cases:
        assert run_cli(argv) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(not osp.isfile(SSDLITE_V3), reason='no SSDLite config')
def test_cli_refuses_checkpoint_of_another_model(tmp_path, capsys):
    checkpoint = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict={'backbone.other.weight': torch.zeros(1)}),
               checkpoint)
    assert run_cli([SSDLITE_V3, checkpoint]) == 1
    err = capsys.readouterr().err
    assert 'does not match the model' in err
    assert len(err.strip().splitlines()) == 1
