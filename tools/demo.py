"""The demo (``make demo``): SSDLite + MobileNetV3-Large, trained from
scratch on the CPU on a synthetic COCO-format data set.

    python tools/demo.py [--work-dir DIR] [--data-root DIR] [--quick]
        [--threads N] [--min-map X]

1. writes the synthetic shapes data set (``mobilenet_mm.datasets.
   generate_coco_detection``: train and val splits, fixed seed; kept when
   it is already there with the same settings);
2. trains the demo config (``configs/demo/ssdlite_mobilenetv3-large-
   scratch_1xb16-400iter_synthetic-shapes-160x160.py``);
3. evaluates on the val split with mmdet's COCO metric and prints the
   table;
4. draws the predictions on a few val images with mmdet's
   ``inference_detector`` (``WORK_DIR/predictions/``).

``--quick`` is a shorter run (less data, fewer iterations) for the test
suite. The exit status is 1 when the bbox mAP is below ``--min-map``
(default 0.5, quick 0.1). Bad input ends in one line on stderr.
"""
import time

START = time.time()  # the total time printed includes the imports

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import os.path as osp  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

from mobilenet_mm.apis import (build_runner, load_config,  # noqa: E402
                               register_host_modules, run_cli)
from mobilenet_mm.datasets.path_checks import (  # noqa: E402
    check_detection_data)
from mobilenet_mm.errors import CLIError  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(
    ROOT, 'configs', 'demo',
    'ssdlite_mobilenetv3-large-scratch_1xb16-400iter_synthetic-shapes-'
    '160x160.py')

# Data set and schedule of each mode. The image side is the config's
# input_size; the quick mode keeps the config and shortens the schedule.
MODES = {
    'full': dict(num_train=1000, num_val=100, max_iters=None, warmup=None,
                 min_map=0.5),
    'quick': dict(num_train=320, num_val=50, max_iters=160, warmup=20,
                  min_map=0.1),
}
NUM_DRAWN = 5
METRICS = (('mAP', 'bbox_mAP'), ('AP50', 'bbox_mAP_50'),
           ('AP75', 'bbox_mAP_75'), ('AP_s', 'bbox_mAP_s'),
           ('AP_m', 'bbox_mAP_m'), ('AP_l', 'bbox_mAP_l'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train SSDLite-MobileNetV3 on synthetic COCO-format data '
        'on the CPU, evaluate it and draw its predictions.')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                       'demo'))
    parser.add_argument(
        '--data-root', default=osp.join(ROOT, 'data', 'synthetic_coco'),
        help='where the synthetic data set is written (quick mode: a '
        'sibling folder with suffix _quick)')
    parser.add_argument('--quick', action='store_true',
                        help='a shorter run with a lower bar (tests)')
    parser.add_argument(
        '--threads', type=int, default=0,
        help='CPU threads for torch (default: OMP_NUM_THREADS, else the '
        'cores not already busy)')
    parser.add_argument('--min-map', type=float, default=None,
                        help='exit status 1 below this bbox mAP')
    return parser.parse_args(argv)


def pick_threads(requested: int) -> int:
    """``requested``, else ``OMP_NUM_THREADS`` when set, else the cores
    other processes leave free (at least one): OpenMP threads that compete
    for a busy core slow every step down several times."""
    if requested < 0:
        raise CLIError(f'--threads must be >= 0, got {requested}')
    if requested:
        return requested
    env = os.environ.get('OMP_NUM_THREADS', '')
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(
        os, 'sched_getaffinity') else (os.cpu_count() or 1)
    busy = os.getloadavg()[0] if hasattr(os, 'getloadavg') else 0.
    return max(1, min(cores, int(cores - busy + 0.5)))


def prepare_data(root: str, num_train: int, num_val: int, size: int) -> str:
    """Write the data set unless ``root`` already holds the same one."""
    from mobilenet_mm.datasets import generate_coco_detection
    settings = dict(num_train=num_train, num_val=num_val,
                    size=[size, size], seed=0)
    stamp = osp.join(root, 'demo_settings.json')
    if osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == settings:
                return 'kept'
    generate_coco_detection(root, num_train=num_train, num_val=num_val,
                            size=(size, size), seed=0)
    with open(stamp, 'w') as f:
        json.dump(settings, f)
    return 'written'


