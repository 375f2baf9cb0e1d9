#!/usr/bin/env python
"""Training throughput on one GPU with AMP: our SSDLite-V3 and LR-ASPP-V3
against mmdet's and mmseg's own configs, in one run of a few minutes.

    python tools/analysis/gpu_check.py [--markdown OUT.md] [--iters 30]
        [--det-batch 24] [--seg-batch 8] [--seg-crop 512x1024]
    python tools/analysis/gpu_check.py --cpu-dry-run   # the code path only

Each pair trains on the same synthetic batch (random images, random boxes
or label maps) with mmengine's ``train_step`` and an ``AmpOptimWrapper``
(float16, dynamic loss scale) around each config's own optimizer; SyncBN
becomes BN (one process). Iterations are timed in back-to-back pairs after
a warm-up (cuDNN autotuning included there); the table gives images/s of
each side, the median time ratio and its spread, and the peak CUDA memory
of one iteration. Each of ours runs twice: as its config gives it (NCHW
on a GPU) and with a channels-last backbone input.

Without a CUDA device it stops with one line and exit status 1, unless
``--cpu-dry-run`` is given: then it runs every step on the CPU in float32
with two images, one timed iteration and small inputs, to check the script,
not to measure anything.
"""
import argparse
import os.path as osp
import sys
import time
import warnings

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))

DET_PAIR = ('configs/ssdlite_v3.py',
            'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py')
SEG_PAIR = ('configs/lraspp/lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_'
            'cityscapes-769x769.py',
            'mmseg::mobilenet_v3/'
            'mobilenet-v3-d8_lraspp_4xb4-320k_cityscapes-512x1024.py')


def parse_args(argv=None):
    from benchmark import parse_size, positive_int
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=positive_int, default=30,
                        help='timed iterations per side')
    parser.add_argument('--warmup', type=positive_int, default=5)
    parser.add_argument('--det-batch', type=positive_int, default=24,
                        help='images per iteration (both configs: 24)')
    parser.add_argument('--seg-batch', type=positive_int, default=8)
    parser.add_argument('--seg-crop', type=parse_size, default=(512, 1024),
                        help="crop of both sides (mmseg's config: "
                        '512x1024)')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'],
                        default='float16')
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--cpu-dry-run', action='store_true',
                        help='run the code path on the CPU, tiny and '
                        'without AMP (no measurement)')
    parser.add_argument('--markdown', metavar='OUT',
                        help='also write the table as Markdown to OUT')
    return parser.parse_args(argv)


def optim_wrapper_for(model, cfg, amp: bool, dtype: str):
    """The config's optimizer (and paramwise settings) in an
    ``AmpOptimWrapper`` (or a plain one without AMP)."""
    from mmengine.optim import build_optim_wrapper

    from mobilenet_mm.deploy.build import quiet_mmengine
    wrapper_cfg = dict(cfg.optim_wrapper)
    wrapper_cfg['type'] = 'AmpOptimWrapper' if amp else 'OptimWrapper'
    if amp:
        wrapper_cfg['dtype'] = dtype
        wrapper_cfg['loss_scale'] = 'dynamic'
    else:
        wrapper_cfg.pop('loss_scale', None)
        wrapper_cfg.pop('dtype', None)
    with quiet_mmengine():  # one log line per parameter otherwise
        return build_optim_wrapper(model, wrapper_cfg)


