"""Learning parity: our SSDLite-V3 recipe against torchvision's, trained the
same way on the same generated data (issue 14).

    python tools/analysis/learning_parity.py [--seeds 0 1 2] [--iters 600]
        [--batch 16] [--size 128] [--num-train 480] [--num-val 100]
        [--lr 0.15] [--our-configs CONFIG ...] [--cfg-options KEY=VALUE ...]
        [--no-torchvision] [--device cpu|cuda] [--jobs 1] [--work-dir DIR]
        [--quick]

Both sides see the same synthetic COCO-format shapes (mobilenet_mm.datasets.
generate_coco_detection), at the same image size, for the same number of
iterations of the same batch size, with the same optimiser and schedule:
torchvision's SSDLite recipe (references/detection: SGD momentum 0.9,
weight decay 4e-5, linear warm-up from 0.001x, then cosine to 0), shortened
to ``--iters`` steps.

* torchvision: ``ssdlite320_mobilenet_v3_large(weights=None,
  weights_backbone=None, num_classes=classes + 1)`` (its from-scratch
  variant: reduced tail, normal(0, 0.03) init) with its input transform set
  to ``--size``; the "ssdlite" preset of references/detection/presets.py in
  ``torchvision.transforms.v2`` (ToImage, RandomIoUCrop, RandomHorizontalFlip,
  ToDtype, SanitizeBoundingBoxes); its own losses; a plain training loop as
  references/detection/engine.py's.
* ours: each of ``--our-configs`` (its model, train and test pipelines) run
  by mmengine's Runner, with only the data, class count, input size and
  schedule length replaced. By default ``configs/ssdlite_v3.py`` (the
  paper architecture, TF V3's sigmoid focal loss) and torchvision's
  architecture with torchvision's loss (softmax, 3:1 hard negatives;
  ``ssdlite_mobilenetv3-large-reduced-torchvision_*.py``), which tells our
  training code from torchvision's loop. ``--cfg-options``
  changes every one of them (an ablation); ``--no-torchvision`` then skips
  the torchvision runs.

Each side's val detections are scored by the same pycocotools COCOeval on
the same val split. The target (configs/README.md): our mean mAP >=
torchvision's minus 1 point (of 100). The paper architecture is not
torchvision's: torchvision's from-scratch model halves the last stage
(reduced tail) and lays 6 anchors on every map, ours follows [V3] Table 6 /
TF (full tail, 3 anchors on the first map); the script prints how well
each config's anchors cover the training boxes. Both sides print their
training loss per 50 iterations (the torchvision-layout config's is
torchvision's loss: the training-loss test in
tests/models/test_torchvision_trained.py; ``ssdlite_v3``'s is TF V3's
focal loss, on another scale).

The learning rate is torchvision's 0.15 at a batch of 16, 12x its rate
per image (0.15 for 8 x 24 images), so that a few hundred iterations learn
something; both sides get it.

``--quick`` is a seconds-long run (tiny data, a few iterations, one seed)
that only checks the script works; its figures mean nothing.
"""
import time

START = time.time()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import os.path as osp  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

from mobilenet_mm.analysis.benchmark_suites import config_name  # noqa: E402
from mobilenet_mm.apis import (build_runner, load_config,  # noqa: E402
                               register_host_modules, run_cli)
from mobilenet_mm.errors import CLIError  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'ssdlite_v3.py')
# The same recipe on torchvision's architecture (reduced tail, six anchors
# on every map, its post-processing): separates recipe from architecture.
TORCHVISION_LAYOUT = osp.join(
    ROOT, 'configs', 'ssdlite',
    'ssdlite_mobilenetv3-large-reduced-torchvision_8xb24-660e_coco-320x320.py')
TARGET_GAP = 1.0  # points of mAP (of 100) ours may trail torchvision by

FULL = dict(seeds=[0, 1, 2], iters=600, batch=16, size=128, num_train=480,
            num_val=100)
