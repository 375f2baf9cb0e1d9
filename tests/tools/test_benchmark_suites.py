"""Smoke runs of every benchmark suite and of the GPU check's CPU path, with
tiny repeats and inputs. They check that each path runs and prints its
rows; timings are never asserted."""
import importlib
import os.path as osp
import re

import pytest
import torch

from mobilenet_mm.analysis.benchmark import (PairedResult, dense_conv_like,
                                             peak_memory_mib)
from tests.conftest import REPO

# | case | ours | peer | ratio | q1-q3 | target | status |
RATIO_ROW = re.compile(r'^\| (?P<name>[^|]+) \| [\d.]+ \| [\d.]+ \| '
                       r'(?P<ratio>[\d.]+) \| [\d.]+-[\d.]+ \| '
                       r'(?P<target>[^|]+) \| (?P<status>met|MISSED|-) \|$',
                       re.M)
QUICK = ['--repeats', '2', '--heavy-repeats', '1', '--warmup', '0']
SSDLITE_V3_SMALL = 'ssdlite_mobilenetv3-small-scratch_8xb24-660e_coco-320x320'
LRASPP_V3_SMALL = ('lraspp_mobilenetv3-small-rf2-d16_4xb4-90k_'
                   'cityscapes-769x769')
LRASPP_V3_LARGE = ('lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_'
                   'cityscapes-769x769')


def _load(name):
    return importlib.import_module(f'tools.analysis.{name}')


def run_benchmark(argv, capsys):
    _load('benchmark').main(argv)
    return capsys.readouterr().out


def ratio_rows(text):
    return list(RATIO_ROW.finditer(text))


def test_ssdlite_suite_prints_targets_and_markdown(tmp_path, capsys):
    markdown = str(tmp_path / 'perf.md')
    out = run_benchmark(['--suite', 'ssdlite', '--det-configs',
                         'configs/ssdlite_v3.py', '--det-batches', '1',
                         '--markdown', markdown] + QUICK, capsys)
    rows = ratio_rows(out)
    assert [r['name'] for r in rows] == [
        'ssdlite_v3 vs torchvision, batch 1',
        'ssdlite_v3 vs torchvision, batch 1, torchvision channels-last too',
        'ssdlite_v3 fused vs torchvision, batch 1',
        'ssdlite_v3 fused vs torchvision, batch 1, torchvision '
        'channels-last too']
    # Unfused and fused cases carry their own targets, met or MISSED; the
    # like-for-like layout rows have none.
    assert [r['target'].strip() for r in rows] == [
        '<= 1.00', '-', '<= 0.85', '-']
    for row in rows[::2]:
        expected = 'met' if float(row['ratio']) <= float(
            row['target'][3:]) else 'MISSED'
        assert row['status'] == expected
    assert 'Peak memory' in out
    text = open(markdown).read()
    assert '`device: ' in text and '`command: python tools/analysis/' \
        'benchmark.py --suite ssdlite' in text
    assert len(ratio_rows(text)) == 4 and '| case | ours peak (MiB)' in text


def test_train_suite(capsys):
    out = run_benchmark(['--suite', 'ssdlite-train', '--train-batch', '2']
                        + QUICK, capsys)
    rows = ratio_rows(out)
    assert [r['target'].strip() for r in rows] == ['<= 1.00', '-', '-']
    assert 'mmdet ssdlite_mobilenetv2' in rows[0]['name']
    assert rows[1]['name'].endswith(', both channels-last')
    assert rows[2]['name'].endswith(', both NCHW')
    assert '(training iteration)' in out


def test_lraspp_suite(capsys):
    # mmseg's head pools with a fixed 49x49 kernel at 1/8: >= 392 pixels.
    out = run_benchmark(['--suite', 'lraspp', '--seg-size', '400x400',
                         '--no-memory'] + QUICK, capsys)
    rows = ratio_rows(out)
    assert len(rows) == 2 and all(r['status'] == '-' for r in rows)
    assert rows[1]['name'].endswith('mmseg channels-last too')
    assert 'ratio ours/mmseg' in out and 'Peak memory' not in out


def test_onnx_and_madds_suites(capsys):
    out = run_benchmark(['--suite', 'onnx', 'madds', '--onnx-configs',
                         f'configs/ssdlite/{SSDLITE_V3_SMALL}.py',
                         '--madds-archs', 'v3_small', '--madds-size',
                         '96x96'] + QUICK, capsys)
    assert [r['name'] for r in ratio_rows(out)] == [
        f'{SSDLITE_V3_SMALL}, 320x320']
    madds = re.search(r'^\| v3_small \| (\d+) \| [\d.]+ \| [\d.]+ \| '
                      r'[\d.]+ \| ([\d.]+) \|', out, re.M)
    assert madds and int(madds[1]) > 0 and float(madds[2]) > 0
    assert '(onnxruntime vs PyTorch)' in out


