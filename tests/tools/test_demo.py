"""tools/demo.py: the quick run end to end (lower bar), and its helpers."""
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO as ROOT

DEMO = osp.join(ROOT, 'tools', 'demo.py')


def _demo_module():
    from tools import demo
    return demo


def test_quick_demo_trains_evaluates_and_draws(tmp_path):
    work, data = tmp_path / 'work', tmp_path / 'data'
    result = subprocess.run(
        [sys.executable, DEMO, '--quick', '--work-dir', str(work),
         '--data-root', str(data)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = result.stdout
    assert result.returncode == 0, (out[-2000:], result.stderr[-3000:])
    assert 'data: 320 train / 50 val images' in out
    assert 'COCO bbox metric on the val split:' in out
    header, values = out.split('COCO bbox metric on the val split:\n')[1] \
        .splitlines()[:2]
    assert header.split() == ['mAP', 'AP50', 'AP75', 'AP_s', 'AP_m', 'AP_l']
    bbox_map = float(values.split()[0])
    assert bbox_map >= 0.1
    assert re.search(r'bbox mAP \d\.\d{3} >= 0\.1: OK', out)
    drawn = glob.glob(osp.join(str(work), 'predictions', '*.jpg'))
    assert len(drawn) == 5
    assert glob.glob(osp.join(str(work), 'iter_*.pth'))


def test_demo_keeps_data_with_same_settings(tmp_path):
    demo = _demo_module()
    root = str(tmp_path / 'data')
    assert demo.prepare_data(root, 3, 2, 64) == 'written'
    first = osp.getmtime(osp.join(root, 'annotations',
                                  'instances_train2017.json'))
    assert demo.prepare_data(root, 3, 2, 64) == 'kept'
    assert osp.getmtime(osp.join(root, 'annotations',
                                 'instances_train2017.json')) == first
    assert demo.prepare_data(root, 4, 2, 64) == 'written'
    assert len(os.listdir(osp.join(root, 'train2017'))) == 4


def test_demo_thread_choice(monkeypatch):
    demo = _demo_module()
    assert demo.pick_threads(3) == 3
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    assert demo.pick_threads(0) == 2
    monkeypatch.delenv('OMP_NUM_THREADS')
    assert 1 <= demo.pick_threads(0) <= (os.cpu_count() or 1)
    with pytest.raises(demo.CLIError, match='--threads'):
        demo.pick_threads(-1)