QUICK = dict(seeds=[0], iters=3, batch=4, size=96, num_train=12, num_val=6)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train torchvision's SSDLite-V3 recipe and ours on the "
        'same synthetic data and compare their COCO mAP.')
    parser.add_argument('--seeds', type=int, nargs='+', default=None)
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None,
                        help='image side (both models see size x size)')
    parser.add_argument('--num-train', type=int, default=None)
    parser.add_argument('--num-val', type=int, default=None)
    parser.add_argument('--lr', type=float, default=0.15,
                        help="base learning rate of both (torchvision's "
                        'recipe value)')
    parser.add_argument('--warmup', type=int, default=None,
                        help='linear warm-up iterations (default iters / 8)')
    parser.add_argument('--our-configs', nargs='+',
                        default=[CONFIG, TORCHVISION_LAYOUT],
                        help='our SSDLite configs to train, each a row of '
                        'the table (default: configs/ssdlite_v3.py and the '
                        'same recipe on torchvision\'s architecture)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='KEY=VALUE overrides of every one of --our-configs (an '
        'ablation, e.g. model.bbox_head.anchor_generator.layout=torchvision);'
        ' applied before the data, size and schedule of this run')
    parser.add_argument('--no-torchvision', action='store_true',
                        help='train only our configs (an ablation whose '
                        'torchvision figures come from a run with the same '
                        'settings); no gap is computed')
    parser.add_argument('--work-dir',
                        default=osp.join(ROOT, 'work_dirs', 'learning_parity'))
    parser.add_argument('--data-root', default=None,
                        help='where the data set is written (default: '
                        'WORK_DIR/data)')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch CPU threads (default: OMP_NUM_THREADS, '
                        'else 1)')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'),
                        help='where both sides train (cuda: the first GPU; '
                        'a few seconds per hundred iterations, so that '
                        'longer runs fit)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs (side, seed) trained at the same time, in '
                        'separate processes of --threads threads each; the '
                        'figures do not depend on it')
    parser.add_argument('--quick', action='store_true',
                        help='a tiny run that only checks the script works')
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ('iters', 'batch', 'num_train', 'num_val'):
        if getattr(args, key) < 1:
            raise CLIError(f'--{key.replace("_", "-")} must be >= 1, got '
                           f'{getattr(args, key)}')
    if args.size < 64:
        raise CLIError(f'--size must be >= 64 (six SSDLite maps), got '
                       f'{args.size}')
    if not args.lr > 0:
        raise CLIError(f'--lr must be > 0, got {args.lr}')
    if args.warmup is None:
        args.warmup = max(1, args.iters // 8)
    if not 0 < args.warmup < args.iters + (1 if args.iters == 1 else 0):
        raise CLIError(f'--warmup must be in [1, --iters), got {args.warmup}')
    for index, config in enumerate(args.our_configs):
        if not osp.isfile(config):
            raise CLIError(f'--our-configs: no file {config}')
        if config in args.our_configs[:index]:
            raise CLIError(f'--our-configs: {config} is given twice')
    if args.jobs < 1:
        raise CLIError(f'--jobs must be >= 1, got {args.jobs}')
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise CLIError('--device cuda: torch sees no GPU here; allowed: '
                           'cpu')
    if args.threads < 0:
        raise CLIError(f'--threads must be >= 0, got {args.threads}')
    return args


def lr_factor(step: int, iters: int, warmup: int) -> float:
    """The schedule both sides follow: linear warm-up from 0.001x over
    ``warmup`` steps, then cosine from 1x to 0 (mmengine's LinearLR and
    CosineAnnealingLR as configured in :func:`our_config`)."""
    if step < warmup:
        return 0.001 + (1 - 0.001) * step / warmup
    span = max(1, iters - warmup)
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / span))


def coco_map(ann_file: str, detections: list) -> dict:
    """pycocotools COCOeval bbox AP (0-100) of ``detections`` (COCO result
    dicts) on ``ann_file``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not detections:
        return dict(mAP=0., AP50=0.)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        evaluator = COCOeval(gt, gt.loadRes(detections), 'bbox')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(mAP=100 * float(evaluator.stats[0]),
                AP50=100 * float(evaluator.stats[1]))


LOSS_WINDOW = 50  # iterations averaged per point of the loss curves


def loss_curve(losses) -> list:
    """Mean training loss of each window of ``LOSS_WINDOW`` iterations.
    Comparable across sides only where the losses are the same: the
    torchvision-layout config's and torchvision's (softmax with 3:1 hard
    negatives plus smooth-L1, each over the batch's positives), unless
    ``--cfg-options`` changes the loss."""
    return [round(statistics.fmean(losses[i:i + LOSS_WINDOW]), 3)
            for i in range(0, len(losses), LOSS_WINDOW)]


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ------------------------------------------------------------ torchvision --

def torchvision_model(num_classes: int, size: int):
    """torchvision's from-scratch SSDLite-V3 with its transform at
    ``size``."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    from torchvision.models.detection.transform import \
        GeneralizedRCNNTransform
    model = ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=num_classes + 1)
    # Same mean/std ([-1, 1] inputs) and resize as the builder's, at `size`.
    model.transform = GeneralizedRCNNTransform(
        size, size, [0.5] * 3, [0.5] * 3, size_divisible=1,
        fixed_size=(size, size))
    return model


