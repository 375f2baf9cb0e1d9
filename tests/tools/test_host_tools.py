"""The shipped configs under mmdet's and mmseg's own tools and APIs.

Tiny variants of configs/ssdlite_v3.py and the LR-ASPP-V3-Small Cityscapes
config (tests/configs/host_*.py: same hooks, dataset classes, transforms and channels-last backbones) train on generated
data with the ``train.py`` and
``test.py`` shipped inside the mmdet and mmseg wheels (``.mim/tools``),
resume, and predict through ``DetInferencer``, ``MMSegInferencer`` and
``mmseg.apis.inference_model``. The guards the configs carry hold there: a
NaN loss ends the run with a non-zero status and no checkpoint after it,
``last_checkpoint`` goes through the atomic hook. Also here: channels-last
gives host two-stage detectors (RoIAlign) the same results, the
checkpoint-backend opt-out, and ONNX export of LR-ASPP at dynamic sizes.
"""
import copy
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys

import mmdet
import mmseg
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mobilenet_mm.datasets import (generate_cityscapes_segmentation,
                                   generate_coco_detection)

from tests.conftest import REPO, TEST_CONFIGS as CONFIGS, run_tool

# Every shipped config: the family folders, the demo and the short entry
# points at the top (not the _base_ parts).
SHIPPED = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in osp.relpath(p, REPO).split(osp.sep))
MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')


# Configs with mmdet::/mmseg:: bases load in a fraction of the time in this
# process (conftest.fast_host_base_lookup); the host tools keep mmengine's
# own lookup.
pytestmark = pytest.mark.usefixtures('fast_host_base_lookup')


def output(proc):
    return proc.stdout + proc.stderr


def assert_ok(proc):
    assert proc.returncode == 0, output(proc)[-4000:]


def last_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ''


def write_config(path, base, root, det):
    lines = [
        f'_base_ = [{osp.join(CONFIGS, base)!r}]',
        f'root = {root + "/"!r}',
        'train_dataloader = dict(dataset=dict(data_root=root))',
        'val_dataloader = dict(dataset=dict(data_root=root))',
        'test_dataloader = val_dataloader',
    ]
    if det:
        lines += [
            "val_evaluator = dict(ann_file=root + "
            "'annotations/instances_val2017.json')",
            'test_evaluator = val_evaluator',
        ]
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def checkpoint_state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def all_finite(state_dict):
    return all(bool(torch.isfinite(v).all()) for v in state_dict.values()
               if torch.is_floating_point(v))


class HostRun:
    """Train 2 iterations with one host's train.py (and, with ``resume``,
    continue to 4 with its ``--resume``)."""

    def __init__(self, tmp, config, tools, resume):
        self.tmp, self.config, self.tools = tmp, config, tools
        self.work_dir = str(tmp / 'work')
        train = osp.join(tools, 'train.py')
        self.train = run_tool(train, config, '--work-dir', self.work_dir,
                              cwd=tmp)
        assert_ok(self.train)
        self.latest, self.resume = 2, None
        if resume:
            self.resume = run_tool(
                train, config, '--work-dir', self.work_dir, '--resume',
                '--cfg-options', 'train_cfg.max_iters=4', cwd=tmp)
            assert_ok(self.resume)
            self.latest = 4

    def checkpoint(self, iteration=None):
        return osp.join(self.work_dir, f'iter_{iteration or self.latest}.pth')