def demo_config(mode: dict, data_root: str, work_dir: str):
    """The demo config with this run's paths (and the quick schedule)."""
    cfg = load_config(CONFIG)
    data_root = data_root.rstrip('/') + '/'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = data_root
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = data_root + 'annotations/instances_val2017.json'
    if mode['max_iters']:
        iters, warmup = mode['max_iters'], mode['warmup']
        cfg.train_cfg.max_iters = iters
        warm, cosine = cfg.param_scheduler
        warm.end = warmup
        cosine.update(begin=warmup, end=iters, T_max=iters - warmup)
        cfg.default_hooks.checkpoint.interval = iters
    # One evaluation, by runner.test() after training (its metrics are
    # returned, the training loop's are only logged).
    cfg.train_cfg.val_interval = cfg.train_cfg.max_iters + 1
    cfg.default_hooks.logger.interval = 20
    cfg.work_dir = work_dir
    return cfg


def draw_predictions(runner, cfg, out_dir: str, num: int) -> list:
    """Predict ``num`` val images spread over the split with mmdet's
    ``inference_detector`` and draw boxes scoring >= 0.3."""
    import mmcv
    from mmdet.apis import inference_detector
    model = runner.model
    model.cfg = cfg  # inference_detector builds its pipeline from it
    model.eval()
    dataset = runner.test_dataloader.dataset
    visualizer = runner.visualizer
    visualizer.dataset_meta = dataset.metainfo
    step = max(1, len(dataset) // num)
    written = []
    for index in range(0, step * num, step)[:len(dataset)]:
        path = dataset.get_data_info(index)['img_path']
        result = inference_detector(model, path)
        out_file = osp.join(out_dir, osp.basename(path))
        with warnings.catch_warnings():
            # Boxes touching the border trip mmengine's out-of-bounds note.
            warnings.simplefilter('ignore', UserWarning)
            visualizer.add_datasample(
                osp.basename(path), mmcv.imread(path, channel_order='rgb'),
                data_sample=result, draw_gt=False, show=False,
                pred_score_thr=0.3, out_file=out_file)
        written.append(out_file)
    return written


def print_table(metrics: dict) -> None:
    print('COCO bbox metric on the val split:')
    print('  ' + ' '.join(f'{name:>6}' for name, _ in METRICS))
    print('  ' + ' '.join(f'{metrics.get("coco/" + key, -1.):6.3f}'
                          for _, key in METRICS))


def main(argv=None) -> int:
    args = parse_args(argv)
    start = START
    mode = MODES['quick' if args.quick else 'full']
    min_map = mode['min_map'] if args.min_map is None else args.min_map
    data_root = osp.abspath(args.data_root + ('_quick' if args.quick else
                                              ''))
    work_dir = osp.abspath(args.work_dir)

    import torch
    threads = pick_threads(args.threads)
    torch.set_num_threads(threads)

    cfg = demo_config(mode, data_root, work_dir)
    size = cfg.model.bbox_head.anchor_generator.input_size
    state = prepare_data(data_root, mode['num_train'], mode['num_val'], size)
    print(f'data: {mode["num_train"]} train / {mode["num_val"]} val images '
          f'of {size}x{size} in {data_root} ({state}, '
          f'{time.time() - start:.0f} s)', flush=True)
    check_detection_data(cfg, ['train_dataloader', 'test_dataloader'])

    register_host_modules('det')
    runner = build_runner(cfg)
    train_start = time.time()
    runner.train()
    train_time = time.time() - train_start
    metrics = runner.test()

    bbox_map = metrics.get('coco/bbox_mAP', -1.)
    iters = cfg.train_cfg.max_iters
    batch = cfg.train_dataloader.batch_size
    print()
    print('SSDLite + MobileNetV3-Large from scratch, synthetic COCO-format '
          'shapes')
    print(f'training: {iters} iterations x {batch} images in '
          f'{train_time / 60:.1f} min ({threads} CPU thread'
          f'{"s" if threads > 1 else ""})')
    print_table(metrics)
    drawn = draw_predictions(runner, cfg, osp.join(work_dir, 'predictions'),
                             NUM_DRAWN)
    print(f'predictions drawn on {len(drawn)} val images: '
          f'{osp.dirname(drawn[0])}')
    print(f'total: {(time.time() - start) / 60:.1f} min')
    if bbox_map < min_map:
        print(f'demo: bbox mAP {bbox_map:.3f} is below {min_map}',
              file=sys.stderr)
        return 1
    print(f'bbox mAP {bbox_map:.3f} >= {min_map}: OK')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