def torchvision_dataset(root: str, split: str, train: bool):
    import torch
    from torchvision import datasets, tv_tensors
    from torchvision.transforms import v2 as T
    steps = [T.ToImage()]
    if train:
        # references/detection/presets.py, data_augmentation="ssdlite"
        steps += [T.RandomIoUCrop(), T.RandomHorizontalFlip(p=0.5)]
    steps += [T.ToDtype(torch.float, scale=True)]
    if train:
        steps += [T.ConvertBoundingBoxFormat(tv_tensors.BoundingBoxFormat.XYXY),
                  T.SanitizeBoundingBoxes(), T.ToPureTensor()]
    dataset = datasets.CocoDetection(
        osp.join(root, f'{split}2017'),
        osp.join(root, 'annotations', f'instances_{split}2017.json'),
        transforms=T.Compose(steps))
    return datasets.wrap_dataset_for_transforms_v2(
        dataset, target_keys=('boxes', 'labels', 'image_id'))


def run_torchvision(args, seed: int, root: str, num_classes: int) -> dict:
    import torch
    seed_everything(seed)
    device = torch.device(args.device)
    model = torchvision_model(num_classes, args.size).to(device)
    train_set = torchvision_dataset(root, 'train', train=True)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch, shuffle=True, num_workers=0,
        drop_last=True, collate_fn=lambda batch: tuple(zip(*batch)),
        generator=torch.Generator().manual_seed(seed))
    # references/detection/train.py: SGD, momentum 0.9, weight decay 4e-5
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=args.lr,
        momentum=0.9, weight_decay=4e-5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, args.iters, args.warmup))
    model.train()
    step, start, loss_history = 0, time.time(), []
    while step < args.iters:
        for images, targets in loader:
            losses = model([image.to(device) for image in images],
                           [{k: v.to(device) if torch.is_tensor(v) else v
                             for k, v in target.items()}
                            for target in targets])
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise CLIError(f'torchvision side: loss {float(loss)} at '
                               f'iteration {step} (lower --lr)')
            loss_history.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step >= args.iters:
                break
    train_s = time.time() - start

    model.eval()
    val_set = torchvision_dataset(root, 'val', train=False)
    detections = []
    with torch.no_grad():
        for index in range(0, len(val_set), 16):
            batch = [val_set[i] for i in range(index,
                                               min(index + 16, len(val_set)))]
            outputs = model([image.to(device) for image, _ in batch])
            for (_, target), output in zip(batch, outputs):
                for box, score, label in zip(output['boxes'].tolist(),
                                             output['scores'].tolist(),
                                             output['labels'].tolist()):
                    detections.append(dict(
                        image_id=int(target['image_id']),
                        category_id=int(label),  # labels are category ids
                        bbox=[box[0], box[1], box[2] - box[0],
                              box[3] - box[1]],
                        score=score))
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    return dict(coco_map(ann, detections), train_s=train_s,
                loss_curve=loss_curve(loss_history))


# -------------------------------------------------------------------- ours --

def _resize_to(pipeline, size: int):
    steps = []
    for step in pipeline:
        step = dict(step)
        if step['type'] == 'Resize':
            step['scale'] = (size, size)
        steps.append(step)
    return steps


