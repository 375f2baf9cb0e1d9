"""INT8 quantization (tools/deploy/quantize_onnx.py) and ONNX evaluation
(tools/test.py CONFIG FILE.onnx) on the tiny configs with generated data.

Tolerances of INT8 against float on the calibration images (random-weight
tiny RetinaNet at 96x96, minmax, per-channel): decoded boxes within 2% of
the image side, scores within 0.02; the tiny FCN's class map agrees on at
least 90% of the pixels.
"""
import json
import os.path as osp

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from mobilenet_mm.datasets import (generate_cityscapes_segmentation,
                                   generate_coco_detection)
from mobilenet_mm.deploy.build import (build_checkpoint_model,
                                       load_config_file)
from mobilenet_mm.apis import run_cli

from tests.tools.test_train_test_tools import (TEST, assert_ok, assert_one_line_error,
                                   run_tool, write_config)

from tests.conftest import REPO  # noqa: E402
DET_SIZE = 96
BOX_TOL = 0.02 * DET_SIZE
SCORE_TOL = 0.02
SEG_AGREEMENT = 0.90


def quantize(argv):
    from tools.deploy import quantize_onnx
    return run_cli(quantize_onnx.main, [str(a) for a in argv])


def random_checkpoint(config, path, task, shape):
    cfg = load_config_file(config)
    model = build_checkpoint_model(cfg, task, shape)
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