def test_backbone_suite_still_works(capsys):
    out = run_benchmark(['--suite', 'backbones', '--arch', 'v3_small',
                         '--sizes', '64x64'] + QUICK, capsys)
    rows = ratio_rows(out)
    assert len(rows) == 1 and rows[0]['target'] == '<= 1.05'


def test_layout_suite_times_each_backbone_against_itself(capsys):
    out = run_benchmark(['--suite', 'layout', '--arch', 'v3_small', 'v1',
                         '--sizes', '64x64', '96x128', '--layout-configs',
                         f'configs/ssdlite/{SSDLITE_V3_SMALL}.py',
                         f'configs/lraspp/{LRASPP_V3_SMALL}.py',
                         '--seg-size', '128x256'] + QUICK, capsys)
    assert [r['name'] for r in ratio_rows(out)] == [
        'v3_small, 64x64', 'v3_small, 96x128', 'v1, 64x64', 'v1, 96x128',
        f'{SSDLITE_V3_SMALL} (whole model), 320x320',
        f'{LRASPP_V3_SMALL} (whole model), 128x256']
    assert 'channels-last against NCHW' in out
    with pytest.raises(SystemExit, match='unknown backbones'):
        run_benchmark(['--suite', 'layout', '--arch', 'v9'], capsys)


def test_bad_input_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_benchmark(['--suite', 'ssdlite', '--det-configs',
                       'configs/missing.py'], capsys)
    assert 'config file not found: configs/missing.py' in str(
        exit_info.value)
    with pytest.raises(SystemExit):
        run_benchmark(['--suite', 'madds', '--madds-archs', 'v9'], capsys)


def test_a_detector_without_input_size_is_one_line(tmp_path, capsys):
    """The onnx, int8 and layout suites size a detector by its test Resize
    (deploy.build.export_shape); without one the run ends in one line."""
    config = tmp_path / 'no_resize.py'
    base = osp.join(REPO, 'configs', 'ssdlite_v3.py')
    config.write_text(f'_base_ = [{base!r}]\n'
                      "test_pipeline = [dict(type='LoadImageFromFile')]\n")
    with pytest.raises(SystemExit, match='no_resize.py: no Resize with a '
                       'scale in the test pipeline'):
        run_benchmark(['--suite', 'onnx', '--onnx-configs', str(config)],
                      capsys)


def test_set_backbone_layout_switches_ours_and_hooks_a_peer():
    """The like-for-like rows: our backbone flips its own switch; a peer's
    backbone gets its input converted, so its convs run channels-last."""
    import torchvision

    from mobilenet_mm.analysis.benchmark import set_backbone_layout
    from mobilenet_mm.models.backbones import MobileNetV2

    class Detector(torch.nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone

    ours = Detector(MobileNetV2(channels_last='cpu'))
    assert set_backbone_layout(ours, False).backbone.channels_last is False
    peer = Detector(torchvision.models.mobilenet_v2().features.eval())
    seen = []
    peer.backbone[1].register_forward_pre_hook(lambda m, i: seen.append(
        i[0].is_contiguous(memory_format=torch.channels_last)))
    with torch.no_grad():
        peer.backbone(torch.randn(1, 3, 32, 32))
        set_backbone_layout(peer, True).backbone(torch.randn(1, 3, 32, 32))
    assert seen == [False, True]


def test_missed_target_is_shown_with_its_figure():
    result = PairedResult('case', 2., 1., 1.234, 1.2, 1.3, target=1.0)
    assert result.row().endswith('| 1.234 | 1.200-1.300 | <= 1.00 | MISSED |')
    assert PairedResult('case', 1., 1., 0.8, 0.7, 0.9, 0.85).meets_target


def test_peak_memory_sees_a_buffer():
    size_mib = 64

    def allocate():
        buffer = torch.ones(size_mib * 2**20 // 4)  # touched: resident
        return float(buffer[-1])

    allocate()
    peak = peak_memory_mib(allocate)
    if peak is None:
        pytest.skip('no /proc/self/clear_refs here')
    assert size_mib * 0.9 <= peak <= size_mib * 3


def test_dense_conv_matches_requested_work():
    from mobilenet_mm.analysis import count_madds
    conv, x, madds = dense_conv_like(200e6)
    assert madds == count_madds(conv, x)
    assert abs(madds - 200e6) / 200e6 < 0.05