def our_config(args, config: str, seed: int, root: str, classes,
               work_dir: str):
    """One of ``--our-configs`` with this run's data, size and schedule."""
    cfg = load_config(config, args.cfg_options)
    root = root.rstrip('/') + '/'
    metainfo = dict(classes=tuple(classes))
    cfg.model.bbox_head.num_classes = len(classes)
    # torchvision-layout configs keep 10 never-used COCO outputs; this data
    # has none.
    cfg.model.bbox_head.unused_class_outputs = 0
    cfg.model.bbox_head.anchor_generator.input_size = args.size
    train_pipeline = _resize_to(cfg.train_pipeline, args.size)
    test_pipeline = _resize_to(cfg.test_pipeline, args.size)
    for key, pipeline in (('train_dataloader', train_pipeline),
                          ('val_dataloader', test_pipeline),
                          ('test_dataloader', test_pipeline)):
        loader = cfg[key]
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.update(data_root=root, metainfo=metainfo,
                              pipeline=pipeline)
    cfg.train_dataloader.batch_size = args.batch
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.train_dataloader.dataset.filter_cfg = dict(filter_empty_gt=True,
                                                   min_size=1)
    cfg.val_dataloader.batch_size = cfg.test_dataloader.batch_size = 16
    ann = root + 'annotations/instances_val2017.json'
    cfg.val_evaluator = dict(type='CocoMetric', ann_file=ann, metric='bbox')
    cfg.test_evaluator = dict(cfg.val_evaluator,
                              outfile_prefix=osp.join(work_dir, 'val'))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters,
                         val_interval=args.iters + 1)
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=args.lr, momentum=0.9,
                       weight_decay=4e-5))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
             end=args.warmup),
        dict(type='CosineAnnealingLR', T_max=args.iters - args.warmup,
             eta_min=0., by_epoch=False, begin=args.warmup, end=args.iters),
    ]
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=args.batch)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=args.iters + 1,
        save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.log_processor = dict(by_epoch=False)
    cfg.log_level = 'WARNING'  # the table is the output
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    return cfg


def side_name(config: str, cfg_options: dict) -> str:
    """The table's name of one of our configs (and the overrides)."""
    name = 'ours: ' + config_name(config)
    if cfg_options:
        name += ' + ' + ', '.join(f'{k}={v}' for k, v in cfg_options.items())
    return name


def run_ours(args, config: str, seed: int, root: str, classes) -> dict:
    index = args.our_configs.index(config)
    work_dir = osp.join(args.work_dir,
                        f'ours{index}-{config_name(config)}_seed{seed}')
    cfg = our_config(args, config, seed, root, classes, work_dir)
    seed_everything(seed)
    runner = build_runner(cfg)
    start = time.time()
    runner.train()
    train_s = time.time() - start
    losses, _ = runner.message_hub.get_scalar('train/loss').data
    runner.test()  # writes WORK_DIR/val.bbox.json
    result_file = osp.join(work_dir, 'val.bbox.json')
    with open(result_file) as f:
        detections = json.load(f)
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    return dict(coco_map(ann, detections), train_s=train_s,
                loss_curve=loss_curve(losses.tolist()))


# -------------------------------------------------------------------- main --

def prepare_data(root: str, args) -> None:
    from mobilenet_mm.datasets import generate_coco_detection
    settings = dict(num_train=args.num_train, num_val=args.num_val,
                    size=[args.size, args.size], seed=0)
    stamp = osp.join(root, 'parity_settings.json')
    if osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == settings:
                return
    generate_coco_detection(root, num_train=args.num_train,
                            num_val=args.num_val,
                            size=(args.size, args.size), seed=0)
    with open(stamp, 'w') as f:
        json.dump(settings, f)


def anchor_coverage(args, config: str, root: str) -> dict:
    """How well a config's anchors cover the training boxes at ``--size``:
    the mean number of anchors at IoU >= 0.5 (the matcher's positive
    threshold) per box, and the share of boxes with none (each of those
    is matched to its best anchor only)."""
    import torch
    from mmdet.registry import TASK_UTILS
    from mmdet.structures.bbox import bbox_overlaps
    cfg = load_config(config, args.cfg_options)
    generator = dict(cfg.model.bbox_head.anchor_generator,
                     input_size=args.size)
    generator = TASK_UTILS.build(generator)
    anchors = torch.cat(generator.grid_priors(generator.map_sizes,
                                            device='cpu'))
    with open(osp.join(root, 'annotations', 'instances_train2017.json')) as f:
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                              (a['bbox'] for a in json.load(f)['annotations'])])
    positives = (bbox_overlaps(boxes, anchors) >= 0.5).sum(1).float()
    return dict(anchors_per_box=float(positives.mean()),
                boxes_without=float((positives == 0).float().mean()))


def summary(values):
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.
    return mean, spread


def run_one(args, side: str, seed: int, root: str, threads: int) -> dict:
    """One training and evaluation (``side``: ``'torchvision'`` or one of
    our configs); also the worker of ``--jobs``."""
    visible_before = os.environ.get('CUDA_VISIBLE_DEVICES')
    if args.device == 'cpu':
        # mmengine's Runner takes the GPU whenever it sees one; CUDA reads
        # this when it first starts, which is later.
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    try:
        return _run_one(args, side, seed, root, threads)
    finally:
        if visible_before is None:
            os.environ.pop('CUDA_VISIBLE_DEVICES', None)
        else:
            os.environ['CUDA_VISIBLE_DEVICES'] = visible_before


