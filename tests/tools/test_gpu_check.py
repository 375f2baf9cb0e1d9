"""tools/analysis/gpu_check.py: its CPU dry run goes through every step of
the GPU acceptance run (train + validate, test --fuse, resume, ONNX,
throughput rows) and a failing step ends the run in one line."""
import os
import os.path as osp
import re

import torch

from tests.conftest import REPO as ROOT, run_tool  # noqa: E402

TOOL = osp.join(ROOT, 'tools', 'analysis', 'gpu_check.py')
MODELS = ('ssdlite_v3', 'retinanet_v4_conv_medium',
          'lraspp_v3_large_cityscapes')


def _load():
    from tools.analysis import gpu_check
    return gpu_check


def test_dry_run_passes_every_step(tmp_path):
    markdown = tmp_path / 'table.md'
    proc = run_tool(TOOL, '--cpu-dry-run', '--out-dir', tmp_path / 'run',
                    '--markdown', markdown, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = re.findall(r'^\| ([^|]+) \| ([^|]+) \| ((?:[^|]|\\\|)+) \| '
                      r'[\d.]+ \|$', proc.stdout, re.M)
    steps = {(step, model) for step, model, _ in rows}
    for model in MODELS:
        for step in ('train + validate', 'test --fuse', 'train --resume'):
            assert (step, model) in steps, (step, model)
    assert ('ONNX export + onnxruntime', 'ssdlite_v3') in steps
    speed = [r for r in rows if r[0].startswith('training img/s')]
    assert len(speed) == 4
    assert all('dry run, not a measurement' in r[2] for r in speed)
    assert not [r for r in rows if 'FAILED' in r[2] or 'not run' in r[2]]
    # The metrics come from the runs' own logs: validation and the fused
    # test of the same checkpoint agree.
    for step, model, result in rows:
        if step == 'test --fuse':
            test, val = re.findall(r'(?:mAP|mIoU|validation:) ([\d.]+)',
                                   result)
            assert abs(float(test) - float(val)) <= 0.05
        if step == 'train --resume':
            assert 'iteration 2 -> 3' in result
    assert '16 of 16 steps passed' in proc.stdout
    assert markdown.read_text().count('\n| ') == 17  # header + 16 rows


def test_a_failed_step_is_one_line_and_skips_what_needs_it(tmp_path,
                                                           capsys):
    gpu_check = _load()
    table = gpu_check.Table(str(tmp_path))

    def broken():
        print('tool output goes to the log')
        raise RuntimeError('CUDA error: an illegal memory access\nmore')

    assert not table.run('train + validate', 'm', broken)
    assert not table.run('test --fuse', 'm', lambda: 'ok',
                         needs=('m: train + validate', ))
    assert table.run('other', 'n', lambda: 'fine')
    out = capsys.readouterr().out
    assert '| train + validate | m | FAILED: CUDA error: an illegal memory ' \
        'access more |' in out
    assert '| test --fuse | m | not run: m: train + validate failed |' in out
    assert table.failures == [
        "step 'train + validate' (m) failed: RuntimeError: CUDA error: an "
        'illegal memory access more']
    assert 'Traceback' in (tmp_path / 'errors.log').read_text()
    logs = os.listdir(tmp_path / 'logs')
    assert any('tool output' in (tmp_path / 'logs' / name).read_text()
               for name in logs)


def test_without_cuda_it_stops_in_one_line(capsys, monkeypatch):
    gpu_check = _load()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert gpu_check.main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['gpu_check: error: no CUDA device here; nothing checked '
                   '(use --cpu-dry-run to check the script on a CPU)']


def test_every_config_trains_over_nccl_on_gpus():
    """tools/dist_train.sh on GPUs: mmengine's init_dist takes the backend
    from env_cfg.dist_cfg (the CPU path replaces it by gloo, see
    tests/engine/test_distributed.py). Our bases inherit mmdet's or mmseg's
    default_runtime (a detection and a segmentation config are loaded) and
    no config file sets dist_cfg itself."""
    import glob

    from mmengine.config import Config
    configs = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                        recursive=True)
    assert len(configs) >= 20
    for path in configs:
        with open(path) as f:
            assert 'dist_cfg' not in f.read(), path
    for name in ('ssdlite_v3.py', 'lraspp/lraspp_mobilenetv3-large-rf2-d16_'
                 '4xb4-90k_cityscapes-769x769.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
        assert cfg.env_cfg.dist_cfg.backend == 'nccl', name
