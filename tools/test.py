"""Evaluate a checkpoint of a detection (mmdet) or segmentation (mmseg)
config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--show] [--show-dir DIR] [--cfg-options KEY=VALUE ...]
        [--launcher none|pytorch|slurm|mpi]

A CHECKPOINT ending in ``.onnx`` is one of our ONNX exports (float or INT8,
tools/deploy/export_onnx.py, tools/deploy/quantize_onnx.py), run by
onnxruntime with the config's data pipeline, post-processing and evaluator
(mobilenet_mm/deploy/ort_model.py); a file that is not ours, or not of this
config, is refused in one line.

``--out`` pickles the predictions: for detection mmdet's ``DumpDetResults``
format (one dict per image with ``pred_instances`` bboxes/scores/labels),
for segmentation one dict per image with ``pred_sem_seg`` (class indices at
the original size, see ``mobilenet_mm.DumpSegPredictionsHook``).
``--show-dir`` writes the painted predictions (detection: under
``WORK_DIR/<timestamp>/SHOW_DIR``, as mmdet does; segmentation: under
``SHOW_DIR/vis_data``, as mmseg does). A checkpoint whose keys or shapes do
not fit the model, or whose weights hold NaN/inf, is refused in one line,
before testing, and so are a broken COCO annotation file and an ``--out``
path that cannot be written; an evaluation that gives no metrics or a
non-finite one exits with status 1. ``--launcher`` without a GPU runs on the
CPU with the gloo backend.
"""
import argparse
import os
import os.path as osp
import sys

from mobilenet_mm.apis import (build_runner, check_file, detect_task,
                               load_config, register_host_modules,
                               resolve_work_dir, run_cli, set_launcher)
from mobilenet_mm.datasets.path_checks import (check_data_paths,
                                               check_detection_data)
from mobilenet_mm.errors import CLIError
from mobilenet_mm.datasets.seg_checks import check_segmentation_num_classes
from mobilenet_mm.utils.preflight import check_batch_sizes, check_work_dir


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Test a detector (mmdet config) or a segmentor (mmseg '
        'config) with mobilenet_mm modules.')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save logs and evaluation results')
    parser.add_argument(
        '--out', help='pickle the predictions to this .pkl/.pickle file')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions in windows')
    parser.add_argument(
        '--show-dir', help='save the painted predictions in this directory')
    parser.add_argument(
        '--fuse', action='store_true',
        help='fold conv + BN into the convs (and drop identity layers) '
        'after the checkpoint is loaded, for faster inference')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='--show interval (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, KEY=VALUE pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def enable_visualization(cfg, task: str, show: bool, show_dir, wait_time):
    hooks = cfg.get('default_hooks') or {}
    hook = hooks.get('visualization')
    if not isinstance(hook, dict):
        raise CLIError('--show/--show-dir need a visualization hook in the '
                       'config (default_hooks.visualization)')
    hook['draw'] = True
    if show:
        hook['show'] = True
        hook['wait_time'] = wait_time
    if show_dir:
        if task == 'det':
            hook['test_out_dir'] = show_dir
        else:
            hook['interval'] = 1  # mmseg's default paints every 50th image
            cfg.visualizer['save_dir'] = show_dir


def add_dump(cfg, task: str, out: str) -> None:
    if not out.endswith(('.pkl', '.pickle')):
        raise CLIError(f'--out must end with .pkl or .pickle, got {out}')
    # Checked now, not after the whole evaluation.
    if osp.isdir(out):
        raise CLIError(f'--out {out} is a directory; give a .pkl file path')
    parent = osp.dirname(osp.abspath(out))
    if osp.isdir(parent) and not os.access(parent, os.W_OK):
        raise CLIError(f'--out {out}: the directory {parent} is not '
                       'writable')
    if task == 'det':
        evaluator = cfg.test_evaluator
        metrics = list(evaluator) if isinstance(evaluator,
                                                (list, tuple)) else [evaluator]
        metrics.append(dict(type='DumpDetResults', out_file_path=out))
        cfg.test_evaluator = metrics
    else:
        hooks = list(cfg.get('custom_hooks') or [])
        hooks.append(
            dict(type='mobilenet_mm.DumpSegPredictionsHook', out_file=out))
        cfg.custom_hooks = hooks


def format_only(evaluator) -> bool:
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator
    ]
    return any(
        isinstance(m, dict) and m.get('format_only') for m in metrics)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    onnx_file = args.checkpoint if args.checkpoint.endswith('.onnx') else None
    if '://' not in args.checkpoint:  # URLs are left to mmengine
        check_file(args.checkpoint,
                   'ONNX file' if onnx_file else 'checkpoint file')
    task = detect_task(cfg, args.config)
    cfg.setdefault('default_scope',
                   {'det': 'mmdet', 'seg': 'mmseg'}[task])
    cfg.work_dir = resolve_work_dir(cfg, args.work_dir, args.config)
    check_work_dir(cfg.work_dir)
    set_launcher(cfg, args.launcher, args.local_rank)
    cfg.load_from = None if onnx_file else args.checkpoint
    cfg.resume = False
    if onnx_file:
        if args.fuse or args.launcher != 'none':
            raise CLIError('--fuse and --launcher apply to PyTorch '
                           'checkpoints; an ONNX file runs as exported, in '
                           'one process')
        from mobilenet_mm.deploy.ort_model import use_onnx_model
        register_host_modules(task)
        use_onnx_model(cfg, onnx_file, args.config)
    if args.fuse:
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='mobilenet_mm.FuseConvBNHook')]
    if args.show or args.show_dir:
        enable_visualization(cfg, task, args.show, args.show_dir,
                             args.wait_time)
    if args.out:
        add_dump(cfg, task, args.out)
    check_data_paths(cfg, ['test_dataloader'], ['test_evaluator'])
    check_batch_sizes(cfg, ['test_dataloader'])
    if task == 'det' and not format_only(cfg.get('test_evaluator')):
        # format_only runs (COCO test-dev) have image lists, no annotations.
        check_detection_data(cfg, ['test_dataloader'])
    if task == 'seg':
        check_segmentation_num_classes(cfg, ['test_dataloader'])

    register_host_modules(task)
    from mobilenet_mm.utils.result_checks import (check_finite_state,
                                                  check_metrics)
    checkpoint = None if onnx_file else args.checkpoint
    runner = build_runner(
        cfg, checkpoint,
        check_state=lambda state: check_finite_state(state, checkpoint))
    metrics = runner.test()
    if not format_only(cfg.get('test_evaluator')):
        check_metrics(metrics, f'testing {args.checkpoint}')
    from mmengine.dist import is_main_process
    if args.out and is_main_process() and not osp.isfile(args.out):
        raise CLIError(f'testing finished but {args.out} was not written')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
