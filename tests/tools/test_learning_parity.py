"""tools/analysis/learning_parity.py runs end to end (--quick: tiny data,
3 iterations, one seed; its figures mean nothing) and refuses bad input."""
import json

import pytest

from mobilenet_mm.errors import CLIError
from tools.analysis import learning_parity as parity


def test_quick_run_trains_and_scores_every_side(tmp_path, capsys):
    assert parity.main(['--quick', '--work-dir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    ours = ('ours: ssdlite_v3', 'ours: ssdlite_mobilenetv3-large-reduced-'
            'torchvision_8xb24-660e_coco-320x320')
    for side in ('torchvision', ) + ours:
        assert f'| {side} |' in out
    with open(tmp_path / 'learning_parity.json') as f:
        saved = json.load(f)
    for side in ('torchvision', ) + ours:
        (row, ) = saved['results'][side]
        assert 0 <= row['mAP'] <= 100 and row['train_s'] > 0
        # 3 iterations: one window of the loss curve, a finite loss
        (loss, ) = row['loss_curve']
        assert 0 < loss < 100
    assert set(saved['verdicts']) == set(ours)
    assert set(saved['verdicts'].values()) <= {'met', 'missed'}
    # the anchor coverage of each of our configs is printed
    assert f'{ours[0]}: ' in out and 'anchors at IoU >= 0.5' in out
    # ours really ran the shipped recipe's pipeline (the reference crop)
    cfg = parity.our_config(parity.parse_args(['--quick']), parity.CONFIG, 0,
                            str(tmp_path / 'data'), ('a', ), str(tmp_path))
    types = [s['type'] for s in cfg.train_dataloader.dataset.pipeline]
    assert 'mobilenet_mm.SSDIoUCrop' in types


def test_anchor_coverage_counts_positive_anchors(tmp_path):
    """A box equal to one anchor has at least that anchor; the figures are
    those of the generator's own boxes."""
    import torch
    from mmdet.registry import TASK_UTILS

    from mobilenet_mm.apis import load_config, register_host_modules
    register_host_modules('det')
    cfg = load_config(parity.CONFIG)
    generator = TASK_UTILS.build(
        dict(cfg.model.bbox_head.anchor_generator, input_size=128))
    anchors = torch.cat(generator.grid_priors(generator.map_sizes,
                                              device='cpu'))
    # the first map's 0.1 square box (12.8 px) at a cell, and a box far
    # smaller than every anchor
    x1, y1, x2, y2 = anchors[0].tolist()
    boxes = [[x1, y1, x2 - x1, y2 - y1], [60., 60., 2., 2.]]
    (tmp_path / 'annotations').mkdir()
    with open(tmp_path / 'annotations' / 'instances_train2017.json',
              'w') as f:
        json.dump(dict(annotations=[dict(bbox=b) for b in boxes]), f)
    args = parity.parse_args(['--size', '128'])
    coverage = parity.anchor_coverage(args, parity.CONFIG, str(tmp_path))
    assert coverage['boxes_without'] == 0.5
    assert coverage['anchors_per_box'] >= 0.5


def test_ablation_trains_only_ours_with_the_overrides(tmp_path, capsys):
    layout = ['model.bbox_head.anchor_generator.layout=torchvision',
              'model.bbox_head.anchor_generator.reduce_first_level=False']
    argv = ['--quick', '--no-torchvision', '--our-configs', parity.CONFIG,
            '--cfg-options'] + layout
    assert parity.main(argv + ['--work-dir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    name = 'ours: ssdlite_v3 + ' + ', '.join(layout)
    assert f'| {name} |' in out and '| torchvision |' not in out
    with open(tmp_path / 'learning_parity.json') as f:
        saved = json.load(f)
    assert list(saved['results']) == [name] and saved['verdicts'] == {}
    # the overrides reach the trained config and the anchor statistics
    args = parity.parse_args(argv)
    cfg = parity.our_config(args, parity.CONFIG, 0, str(tmp_path / 'data'),
                            ('a', ), str(tmp_path))
    generator = cfg.model.bbox_head.anchor_generator
    assert (generator.layout, generator.reduce_first_level) == (
        'torchvision', False)
    default = parity.anchor_coverage(parity.parse_args(['--quick']),
                                     parity.CONFIG, str(tmp_path / 'data'))
    ablated = parity.anchor_coverage(args, parity.CONFIG,
                                     str(tmp_path / 'data'))
    assert ablated['anchors_per_box'] > default['anchors_per_box']


def test_schedule_is_warm_up_then_cosine():
    assert parity.lr_factor(0, 100, 10) == pytest.approx(0.001)
    assert parity.lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert parity.lr_factor(55, 100, 10) == pytest.approx(0.5)


@pytest.mark.parametrize('argv, fragment', [
    (['--iters', '0'], '--iters must be >= 1'),
    (['--size', '32'], '--size must be >= 64'),
    (['--lr', '0'], '--lr must be > 0'),
    (['--jobs', '0'], '--jobs must be >= 1'),
    (['--our-configs', 'no/such.py'], '--our-configs: no file no/such.py'),
    (['--our-configs', parity.CONFIG, parity.CONFIG], 'is given twice'),
])
def test_bad_arguments_are_refused(argv, fragment):
    with pytest.raises(CLIError, match=fragment):
        parity.parse_args(argv)


def test_device_cuda_needs_a_gpu():
    import torch
    if torch.cuda.is_available():
        assert parity.parse_args(['--device', 'cuda']).device == 'cuda'
    else:
        with pytest.raises(CLIError, match='--device cuda: torch sees no GPU'):
            parity.parse_args(['--device', 'cuda'])


def test_cpu_runs_hide_the_gpu_only_while_they_run(monkeypatch):
    """mmengine's Runner would take a GPU it sees: a --device cpu run hides
    it, and gives the setting back afterwards."""
    import os
    seen = []
    monkeypatch.setattr(parity, '_run_one', lambda *a: seen.append(
        os.environ.get('CUDA_VISIBLE_DEVICES')) or {})
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3')
    parity.run_one(parity.parse_args([]), 'torchvision', 0, '', 1)
    assert seen == [''] and os.environ['CUDA_VISIBLE_DEVICES'] == '3'