def _run_one(args, side: str, seed: int, root: str, threads: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    from mobilenet_mm.datasets import DET_CLASSES
    register_host_modules('det')
    # pycocotools and mmengine print as they load and score; the caller
    # prints the figures (errors still reach stderr).
    with contextlib.redirect_stdout(io.StringIO()):
        if side == 'torchvision':
            result = run_torchvision(args, seed, root, len(DET_CLASSES))
        else:
            result = run_ours(args, side, seed, root, DET_CLASSES)
    return dict(result, seed=seed)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = os.environ.get('OMP_NUM_THREADS', '')
    threads = args.threads or (int(env) if env.isdigit() and int(env) > 0
                               else 1)
    args.work_dir = osp.abspath(args.work_dir)
    root = osp.abspath(args.data_root or osp.join(args.work_dir, 'data'))
    prepare_data(root, args)
    print(f'data: {args.num_train} train / {args.num_val} val images of '
          f'{args.size}x{args.size} ({root}); {args.iters} iterations x '
          f'{args.batch} images, SGD lr {args.lr}, warm-up {args.warmup}, '
          f'cosine; seeds {args.seeds}; {args.jobs} job(s) x {threads} '
          'thread(s)', flush=True)

    register_host_modules('det')
    for config in args.our_configs:
        coverage = anchor_coverage(args, config, root)
        print(f'{side_name(config, args.cfg_options)}: '
              f'{coverage["anchors_per_box"]:.2f} '
              'anchors at IoU >= 0.5 per training box, '
              f'{100 * coverage["boxes_without"]:.0f}% of boxes with none',
              flush=True)
    sides = ([] if args.no_torchvision else ['torchvision']) + list(
        args.our_configs)
    tasks = [(side, seed) for seed in args.seeds for side in sides]
    names = {side: side if side == 'torchvision' else
             side_name(side, args.cfg_options) for side in sides}
    results = {names[side]: [] for side in sides}

    def report(side, result):
        results[names[side]].append(result)
        print(f'seed {result["seed"]} {names[side]}: mAP {result["mAP"]:5.1f}  '
              f'AP50 {result["AP50"]:5.1f}  (training '
              f'{result["train_s"]:.0f} s); loss per {LOSS_WINDOW} '
              f'iterations {result["loss_curve"]}', flush=True)

    if args.jobs == 1:
        for side, seed in tasks:
            report(side, run_one(args, side, seed, root, threads))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(
                args.jobs,
                mp_context=multiprocessing.get_context('spawn')) as pool:
            futures = [(side, pool.submit(run_one, args, side, seed, root,
                                          threads)) for side, seed in tasks]
            for side, future in futures:
                report(side, future.result())
    for rows in results.values():
        rows.sort(key=lambda row: row['seed'])

    print()
    print('| side | mAP per seed | mAP mean +- std | AP50 mean |')
    print('|---|---|---|---|')
    means = {}
    for side, rows in results.items():
        maps = [row['mAP'] for row in rows]
        mean, spread = summary(maps)
        ap50, _ = summary([row['AP50'] for row in rows])
        means[side] = mean
        print(f'| {side} | {", ".join(f"{v:.1f}" for v in maps)} | '
              f'{mean:.1f} +- {spread:.1f} | {ap50:.1f} |')
    gaps, verdicts = {}, {}
    for name in [] if args.no_torchvision else list(results)[1:]:
        gaps[name] = means[name] - means['torchvision']
        verdicts[name] = 'met' if gaps[name] >= -TARGET_GAP else 'missed'
        print(f'{name} - torchvision: {gaps[name]:+.1f} points (target >= '
              f'-{TARGET_GAP:.0f}): {verdicts[name]}')
    print(f'total: {(time.time() - START) / 60:.1f} min')
    os.makedirs(args.work_dir, exist_ok=True)
    out = osp.join(args.work_dir, 'learning_parity.json')
    with open(out + '.tmp', 'w') as f:
        json.dump(dict(settings={k: v for k, v in vars(args).items()},
                       results=results, gaps=gaps, verdicts=verdicts), f,
                  indent=1)
    os.replace(out + '.tmp', out)
    print(f'results: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