@pytest.fixture(scope='module')
def det(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('host_det')
    root = generate_coco_detection(
        str(tmp / 'coco'), num_train=4, num_val=2, size=(128, 128), seed=1)
    config = write_config(tmp / 'det.py', 'host_ssdlite.py', root, True)
    # mmdet's --resume is exercised by the NaN test (it resumes, then
    # stops), which keeps the number of slow host runs down.
    return HostRun(tmp, config, MMDET_TOOLS, resume=False)


@pytest.fixture(scope='module')
def seg(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('host_seg')
    root = generate_cityscapes_segmentation(
        str(tmp / 'cityscapes'), num_train=4, num_val=2, size=(64, 128),
        seed=1)
    config = write_config(tmp / 'seg.py', 'host_lraspp.py', root, False)
    run = HostRun(tmp, config, MMSEG_TOOLS, resume=True)
    run.root = root
    return run


# -- train.py, --resume, test.py --------------------------------------------
@pytest.mark.parametrize('name', ['det', 'seg'])
def test_host_train_resume_and_test(name, request):
    run = request.getfixturevalue(name)
    log = output(run.train)
    # The config's hooks are what the host's runner runs.
    for hook in ('NanGuardHook', 'AtomicCheckpointHook',
                 'CheckpointIONoticeHook'):
        assert hook in log
    assert log.count("replaced mmengine's local checkpoint loader") == 1
    # last_checkpoint went through the atomic hook (no staging dir left)
    # and names the newest checkpoint.
    with open(osp.join(run.work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == run.checkpoint()
    assert not osp.exists(osp.join(run.work_dir, '.last_checkpoint_staging'))
    if run.resume is not None:  # continued from iteration 2
        assert 'resumed' in output(run.resume).lower()
        assert 'Iter(train) [3/4]' in output(run.resume)
    assert checkpoint_state(run.checkpoint())['meta']['iter'] == run.latest
    proc = run_tool(osp.join(run.tools, 'test.py'), run.config,
                    run.checkpoint(), '--work-dir', str(run.tmp / 'test'),
                    cwd=run.tmp)
    assert_ok(proc)
    assert ('coco/bbox_mAP' if name == 'det' else 'mIoU') in output(proc)


@pytest.mark.parametrize('name', ['det', 'seg'])
def test_host_train_stops_on_nan_and_keeps_checkpoints(name, request):
    """``--resume`` from the last checkpoint with std=0 in the data
    preprocessor (not in the checkpoint), so every loss is NaN: the run
    fails at the first resumed iteration, no checkpoint is written after
    the last good one, which stays finite and named by last_checkpoint."""
    run = request.getfixturevalue(name)
    work_dir = run.tmp / 'nan'
    shutil.copytree(run.work_dir, work_dir)
    good = str(work_dir / f'iter_{run.latest}.pth')
    (work_dir / 'last_checkpoint').write_text(good)  # the copy's own
    proc = run_tool(
        osp.join(run.tools, 'train.py'), run.config, '--work-dir', work_dir,
        '--resume', '--cfg-options', f'train_cfg.max_iters={run.latest + 2}',
        'model.data_preprocessor.std=[0,0,0]', cwd=run.tmp)
    assert proc.returncode != 0
    assert 'resumed' in output(proc).lower()
    assert (f'NonFiniteLossError: iteration {run.latest + 1}: non-finite '
            'loss') in last_line(proc), output(proc)[-3000:]
    assert sorted(p.name for p in work_dir.glob('*.pth')) == [
        f'iter_{i}.pth' for i in range(1, run.latest + 1)]
    with open(work_dir / 'last_checkpoint') as f:
        assert f.read().strip() == good
    assert all_finite(checkpoint_state(good)['state_dict'])


def test_host_seg_train_names_a_missing_label_file(seg):
    """The one-line error of our tools, as the last line of mmseg's."""
    root = seg.tmp / 'broken'
    shutil.copytree(seg.root, root)
    label = sorted(glob.glob(str(root / 'gtFine' / 'train' / '*' /
                             '*.png')))[0]
    os.remove(label)
    config = write_config(seg.tmp / 'broken.py', 'host_lraspp.py', str(root),
                          False)
    proc = run_tool(osp.join(MMSEG_TOOLS, 'train.py'), config,
                    '--work-dir', seg.tmp / 'broken_work', cwd=seg.tmp)
    assert proc.returncode != 0
    assert f'does not exist: {label}' in last_line(proc)
    assert 'MissingLabelError: label file of image' in last_line(proc)


# -- inference APIs ---------------------------------------------------------
def test_det_inferencer_matches_inference_detector(det):
    from mmdet.apis import DetInferencer, inference_detector
    image = sorted(glob.glob(str(det.tmp / 'coco' / 'val2017' / '*.jpg')))[0]
    inferencer = DetInferencer(model=det.config, weights=det.checkpoint(),
                               device='cpu', show_progress=False)
    got = inferencer(image, return_datasamples=True)['predictions'][0]
    want = inference_detector(inferencer.model, image)
    assert len(got.pred_instances) > 0
    assert torch.allclose(got.pred_instances.scores,
                          want.pred_instances.scores)
    assert torch.allclose(got.pred_instances.bboxes,
                          want.pred_instances.bboxes)


def test_mmseg_inferencer_and_inference_model_agree(seg):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    image = sorted(glob.glob(str(seg.tmp / 'cityscapes' / 'leftImg8bit' /
                                 'val' / '*' / '*.png')))[0]
    inferencer = MMSegInferencer(model=seg.config, weights=seg.checkpoint(),
                                 device='cpu')
    got = inferencer(image, return_datasamples=True)
    model = init_model(seg.config, seg.checkpoint(), device='cpu')
    want = inference_model(model, image)
    assert got.pred_sem_seg.data.shape[-2:] == (64, 128)
    assert torch.equal(got.pred_sem_seg.data, want.pred_sem_seg.data)


@pytest.fixture(scope='module')
def shipped_cfgs():
    return {osp.relpath(p, REPO): Config.fromfile(p) for p in SHIPPED}


def test_every_seg_config_runs_its_inference_pipelines(shipped_cfgs,
                                                       tmp_path):
    """MMSegInferencer's and inference_model's own pipeline preparation on
    every shipped segmentation config: the label loader stays in the
    pipeline and passes a bare image through."""
    from types import SimpleNamespace

    from mmengine.registry import init_default_scope
    from mmseg.apis import MMSegInferencer
    from mmseg.apis.utils import _preprare_data
    image = np.random.default_rng(0).integers(
        0, 255, (64, 128, 3), dtype=np.uint8)
    init_default_scope('mmseg')
    seg_cfgs = {k: c for k, c in shipped_cfgs.items()
                if c.get('default_scope', c.model.type) in (
                    'mmseg', 'EncoderDecoder')}
    assert len(seg_cfgs) >= 10
    for name, cfg in seg_cfgs.items():
        assert any('LoadSegAnnotations' in t['type']
                   for t in cfg.test_pipeline), name
        data, _ = _preprare_data([image], SimpleNamespace(
            cfg=copy.deepcopy(cfg)))
        sample = data['data_samples'][0]
        assert 'gt_sem_seg' not in sample, name
        pipeline = MMSegInferencer._init_pipeline(
            object.__new__(MMSegInferencer), copy.deepcopy(cfg))
        out = pipeline(image)
        assert 'gt_sem_seg' not in out['data_samples'], name
        assert out['inputs'].shape == data['inputs'][0].shape, name


def test_label_loader_still_refuses_a_dataset_sample_without_label(tmp_path):
    from mobilenet_mm.datasets.seg_transforms import (LoadSegAnnotations,
                                                      MissingLabelError)
    transform = LoadSegAnnotations(num_classes=19)
    image = dict(img_path='a.png', img=np.zeros((4, 4, 3), np.uint8),
                 ori_shape=(4, 4))
    assert transform(dict(image)) == image  # inference input
    with pytest.raises(MissingLabelError,
                       match='image a.png has no label file'):
        transform(dict(image, sample_idx=0, seg_fields=[]))


# -- the guards travel with the configs --------------------------------------
def test_every_shipped_config_carries_the_guards_once(shipped_cfgs):
    from tools import train as our_train
    for name, cfg in shipped_cfgs.items():
        hooks = [h['type'] for h in cfg.custom_hooks]
        for hook in ('mobilenet_mm.NanGuardHook',
                     'mobilenet_mm.CheckpointIONoticeHook'):
            assert hooks.count(hook) == 1, (name, hooks)
        assert cfg.default_hooks.checkpoint.type == \
            'mobilenet_mm.AtomicCheckpointHook', name
        # Our train.py adds nothing more (it only fills in the action).
        mine = copy.deepcopy(cfg)
        our_train.use_atomic_checkpoint_hook(mine)
        our_train.add_nan_guard(mine)
        assert [h['type'] for h in mine.custom_hooks] == hooks, name
        guard = next(h for h in mine.custom_hooks
                     if h['type'] == 'mobilenet_mm.NanGuardHook')
        assert guard['action'] == 'stop'
        assert mine.default_hooks.checkpoint == cfg.default_hooks.checkpoint
        # Channels-last outputs only where a consumer known to read
        # strides gets them (tested below); NHWC configs keep the speed-up.
        backbone = cfg.model.backbone
        assert backbone.get('channels_last_outputs', False) == (
            backbone.get('channels_last', False) == 'cpu'), name


# -- channels-last and host heads -------------------------------------------
def _host_detector(base):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim',
                                   'configs', '_base_', 'models', base))
    cfg.model.backbone = dict(
        type='mobilenet_mm.MobileNetV3', arch='small', widen_factor=0.5,
        out_indices=(1, 2, 3, 4), channels_last='cpu')
    cfg.model.neck.in_channels = [8, 16, 24, 288]
    cfg.model.test_cfg.rpn.max_per_img = 64  # RoIs enough to compare
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()  # PyTorch's random init


def _two_stage_outputs(model, cpu_layout, keep_outputs=False,
                       proposals=None):
    """FPN maps, RPN maps and RoI head outputs (class scores, boxes,
    masks) for one image; the RoIs are ``proposals`` if given, so that
    float noise cannot flip which near-tie boxes the RPN proposes."""
    from mmdet.structures import DetDataSample
    model.backbone.channels_last = cpu_layout
    model.backbone.channels_last_outputs = keep_outputs
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 128, 160), dtype=torch.uint8,
                          generator=generator)
    sample = DetDataSample(metainfo=dict(
        img_shape=(128, 160), ori_shape=(128, 160), scale_factor=(1., 1.)))
    data = model.data_preprocessor(dict(inputs=[image],
                                        data_samples=[sample]), False)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        if proposals is None:
            proposals = model.rpn_head.predict(feats, data['data_samples'],
                                               rescale=False)
        rois = model.roi_head.forward(feats, proposals, data['data_samples'])
        return (feats, model.rpn_head.forward(feats), rois), proposals