def train_fn(config, task, shape, batch, device, amp, dtype,
             channels_last=None):
    """A closure running one synced training iteration of ``config``
    (``channels_last``: None keeps the config's backbone layout)."""
    from benchmark import build
    from mobilenet_mm.analysis.benchmark import (det_batch, random_images,
                                                 seg_train_batch,
                                                 set_backbone_layout, synced,
                                                 train_step_fn)
    from mobilenet_mm.deploy.build import load_config_file
    cfg = load_config_file(config)
    model = build(cfg, device, shape if task == 'det' else None)
    if channels_last is not None:
        set_backbone_layout(model, channels_last)
    images = [i.to(device) for i in random_images(batch, *shape)]
    if task == 'det':
        data = det_batch(images, model.bbox_head.num_classes,
                         boxes_per_image=8)
    else:
        data = seg_train_batch(images, model.decode_head.num_classes)
        # Both sides crop to the same size: the preprocessor pads to it.
        model.data_preprocessor.size = tuple(shape)
    wrapper = optim_wrapper_for(model, cfg, amp, dtype)
    return synced(train_step_fn(model, wrapper, data), device)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    if args.cpu_dry_run:
        device, amp = 'cpu', False
        iters, warmup = 1, 0
        det_batch_size, seg_batch_size = 2, 2  # BN needs 2 on 1x1 maps
        det_shape, seg_shape = (320, 320), (448, 448)
    else:
        if not torch.cuda.is_available():
            print('gpu_check: error: no CUDA device here; nothing measured '
                  '(use --cpu-dry-run to check the script on a CPU)',
                  file=sys.stderr)
            return 1
        device, amp = args.device, True
        iters, warmup = args.iters, args.warmup
        det_batch_size, seg_batch_size = args.det_batch, args.seg_batch
        det_shape, seg_shape = (320, 320), args.seg_crop
        torch.backends.cudnn.benchmark = True
    warnings.filterwarnings('ignore')
    from benchmark import Report, config_name, machine_line
    from mobilenet_mm.analysis.benchmark import (paired_benchmark,
                                                 peak_memory_mib)
    start = time.perf_counter()
    report = Report([
        machine_line(device),
        'command: python tools/analysis/gpu_check.py '
        + ' '.join(argv if argv is not None else sys.argv[1:])])
    header = ('| ours vs peer | batch | input | ours img/s | peer img/s | '
              'time ratio ours/peer (median) | ratio IQR | ours peak '
              '(MiB) | peer peak (MiB) |\n|---|---|---|---|---|---|---|---|'
              '---|')
    mode = (f'AMP {args.amp_dtype}' if amp else
            'CPU DRY RUN, float32, not a measurement')
    lines = report.section(f'Training throughput ({mode})', header)
    for task, (ours_cfg, peer_cfg), batch, shape in (
            ('det', DET_PAIR, det_batch_size, det_shape),
            ('seg', SEG_PAIR, seg_batch_size, seg_shape)):
        peer = train_fn(peer_cfg, task, shape, batch, device, amp,
                        args.amp_dtype)
        # Our configs keep NCHW off the CPU; the second row tells whether
        # channels-last pays on this GPU too.
        for label, channels_last in (('', None), (' (channels-last)', True)):
            ours = train_fn(ours_cfg, task, shape, batch, device, amp,
                            args.amp_dtype, channels_last)
            result = paired_benchmark(config_name(ours_cfg), ours, peer,
                                      repeats=iters, warmup=warmup)
            memory = [peak_memory_mib(fn, device) for fn in (ours, peer)]
            mib = ['n/a' if m is None else f'{m:.0f}' for m in memory]
            report.add(lines, (
                f'| {config_name(ours_cfg)}{label} vs '
                f'{config_name(peer_cfg)} | {batch} | {shape[0]}x{shape[1]}'
                f' | {batch * 1e3 / result.ours_ms:.1f} | '
                f'{batch * 1e3 / result.peer_ms:.1f} | {result.ratio:.3f} | '
                f'{result.ratio_q1:.3f}-{result.ratio_q3:.3f} | {mib[0]} | '
                f'{mib[1]} |'))
            del ours
        del peer
        if device.startswith('cuda'):
            torch.cuda.empty_cache()
    report.summary(lines, f'total time {time.perf_counter() - start:.0f} s')
    if args.markdown:
        with open(args.markdown, 'w') as out:
            out.write(report.markdown())
        print(f'wrote {args.markdown}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