@pytest.fixture(scope='module')
def det(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('int8det')
    root = generate_coco_detection(str(tmp / 'coco'), num_train=6,
                                   num_val=4, size=(DET_SIZE, DET_SIZE),
                                   seed=2)
    cfg = write_config(tmp / 'det.py', 'tiny_det.py', root, det=True)
    ckpt = random_checkpoint(cfg, tmp / 'det.pth', 'det',
                             (DET_SIZE, DET_SIZE))
    out, float_out = tmp / 'det-int8.onnx', tmp / 'det.onnx'
    assert quantize([cfg, ckpt, '--out', out, '--float-out', float_out,
                     '--num-images', 4]) == 0
    return dict(tmp=tmp, cfg=cfg, ckpt=ckpt, int8=str(out),
                float=str(float_out), root=root)


@pytest.fixture(scope='module')
def seg(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('int8seg')
    root = generate_cityscapes_segmentation(str(tmp / 'cs'), num_train=4,
                                            num_val=3, size=(64, 128),
                                            seed=2)
    cfg = write_config(tmp / 'seg.py', 'tiny_seg.py', root, det=False)
    ckpt = random_checkpoint(cfg, tmp / 'seg.pth', 'seg', (64, 128))
    out, float_out = tmp / 'seg-int8.onnx', tmp / 'seg.onnx'
    assert quantize([cfg, ckpt, '--out', out, '--float-out', float_out,
                     '--calib-loader', 'train', '--per-tensor',
                     '--calib-method', 'percentile']) == 0
    return dict(tmp=tmp, cfg=cfg, int8=str(out), float=str(float_out))


def calibration(cfg_path, loader='val', limit=None):
    from mobilenet_mm.deploy.ort_model import build_host_model
    from mobilenet_mm.deploy.quantize import calibration_batches
    from mobilenet_mm.apis import register_host_modules
    cfg = load_config_file(cfg_path)
    register_host_modules('det' if cfg.default_scope == 'mmdet' else 'seg')
    model = build_host_model(cfg.model, cfg.default_scope)
    _, batches = calibration_batches(cfg, model.data_preprocessor, 100,
                                     loader, scope=cfg.default_scope)
    return list(batches(limit))


def test_int8_detector_close_to_float_on_calibration_images(det, capsys):
    from mobilenet_mm.deploy.ort_model import read_export
    from mobilenet_mm.deploy.quantize import compare_int8, count_int8_convs
    info = read_export(det['int8'])
    assert info.quantized and not read_export(det['float']).quantized
    assert 'INT8 QDQ S8S8, per-channel' in info.metadata['quantization']
    convs, int8 = count_int8_convs(det['int8'])
    assert int8 == convs > 0  # @decode holds no conv
    drift = {d.name: d for d in compare_int8(
        det['float'], det['int8'], calibration(det['cfg']))}
    assert 0 < drift['boxes'].max_abs <= BOX_TOL, drift['boxes'].line()
    assert 0 < drift['scores'].max_abs <= SCORE_TOL, drift['scores'].line()


def test_int8_detections_take_the_float_post_processing(det):
    """OnnxRuntimeModel's detections are mmdet's post-processing of the
    graph's raw outputs, for the INT8 file as for the float one; the float
    file's equal the PyTorch model's."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, DefaultScope

    from mobilenet_mm.deploy.onnx_export import (detections_from_raw,
                                                 detections_match)
    from mobilenet_mm.deploy.ort_model import OnnxRuntimeModel
    cfg = load_config_file(det['cfg'])
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    data = pseudo_collate([dataset[i] for i in range(2)])
    state = torch.load(det['ckpt'], weights_only=True)['state_dict']
    results = {}
    for kind in ('float', 'int8'):
        model = OnnxRuntimeModel(det[kind], cfg.model, 'mmdet', threads=1)
        samples = model.test_step(data)
        batch = model.data_preprocessor(data, False)
        raw = model.run_graph(batch['inputs'])
        expected = detections_from_raw(
            model.host.bbox_head, *raw, model.level_sizes,
            img_metas=[s.metainfo for s in batch['data_samples']])
        for sample, want in zip(samples, expected):
            got = sample.pred_instances
            assert torch.equal(got.bboxes, want.bboxes)
            assert torch.equal(got.labels, want.labels)
        results[kind] = samples
        host = model.host
    host.load_state_dict(state)
    with torch.no_grad():
        reference = host.test_step(data)
    test_cfg = host.bbox_head.test_cfg
    for ours, theirs in zip(results['float'], reference):
        ok, message = detections_match(
            ours.pred_instances, theirs.pred_instances,
            test_cfg.nms.iou_threshold, score_eps=1e-5,
            cap=test_cfg.max_per_img)
        assert ok, message


def test_test_tool_scores_int8_onnx(det, seg):
    # The float file takes the same path (see the post-processing test).
    for kind, case, key in (('int8', det, 'coco/bbox_mAP:'),
                            ('int8', seg, 'mIoU:')):
        proc = run_tool(TEST, case['cfg'], case[kind], '--work-dir',
                        case['tmp'] / f'test_{kind}')
        assert_ok(proc)
        assert key in proc.stdout + proc.stderr, proc.stdout[-2000:]


def test_int8_segmentor_close_to_float(seg):
    from mobilenet_mm.deploy.ort_model import read_export
    from mobilenet_mm.deploy.quantize import compare_int8
    info = read_export(seg['int8'])
    assert 'per-tensor' in info.metadata['quantization']
    assert 'percentile' in info.metadata['quantization']
    drift = compare_int8(seg['float'], seg['int8'],
                         calibration(seg['cfg'], 'train'))
    assert drift[0].argmax_agreement >= SEG_AGREEMENT, drift[0].line()


def test_segmentation_export_flips_channels_as_mmseg(seg):
    """mmseg keeps bgr_to_rgb in ``channel_conversion``: the graph must
    flip like the model's own preprocessor."""
    from mobilenet_mm.deploy.onnx_export import Preprocess
    from mobilenet_mm.deploy.ort_model import build_host_model
    from mobilenet_mm.apis import register_host_modules
    cfg = load_config_file(seg['cfg'])
    register_host_modules('seg')
    model = build_host_model(cfg.model, 'mmseg')
    image = torch.rand(3, 64, 128) * 255
    expected = model.data_preprocessor(dict(inputs=[image]),
                                       False)['inputs']
    assert Preprocess(model.data_preprocessor).flip
    assert torch.allclose(Preprocess(model.data_preprocessor)(image[None]),
                          expected, atol=1e-5)


def test_keep_float_entries(det, capsys):
    from mobilenet_mm.deploy.quantize import resolve_keep_float
    from onnxruntime.quantization import quant_pre_process
    prepared = str(det['tmp'] / 'prepared.onnx')
    quant_pre_process(det['float'], prepared)
    model = onnx.load(prepared)
    predictors = resolve_keep_float(model, ['@predictors']).nodes
    assert predictors and all('retina_' in n for n in predictors)
    decode = resolve_keep_float(model, ['@decode']).nodes
    assert not set(decode) & set(predictors)
    assert resolve_keep_float(model, ['Mul']).op_types == ['Mul']
    for bad, message in (('@head', 'unknown group'),
                         ('NoSuchOp', 'neither a group')):
        with pytest.raises(ValueError, match=message):
            resolve_keep_float(model, [bad])
    out = det['tmp'] / 'det-int8-pred.onnx'
    assert quantize([det['cfg'], det['float'], '--out', out, '--num-images',
                     2, '--keep-float', '@decode', '@predictors']) == 0
    from mobilenet_mm.deploy.quantize import count_int8_convs
    convs, int8 = count_int8_convs(str(out))
    assert int8 == convs - len(predictors)
    capsys.readouterr()


def test_bad_input_is_one_line(det, tmp_path, capsys):
    no_val = tmp_path / 'no_val.py'
    no_val.write_text(f'_base_ = [{det["cfg"]!r}]\nval_dataloader = None\n'
                      'test_dataloader = None\n')
    empty_root = tmp_path / 'empty'
    (empty_root / 'annotations').mkdir(parents=True)
    (empty_root / 'val2017').mkdir()
    with open(osp.join(det['root'], 'annotations',
                       'instances_val2017.json')) as f:
        categories = json.load(f)['categories']
    (empty_root / 'annotations' / 'instances_val2017.json').write_text(
        json.dumps(dict(images=[], annotations=[], categories=categories)))
    empty = tmp_path / 'empty.py'
    empty.write_text(
        f'_base_ = [{det["cfg"]!r}]\n'
        f'val_dataloader = dict(dataset=dict(data_root={str(empty_root)!r}))'
        '\n')
    foreign = str(tmp_path / 'foreign.onnx')
    graph = helper.make_graph(
        [helper.make_node('Relu', ['x'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 10])])
    onnx.save(helper.make_model(graph), foreign)
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a protobuf \xff\xfe' * 10)
    cases = [
        ([no_val, det['float']], 'has no val_dataloader with a dataset'),
        ([det['cfg'], det['float'], '--num-images', 0],
         '--num-images must be >= 1'),
        ([empty, det['float']], 'has no images'),
        ([det['cfg'], foreign], 'is not a mobilenet_mm export'),
        ([det['cfg'], det['int8']], 'is already quantized'),
        ([det['cfg'], det['float'], '--keep-float', 'NoSuchOp'],
         'neither a group'),
    ]
    for argv, message in cases:
        assert quantize(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    for onnx_file, message in ((foreign, 'is not a mobilenet_mm export'),
                               (str(garbage), 'is not an ONNX file')):
        assert_one_line_error(run_tool(TEST, det['cfg'], onnx_file),
                              message)