def _flat(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for o in outputs for t in _flat(o)]


@pytest.mark.parametrize('base', ['faster-rcnn_r50_fpn.py',
                                  'mask-rcnn_r50_fpn.py'])
def test_two_stage_host_detectors_same_with_channels_last(base):
    """mmcv's CPU RoIAlign reads its input as contiguous NCHW: the backbone
    hands host necks and heads NCHW maps, so 'cpu' gives the NCHW results;
    keeping the maps channels-last would not (why it is opt-in)."""
    model = _host_detector(base)
    (feats, rpn, want), proposals = _two_stage_outputs(model, False)
    assert len(want) == (3 if 'mask' in base else 2)  # cls, bbox[, mask]
    got, _ = _two_stage_outputs(model, 'cpu', proposals=proposals)
    kept, _ = _two_stage_outputs(model, 'cpu', keep_outputs=True,
                                 proposals=proposals)
    assert all(f.is_contiguous() for f in got[0])  # FPN maps: NCHW
    for a, b in zip(_flat((feats, rpn, want)), _flat(got)):
        assert (a - b).abs().max() <= 1e-4 * max(1., float(a.abs().max()))
    # Kept channels-last, the same maps give RoIAlign garbage.
    assert not kept[0][0].is_contiguous()
    assert max(float((a - b).abs().max())
               for a, b in zip(_flat(want), _flat(kept[2]))) > 1e-3


