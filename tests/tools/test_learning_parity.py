"""tools/analysis/learning_parity.py runs end to end (--quick: tiny data,
3 iterations, one seed; its figures mean nothing) and refuses bad input."""
import json
import os.path as osp

import pytest

from mobilenet_mm.errors import CLIError
from tools.analysis import learning_parity as parity


def test_quick_run_trains_and_scores_both_sides(tmp_path, capsys):
    assert parity.main(['--quick', '--work-dir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '| torchvision |' in out and '| ours |' in out
    with open(tmp_path / 'learning_parity.json') as f:
        saved = json.load(f)
    for side in ('torchvision', 'ours'):
        (row, ) = saved['results'][side]
        assert 0 <= row['mAP'] <= 100 and row['train_s'] > 0
    assert saved['verdict'] in ('met', 'missed')
    # ours really ran the shipped recipe's pipeline (the reference crop)
    cfg = parity.our_config(parity.parse_args(['--quick']), 0,
                            str(tmp_path / 'data'), ('a', ), str(tmp_path))
    types = [s['type'] for s in cfg.train_dataloader.dataset.pipeline]
    assert 'mobilenet_mm.SSDIoUCrop' in types


def test_schedule_is_warm_up_then_cosine():
    assert parity.lr_factor(0, 100, 10) == pytest.approx(0.001)
    assert parity.lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert parity.lr_factor(55, 100, 10) == pytest.approx(0.5)


@pytest.mark.parametrize('argv, fragment', [
    (['--iters', '0'], '--iters must be >= 1'),
    (['--size', '32'], '--size must be >= 64'),
    (['--lr', '0'], '--lr must be > 0'),
    (['--jobs', '0'], '--jobs must be >= 1'),
])
def test_bad_arguments_are_refused(argv, fragment):
    with pytest.raises(CLIError, match=fragment):
        parity.parse_args(argv)