@pytest.mark.parametrize('config', [
    'ssdlite_v3.py',
    'retinanet/retinanet_mobilenetv4-conv-medium-imagenet_8xb32-600e_coco-384x384.py',
    'lraspp/lraspp_mobilenetv3-small-rf2-d16_4xb4-90k_cityscapes-769x769.py'
])
def test_shipped_consumers_of_channels_last_maps_give_nchw_results(
        config, shipped_cfgs):
    """Where the configs keep the maps channels-last (our necks and heads,
    mmdet's FPN in RetinaNet), the outputs equal the NCHW model's."""
    from mmengine.registry import MODELS, init_default_scope
    cfg = shipped_cfgs[osp.join('configs', config)]
    init_default_scope(cfg.default_scope if 'default_scope' in cfg else
                       'mmseg')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.norm_cfg = dict(type='BN', eps=1e-3)
    # Random weights: not the ImageNet file the RetinaNet configs name.
    model_cfg.backbone.init_cfg = None
    if 'decode_head' in model_cfg:
        model_cfg.decode_head.norm_cfg = dict(type='BN')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.eval()
    assert model.backbone.channels_last_outputs is True
    image = torch.rand(1, 3, 128, 256) * 2 - 1
    outs = []
    for layout in (False, 'cpu'):
        model.backbone.channels_last = layout
        with torch.no_grad():
            outs.append(_flat(model._forward(image)))
    for a, b in zip(*outs):
        assert (a - b).abs().max() <= 1e-4 * max(1., float(a.abs().max()))


# -- the checkpoint backend: opt-out -----------------------------------------
def test_checkpoint_backend_opt_out_in_a_fresh_process(monkeypatch):
    from mobilenet_mm.engine.checkpoint_backend import (
        checkpoint_backend_opted_out, checkpoint_io_in_effect)
    assert checkpoint_io_in_effect()  # this process imported mobilenet_mm
    code = ('import mobilenet_mm\n'
            'from mmengine.fileio.backends.registry_utils import '
            'prefix_to_backends\n'
            'from mobilenet_mm.engine.checkpoint_backend import '
            'checkpoint_io_notice\n'
            "print(prefix_to_backends[''].__name__)\n"
            'print(checkpoint_io_notice())\n')
    env = dict(os.environ, MOBILENET_MM_NO_CHECKPOINT_BACKEND='1',
               PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    backend, notice = proc.stdout.strip().splitlines()[-2:]
    assert backend == 'LocalBackend'
    assert "mmengine's own local checkpoint loader" in notice
    assert 'MOBILENET_MM_NO_CHECKPOINT_BACKEND is set' in notice
    monkeypatch.setenv('MOBILENET_MM_NO_CHECKPOINT_BACKEND', 'maybe')
    with pytest.raises(ValueError, match="use 1 .* or 0"):
        checkpoint_backend_opted_out()


# -- ONNX: LR-ASPP at a size other than the traced one -----------------------
def test_lraspp_onnx_export_with_dynamic_size(tmp_path):
    """Traced at 128x256, run at 192x320: the gate pool's kernel (7x7 vs
    10x8 on the 1/16 map) follows the size in the graph too."""
    from mmengine.registry import MODELS, init_default_scope

    from mobilenet_mm.deploy.onnx_export import (DetectorExport,
                                                 SegmentorExport,
                                                 build_export_module,
                                                 export_onnx, verify_export)
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(CONFIGS, 'host_lraspp.py'))
    cfg.model.backbone.norm_cfg = cfg.model.decode_head.norm_cfg = dict(
        type='BN')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for m in model.modules():  # BN statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-.5, .5)
            m.running_var.uniform_(.5, 2.)
    wrapper = build_export_module(model, (128, 256))
    assert isinstance(wrapper, SegmentorExport)
    path = str(tmp_path / 'lraspp.onnx')
    export_onnx(wrapper, (128, 256), path, dynamic_hw=True)
    for shape in ((128, 256), (192, 320)):
        result = verify_export(wrapper, path, shape, batch=1)
        assert result.ok, result.lines
    det = object.__new__(DetectorExport)  # refused before it is used
    with pytest.raises(ValueError, match='anchors .* of the traced input'):
        export_onnx(det, (128, 128), str(tmp_path / 'det.onnx'),
                    dynamic_hw=True)


def test_export_cli_dynamic_shape(tmp_path, capsys):
    """``--dynamic-shape`` checks a segmentor at a second size and refuses
    a detector in one line."""
    from mobilenet_mm.apis import run_cli
    from tools.deploy import export_onnx as cli
    assert run_cli(cli.main, [
        osp.join(CONFIGS, 'host_lraspp.py'), '--shape', '128', '256',
        '--dynamic-shape', '--verify-batch', '1', '--out',
        str(tmp_path / 'seg.onnx')]) == 0
    out = capsys.readouterr().out
    assert 'dynamic batch, height and width' in out
    for size in ('128x256:', '96x192:'):
        assert f'onnxruntime vs PyTorch, batch 1, {size}' in out
    assert out.count('(ok, limit') == 2
    assert run_cli(cli.main, [osp.join(REPO, 'configs', 'ssdlite_v3.py'),
                              '--dynamic-shape']) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert 'holds the anchors of one input size' in err
