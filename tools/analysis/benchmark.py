#!/usr/bin/env python
"""Speed and memory of our models against their peers, measured in the same
run.

    python tools/analysis/benchmark.py --suite backbones [--arch v3_large ...]
        [--sizes 224x224 512x1024] [--repeats 20] [--threads 1]
    python tools/analysis/benchmark.py --suite all [--markdown OUT.md]

Suites (``--suite`` takes several, or ``all``):

* ``backbones``: our backbones against timm/torchvision, same weights.
* ``ssdlite``: SSDLite end to end (pre-processing to final boxes after NMS,
  320x320, ``--det-batches``) against torchvision's
  ``ssdlite320_mobilenet_v3_large`` with random weights, our model unfused
  (target <= 1.0) and conv-BN fused (target <= 0.85).
* ``ssdlite-train``: one training iteration (pre-processing, forward, loss,
  backward, optimizer step) of ``--train-config`` against mmdet's own
  SSDLite-MobileNetV2 config, same batch: target <= 1.0.
* ``lraspp``: LR-ASPP inference (pre-processing to label map) at
  ``--seg-size`` against mmseg's LR-ASPP config: ratio only.
* ``onnx``: onnxruntime against PyTorch eager on the exported graph of
  each ``--onnx-configs`` model.
* ``madds``: MAdds/s of each backbone against a dense 3x3 conv of the same
  work, timed in the same run.
* ``int8``: onnxruntime INT8 (tools/deploy/quantize_onnx.py's default:
  QDQ S8S8, per-channel weights, ``@decode`` in float; calibrated on
  ``--int8-calib-images`` random images) against the float export in
  onnxruntime (target <= 0.6) and against torchvision's eager model
  (``ssdlite320_mobilenet_v3_large`` for detectors, end to end with our
  post-processing; ``lraspp_mobilenet_v3_large`` for segmenters), batch 1,
  for each ``--int8-configs`` model; prints the CPU's vector ISA (AVX2,
  AVX-512, VNNI, AMX-INT8), on which INT8 speed depends.
* ``layout``: each backbone (``--arch``, default all) at ``--sizes``, then
  each ``--layout-configs`` model, on channels-last inputs against itself
  on NCHW inputs, same weights: what ``channels_last`` buys here.

Our detection and segmentation configs run their backbone on channels-last
(NHWC) tensors on the CPU (``channels_last='cpu'``), which is faster there.
The targets compare the configs as shipped with the peers as shipped; the
``ssdlite``, ``ssdlite-train`` and ``lraspp`` suites add like-for-like rows
without a target, with the peer on channels-last inputs too (and, for
training, both on NCHW); ``--no-layout-rows`` skips them. The ``backbones``
suite compares NCHW with NCHW.

Peak memory of each inference and training iteration is measured in the
``ssdlite``, ``ssdlite-train``, ``lraspp`` and ``onnx`` suites and printed
as a table of its own (``--no-memory`` skips it). Each timed case prints the
median ratio ours/peer and its inter-quartile range from back-to-back pairs;
a case that misses its target is shown as MISSED with the figure. These
are benchmarks, not tests: timings on shared machines are noisy, ratios
from back-to-back pairs much less so. ``--markdown OUT`` also writes the
tables, the command and the machine line as Markdown for the README.
"""
import argparse
import copy
import functools
import os
import os.path as osp
import platform
import sys
import tempfile
import warnings

import torch

BACKBONE_TARGET = 1.05
E2E_TARGET = 1.0
E2E_FUSED_TARGET = 0.85
TRAIN_TARGET = 1.0
INT8_TARGET = 0.6
SUITES = ('backbones', 'ssdlite', 'ssdlite-train', 'lraspp', 'onnx',
          'madds', 'layout', 'int8')
TORCHVISION_LRASPP = 'lraspp_mobilenet_v3_large'
TORCHVISION_SSDLITE = 'ssdlite320_mobilenet_v3_large'
MMDET_SSDLITE = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
MMSEG_LRASPP = ('mmseg::mobilenet_v3/'
                'mobilenet-v3-d8_lraspp_4xb4-320k_cityscapes-512x1024.py')


def parse_size(text):
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size {text!r} is not HxW (e.g. 224x224)')
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f'size {text!r} must be positive')
    return height, width


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text} is not a positive integer')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--suite', nargs='+', choices=SUITES + ('all', ),
                        default=['backbones'])
    parser.add_argument('--arch', nargs='+', default=None,
                        help='backbones to time (default: backbones '
                        'suite: all with a timm/torchvision reference; '
                        'layout suite: all)')
    parser.add_argument('--sizes', nargs='+', type=parse_size,
                        default=[(224, 224), (512, 1024)],
                        help='input sizes of the backbones and layout '
                        'suites')
    parser.add_argument('--repeats', type=positive_int, default=20)
    parser.add_argument('--heavy-repeats', type=positive_int, default=5,
                        help='repeats of the training iteration and of '
                        'the LR-ASPP cases (seconds each on a CPU)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=positive_int, default=1,
                        help='torch (and onnxruntime) intra-op threads; 1 '
                        'is the most stable')
    parser.add_argument('--device', default='cpu',
                        help="'cpu' or 'cuda[:N]'")
    parser.add_argument('--det-configs', nargs='+', default=[
        'configs/ssdlite_v3.py',
        'configs/ssdlite/ssdlite_mobilenetv3-large-reduced-scratch_8xb24-'
        '660e_coco-320x320.py'],
                        help='SSDLite configs timed against torchvision')
    parser.add_argument('--det-batches', nargs='+', type=positive_int,
                        default=[1, 8])
    parser.add_argument('--det-size', type=parse_size, default=(320, 320))
    parser.add_argument('--train-config', default=(
        'configs/ssdlite/ssdlite_mobilenetv2-scratch_8xb24-660e_coco-'
        '320x320.py'))
    parser.add_argument('--train-peer', default=MMDET_SSDLITE)
    parser.add_argument('--train-batch', type=positive_int, default=8)
    parser.add_argument('--seg-config', default=(
        'configs/lraspp/lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_'
        'cityscapes-769x769.py'))
    parser.add_argument('--seg-peer', default=MMSEG_LRASPP)
    parser.add_argument('--seg-size', type=parse_size, default=(1024, 2048))
    parser.add_argument('--onnx-configs', nargs='+', default=[
        'configs/ssdlite_v3.py',
        'configs/ssdlite/ssdlite_mobilenetv2-scratch_8xb24-660e_coco-'
        '320x320.py',
        'configs/retinanet/retinanet_mobilenetv4-conv-medium-imagenet_8xb32-600e_'
        'coco-384x384.py',
        'configs/lraspp/lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_'
        'cityscapes-769x769.py'])
    parser.add_argument('--onnx-seg-size', type=parse_size,
                        default=(1024, 2048))
    parser.add_argument('--layout-configs', nargs='+', default=[
        'configs/ssdlite/ssdlite_mobilenetv1-scratch_8xb24-660e_coco-'
        '320x320.py',
        'configs/lraspp/lraspp_mobilenetv1-rf2-d16_4xb4-90k_cityscapes-'
        '769x769.py',
        'configs/ssdlite/ssdlite_mobilenetv4-hybrid-large-scratch_8xb24-'
        '660e_coco-320x320.py'],
                        help='whole models the layout suite times after '
                        'the backbones (segmenters at --seg-size)')
    parser.add_argument('--int8-configs', nargs='+', default=[
        'configs/ssdlite_v3.py',
        'configs/ssdlite/ssdlite_mobilenetv4-conv-small-scratch_8xb24-'
        '660e_coco-320x320.py',
        'configs/lraspp/lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_'
        'cityscapes-769x769.py'],
                        help='models of the int8 suite')
    parser.add_argument('--int8-seg-size', type=parse_size,
                        default=(512, 1024),
                        help='input size of the int8 suite\'s segmenters')
    parser.add_argument('--int8-calib-images', type=positive_int, default=4,
                        help='random calibration images of the int8 suite')
    parser.add_argument('--madds-archs', nargs='+', default=None,
                        help='backbones of the madds suite (default all)')
    parser.add_argument('--madds-size', type=parse_size, default=(224, 224))
    parser.add_argument('--no-layout-rows', dest='layout_rows',
                        action='store_false',
                        help='skip the like-for-like rows that run the peer '
                        'on channels-last inputs too (our configs run '
                        'channels-last on the CPU)')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the peak-memory measurements')
    parser.add_argument('--markdown', metavar='OUT',
                        help='also write the tables as Markdown to OUT')
    args = parser.parse_args(argv)
    if 'all' in args.suite:
        args.suite = list(SUITES)
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    return args


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux)."""
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(device):
    if device.startswith('cuda'):
        return (f'device: {torch.cuda.get_device_name(device)}, '
                f'torch {torch.__version__}')
    return (f'device: CPU {cpu_model()}, {os.cpu_count()} cores visible, '
            f'{torch.get_num_threads()} thread(s), torch {torch.__version__}'
            f', {platform.system()} {platform.release()}')


class Report:
    """Prints each section as it is measured; keeps it for ``--markdown``.
    """

    def __init__(self, header_lines):
        self.header = list(header_lines)
        self.sections = []
        for line in self.header:
            print(line)

    def section(self, title, table_header, note=None):
        lines = [table_header]
        self.sections.append((title, note, lines))
        print(f'\n## {title}')
        if note:
            print(note)
        print(table_header, flush=True)
        return lines

    @staticmethod
    def add(lines, row):
        lines.append(row)
        print(row, flush=True)

    def summary(self, lines, text):
        lines.append('')
        lines.append(text)
        print(f'\n{text}', flush=True)

    def markdown(self):
        out = ['<!-- generated by tools/analysis/benchmark.py -->', '']
        out += [f'`{line}`  ' for line in self.header]
        for title, note, lines in self.sections:
            out += ['', f'### {title}', '']
            if note:
                out += [note, '']
            out += lines
        return '\n'.join(out) + '\n'


def target_summary(results, target):
    missed = [r for r in results if r.meets_target is False]
    text = (f'{len(results) - len(missed)} of {len(results)} cases meet '
            f'ratio <= {target}')
    if missed:
        text += '; MISSED: ' + ', '.join(
            f'{r.name} ({r.ratio:.3f})' for r in missed)
    return text


def fail(message):
    sys.exit(f'benchmark: error: {message}')


def checked_archs(requested, allowed, refusal='unknown backbones'):
    """``requested`` backbone names (None: all of ``allowed``); any other
    name ends the run with one line."""
    archs = list(requested or allowed)
    unknown = [a for a in archs if a not in allowed]
    if unknown:
        fail(f'{refusal} {unknown}; allowed: {", ".join(allowed)}')
    return archs


def check_configs(paths):
    for path in paths:
        if '::' not in path and not osp.isfile(path):
            fail(f'config file not found: {path}')


# -- model builders ----------------------------------------------------------
def build(config, device, shape=None):
    """A config's model with random weights (pretrained files named by the
    config are not loaded), SyncBN as BN, on ``device``."""
    from mmengine.model import revert_sync_batchnorm

    from mobilenet_mm.deploy.build import build_config_model
    model = build_config_model(config, shape)
    return revert_sync_batchnorm(model).to(device)


def config_name(config):
    return osp.splitext(osp.basename(config.split('::')[-1]))[0]


# -- suites ------------------------------------------------------------------
def backbone_suite(args, report):
    from mobilenet_mm.analysis.benchmark import (TABLE_HEADER, inference,
                                                 paired_benchmark)
    from mobilenet_mm.analysis.model_stats import build_reference_classifier
    from mobilenet_mm.analysis.references import (REFERENCE_MODELS,
                                                  reference_features,
                                                  reference_kwargs)
    from mobilenet_mm.models.backbones import build_backbone_by_name
    from mobilenet_mm.models.weight_conversion import \
        convert_reference_state_dict

    archs = checked_archs(args.arch, REFERENCE_MODELS, 'no reference for')
    lines = report.section(
        'Backbones against timm / torchvision (same weights)', TABLE_HEADER)
    results = []
    for arch in archs:
        library, name, eps = REFERENCE_MODELS[arch]
        ours = build_backbone_by_name(
            arch, norm_cfg=dict(type='BN', eps=eps)).to(args.device).eval()
        peer = build_reference_classifier(
            library, name, **reference_kwargs(name)).to(args.device).eval()
        # Same weights on both sides: values (and so the speed of float
        # arithmetic, e.g. denormals from an untrained net) are identical.
        ours.load_state_dict(
            convert_reference_state_dict(peer.state_dict(), ours)[0])

        class PeerFeatures(torch.nn.Module):
            def forward(self, x):
                return reference_features(library, peer, x)

        for height, width in args.sizes:
            x = torch.randn(1, 3, height, width, device=args.device)
            result = paired_benchmark(
                f'{arch} vs {library} {name}, {height}x{width}',
                inference(ours, x), inference(PeerFeatures(), x),
                repeats=args.repeats, warmup=args.warmup,
                target=BACKBONE_TARGET)
            report.add(lines, result.row())
            results.append(result)
    report.summary(lines, target_summary(results, BACKBONE_TARGET))


def torchvision_ssdlite(device):
    """torchvision's SSDLite320 with random weights (no downloads), i.e.
    with the reduced tail torchvision picks without a pretrained backbone.
    """
    import torchvision
    builder = getattr(torchvision.models.detection, TORCHVISION_SSDLITE)
    return builder(weights=None, weights_backbone=None).to(device).eval()


def ssdlite_suite(args, report, memory):
    from mobilenet_mm.analysis.benchmark import (TABLE_HEADER, det_batch,
                                                 paired_benchmark,
                                                 peak_memory_mib,
                                                 predict_step_fn,
                                                 random_images,
                                                 set_backbone_layout, synced)
    from mobilenet_mm.deploy import fuse_conv_bn
    check_configs(args.det_configs)
    height, width = args.det_size
    note = (f'Inputs: uint8 images already at {height}x{width} for ours '
            '(DetDataPreprocessor + predict with NMS, rescaled boxes), the '
            'same images as float [0, 1] tensors for torchvision (its '
            'transform, model and post-processing). Random weights on both '
            'sides: nearly every candidate passes the 0.001 score '
            'threshold, so both run NMS at its heaviest. torchvision '
            'without a pretrained backbone builds the reduced tail, which '
            'ssdlite_mobilenetv3-large-reduced matches.')
    lines = report.section(
        f'SSDLite end to end against torchvision {TORCHVISION_SSDLITE}',
        TABLE_HEADER, note)
    peer = torchvision_ssdlite(args.device)
    # The same peer (same weights) on channels-last inputs, as ours run on
    # the CPU: the like-for-like rows, without a target.
    peer_nhwc = set_backbone_layout(copy.deepcopy(peer), True) \
        if args.layout_rows else None
    results = []
    for config in args.det_configs:
        ours = build(config, args.device, (height, width)).eval()
        fused = fuse_conv_bn(copy.deepcopy(ours))
        for batch in args.det_batches:
            images = random_images(batch, height, width)
            data = det_batch([i.to(args.device) for i in images])
            peer_images = [i.float().div(255).to(args.device)
                           for i in images]

            def peer_run(images=peer_images, peer=peer):
                with torch.no_grad():
                    return peer(images)

            peer_fn = synced(peer_run, args.device)
            for label, model, target in (('', ours, E2E_TARGET),
                                         (' fused', fused,
                                          E2E_FUSED_TARGET)):
                name = (f'{config_name(config)}{label} vs torchvision, '
                        f'batch {batch}')
                ours_fn = synced(predict_step_fn(model, data), args.device)
                result = paired_benchmark(name, ours_fn, peer_fn,
                                          repeats=args.repeats,
                                          warmup=args.warmup, target=target)
                report.add(lines, result.row())
                results.append(result)
                if memory is not None:
                    memory.append((f'{name} (inference)',
                                   peak_memory_mib(ours_fn, args.device),
                                   peak_memory_mib(peer_fn, args.device)))
                if peer_nhwc is not None:
                    nhwc_fn = synced(functools.partial(
                        peer_run, peer=peer_nhwc), args.device)
                    report.add(lines, paired_benchmark(
                        f'{name}, torchvision channels-last too', ours_fn,
                        nhwc_fn, repeats=args.repeats,
                        warmup=args.warmup).row())
    missed = [r for r in results if r.meets_target is False]
    report.summary(lines, (
        f'{len(results) - len(missed)} of {len(results)} cases meet their '
        f'target (unfused <= {E2E_TARGET}, fused <= {E2E_FUSED_TARGET})'
        + ('; MISSED: ' + ', '.join(f'{r.name} ({r.ratio:.3f})'
                                    for r in missed) if missed else '')))


def _optim_wrapper(model, cfg):
    from mmengine.optim import build_optim_wrapper

    from mobilenet_mm.deploy.build import quiet_mmengine
    with quiet_mmengine():  # one log line per parameter otherwise
        return build_optim_wrapper(model, cfg.optim_wrapper)


def ssdlite_train_suite(args, report, memory):
    from mobilenet_mm.analysis.benchmark import (TABLE_HEADER, det_batch,
                                                 paired_benchmark,
                                                 peak_memory_mib,
                                                 random_images,
                                                 set_backbone_layout, synced,
                                                 train_step_fn)
    from mobilenet_mm.deploy.build import load_config_file
    check_configs([args.train_config, args.train_peer])
    height, width = args.det_size
    images = random_images(args.train_batch, height, width)
    note = (f'One iteration of mmengine train_step (pre-processing, '
            f'forward, loss, backward, optimizer step), batch '
            f'{args.train_batch} at {height}x{width}, the same images and '
            'random ground-truth boxes on both sides; each side uses its '
            "config's optimizer.")
    lines = report.section(
        f'SSDLite training iteration against mmdet '
        f'{config_name(args.train_peer)}', TABLE_HEADER, note)

    def train_fn(config, channels_last=None):
        """A training step of ``config``'s model; ``channels_last`` None:
        the layout the config gives, else that backbone layout."""
        cfg = load_config_file(config)
        model = build(cfg, args.device, (height, width))
        if channels_last is not None:
            set_backbone_layout(model, channels_last)
        num_classes = model.bbox_head.num_classes
        data = det_batch([i.to(args.device) for i in images], num_classes,
                         boxes_per_image=8)
        return synced(train_step_fn(model, _optim_wrapper(model, cfg),
                                    data), args.device)

    ours, peer = train_fn(args.train_config), train_fn(args.train_peer)
    name = (f'{config_name(args.train_config)} vs mmdet '
            f'{config_name(args.train_peer)}, batch {args.train_batch}')
    result = paired_benchmark(name, ours, peer, repeats=args.heavy_repeats,
                              warmup=args.warmup, target=TRAIN_TARGET)
    report.add(lines, result.row())
    if args.layout_rows:
        # Like for like: both on channels-last inputs, then both NCHW.
        for label, pair in (
                ('both channels-last', (ours, train_fn(args.train_peer,
                                                       True))),
                ('both NCHW', (train_fn(args.train_config, False), peer))):
            report.add(lines, paired_benchmark(
                f'{name}, {label}', *pair, repeats=args.heavy_repeats,
                warmup=args.warmup).row())
    report.summary(lines, target_summary([result], TRAIN_TARGET))
    if memory is not None:
        memory.append((f'{name} (training iteration)',
                       peak_memory_mib(ours, args.device),
                       peak_memory_mib(peer, args.device)))


def lraspp_suite(args, report, memory):
    from mobilenet_mm.analysis.benchmark import (TABLE_HEADER,
                                                 paired_benchmark,
                                                 peak_memory_mib,
                                                 predict_step_fn,
                                                 random_images, seg_batch,
                                                 set_backbone_layout, synced)
    check_configs([args.seg_config, args.seg_peer])
    height, width = args.seg_size
    images = [i.to(args.device) for i in random_images(1, height, width)]
    note = ('Pre-processing to the label map (SegDataPreProcessor + '
            "predict, 'whole' mode), batch 1. No target: the paper's head "
            "(output stride 16, 1x1 convs) is far lighter than mmseg's "
            '(output stride 8, extra skip branches).')
    lines = report.section(
        f'LR-ASPP inference against mmseg {config_name(args.seg_peer)}',
        TABLE_HEADER, note)
    fns = []
    for config in (args.seg_config, args.seg_peer):
        model = build(config, args.device).eval()
        fns.append(synced(predict_step_fn(model, seg_batch(images)),
                          args.device))
    name = (f'{config_name(args.seg_config)} vs mmseg, {height}x{width}')
    result = paired_benchmark(name, *fns, repeats=args.heavy_repeats,
                              warmup=min(args.warmup, 1))
    report.add(lines, result.row())
    if args.layout_rows:
        peer = set_backbone_layout(build(args.seg_peer, args.device).eval(),
                                   True)
        report.add(lines, paired_benchmark(
            f'{name}, mmseg channels-last too', fns[0],
            synced(predict_step_fn(peer, seg_batch(images)), args.device),
            repeats=args.heavy_repeats, warmup=min(args.warmup, 1)).row())
    report.summary(lines, f'ratio ours/mmseg: {result.ratio:.3f} (median)')
    if memory is not None:
        memory.append((f'{name} (inference)',
                       peak_memory_mib(fns[0], args.device),
                       peak_memory_mib(fns[1], args.device)))


def onnx_suite(args, report, memory):
    from mobilenet_mm.analysis.benchmark import (TABLE_HEADER,
                                                 paired_benchmark,
                                                 peak_memory_mib)
    from mobilenet_mm.analysis.model_stats import config_input_shape
    from mobilenet_mm.deploy.build import load_config_file
    from mobilenet_mm.deploy.onnx_export import (build_export_module,
                                                 export_onnx, ort_session)
    if args.device != 'cpu':
        fail('the onnx suite runs onnxruntime on the CPU; use --device cpu')
    check_configs(args.onnx_configs)
    note = ('The exported graph (pre-processing + model; detectors: decoded '
            'boxes and scores of every anchor, before NMS) in onnxruntime '
            '(CPU provider, all graph optimisations) against the same module '
            f'in PyTorch eager, unfused; {args.threads} intra-op thread(s) '
            'on both sides, batch 1. Ratio = onnxruntime / PyTorch.')
    lines = report.section('onnxruntime against PyTorch eager',
                           TABLE_HEADER.replace('ours (ms)', 'onnxruntime '
                                                '(ms)').replace(
                                                    'peer (ms)',
                                                    'PyTorch (ms)'), note)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.onnx_configs:
            cfg = load_config_file(config)
            seg = cfg.get('default_scope') == 'mmseg'
            shape = args.onnx_seg_size if seg else config_input_shape(cfg)
            model = build(cfg, 'cpu', None if seg else shape).eval()
            wrapper = build_export_module(model, shape)
            path = osp.join(tmp, config_name(config) + '.onnx')
            name = f'{config_name(config)}, {shape[0]}x{shape[1]}'
            try:
                export_onnx(wrapper, shape, path, batch=2)
            except Exception as e:  # shown as a result, not hidden
                first = (str(e).strip().splitlines() or [''])[0]
                report.add(lines, f'| {name} | export FAILED: '
                           f'{type(e).__name__}: {first} | - | - | - | - '
                           '| - |')
                continue
            session = ort_session(path, threads=args.threads)
            image = torch.rand(1, 3, *shape) * 255
            feed = {'image': image.numpy()}

            def ort_run(session=session, feed=feed):
                return session.run(None, feed)

            def eager_run(wrapper=wrapper, image=image):
                with torch.no_grad():
                    return wrapper(image)

            repeats = args.heavy_repeats if seg else args.repeats
            result = paired_benchmark(name, ort_run, eager_run,
                                      repeats=repeats,
                                      warmup=min(args.warmup, 2))
            report.add(lines, result.row())
            results.append(result)
            if memory is not None:
                # Without the arena, a run's buffers are its own (with it,
                # they stay resident from the warm-up on and a run adds 0).
                bare = ort_session(path, threads=args.threads, arena=False)
                bare.run(None, feed)
                memory.append((f'{name} (onnxruntime vs PyTorch)',
                               peak_memory_mib(lambda: bare.run(None, feed)),
                               peak_memory_mib(eager_run)))
                del bare
            del session
    report.summary(lines, 'ratio onnxruntime/PyTorch (median): ' + ', '.join(
        f'{r.name.split(",")[0]} {r.ratio:.3f}' for r in results))


def int8_suite(args, report):
    import torchvision

    from mobilenet_mm.analysis.benchmark import (TABLE_HEADER,
                                                 paired_benchmark,
                                                 random_images, vector_isa)
    from mobilenet_mm.analysis.model_stats import config_input_shape
    from mobilenet_mm.deploy.build import load_config_file
    from mobilenet_mm.deploy.onnx_export import (build_export_module,
                                                 detections_from_raw,
                                                 export_onnx, ort_session)
    from mobilenet_mm.deploy.quantize import (DEFAULT_KEEP_FLOAT,
                                              BatchReader, quantize_export)
    if args.device != 'cpu':
        fail('the int8 suite runs onnxruntime on the CPU; use --device cpu')
    check_configs(args.int8_configs)
    isa = vector_isa()
    note = (f'{isa}. Random weights; INT8 = quantize_onnx.py\'s default '
            f'(QDQ S8S8, per-channel weights, {" ".join(DEFAULT_KEEP_FLOAT)} '
            f'in float) and the same with --activations uint8 (U8S8), '
            f'calibrated on {args.int8_calib_images} random '
            'images. "graph": the exported graph alone (pre-processing to '
            'raw boxes and scores, or logits). Against torchvision eager: '
            'detectors end to end (our graph + mmdet\'s post-processing '
            'with NMS against torchvision\'s transform, model and '
            'post-processing, float [0, 1] images), segmenters the logits '
            f'of {TORCHVISION_LRASPP}. {args.threads} thread(s), batch 1.')
    print(isa)
    lines = report.section('INT8 (onnxruntime) against float onnxruntime '
                           'and torchvision eager', TABLE_HEADER, note)
    results = []
    tv_det = torchvision_ssdlite('cpu')
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.int8_configs:
            cfg = load_config_file(config)
            seg = cfg.get('default_scope') == 'mmseg'
            shape = args.int8_seg_size if seg else config_input_shape(cfg)
            model = build(cfg, 'cpu', None if seg else shape).eval()
            wrapper = build_export_module(model, shape)
            name = config_name(config)
            paths = [osp.join(tmp, f'{name}{s}.onnx') for s in ('', '-int8')]
            export_onnx(wrapper, shape, paths[0], batch=2)
            calib = [(torch.rand(1, 3, *shape,
                                 generator=torch.Generator().manual_seed(i))
                      * 255).numpy() for i in range(args.int8_calib_images)]
            quantize_export(paths[0], paths[1], BatchReader(calib, shape))
            # U8S8 beside the S8S8 default: onnxruntime's x86 kernels fuse
            # unsigned activations into QLinearConv more widely.
            paths.append(osp.join(tmp, f'{name}-u8s8.onnx'))
            quantize_export(paths[0], paths[2], BatchReader(calib, shape),
                            activations='uint8')
            sessions = [ort_session(p, threads=args.threads) for p in paths]
            image = random_images(1, *shape)[0]
            feed = {'image': image[None].float().numpy()}
            float_run, int8_run, u8_run = (
                functools.partial(s.run, None, feed) for s in sessions)
            label = f'{name}, {shape[0]}x{shape[1]}'
            for kind, run in (('INT8 S8S8', int8_run),
                              ('INT8 U8S8', u8_run)):
                result = paired_benchmark(
                    f'{label}: {kind} vs float onnxruntime (graph)', run,
                    float_run, repeats=args.heavy_repeats if seg else
                    args.repeats, warmup=min(args.warmup, 2),
                    target=INT8_TARGET)
                report.add(lines, result.row())
                results.append(result)
            peer_input = image.float().div(255)
            if seg:
                peer = getattr(torchvision.models.segmentation,
                               TORCHVISION_LRASPP)(
                    weights=None, weights_backbone=None,
                    num_classes=model.decode_head.out_channels).eval()
                peer_input = peer_input[None]
                ours = {'INT8 S8S8': int8_run, 'INT8 U8S8': u8_run,
                        'float': float_run}
            else:
                peer = tv_det
                peer_input = [peer_input]
                head, levels = model.bbox_head, wrapper.level_sizes

                def end_to_end(run):
                    def fn():
                        boxes, scores = (torch.from_numpy(o)
                                         for o in run())
                        return detections_from_raw(head, boxes, scores,
                                                   levels)
                    return fn
                ours = {'INT8 S8S8': end_to_end(int8_run),
                        'INT8 U8S8': end_to_end(u8_run),
                        'float': end_to_end(float_run)}

            def peer_run(peer=peer, x=peer_input):
                with torch.no_grad():
                    return peer(x)

            for kind, fn in ours.items():
                what = 'end to end' if not seg else 'logits'
                report.add(lines, paired_benchmark(
                    f'{label}: {kind} onnxruntime vs torchvision eager '
                    f'({what})', fn, peer_run,
                    repeats=args.heavy_repeats if seg else args.repeats,
                    warmup=min(args.warmup, 2)).row())
            del sessions
    report.summary(lines, target_summary(results, INT8_TARGET))


def madds_suite(args, report):
    from mobilenet_mm.analysis import count_madds
    from mobilenet_mm.analysis.benchmark import (EFFICIENCY_HEADER,
                                                 EfficiencyResult,
                                                 dense_conv_like, inference,
                                                 paired_benchmark)
    from mobilenet_mm.models.backbones import (ARCH_NAMES,
                                               build_backbone_by_name)
    archs = checked_archs(args.madds_archs, ARCH_NAMES)
    height, width = args.madds_size
    note = (f'Each backbone at {height}x{width}, batch 1 (features to '
            'stride 32, no classifier), against a dense 3x3 conv (128 -> '
            '128 channels) on a square map sized to about the same MAdds, '
            'timed in back-to-back pairs: the fraction of the dense conv\'s '
            'MAdds/s the backbone achieves.')
    lines = report.section('MAdds per second against a dense 3x3 conv',
                           EFFICIENCY_HEADER, note)
    for arch in archs:
        model = build_backbone_by_name(arch).to(args.device).eval()
        x = torch.randn(1, 3, height, width, device=args.device)
        madds = count_madds(model, x)
        conv, dense_x, dense_madds = dense_conv_like(madds,
                                                     device=args.device)
        paired = paired_benchmark(arch, inference(model, x),
                                  inference(conv, dense_x),
                                  repeats=args.repeats, warmup=args.warmup)
        report.add(lines, EfficiencyResult(arch, madds, dense_madds,
                                           paired).row())


def layout_suite(args, report):
    from mobilenet_mm.analysis.benchmark import (TABLE_HEADER, det_batch,
                                                 inference, paired_benchmark,
                                                 predict_step_fn,
                                                 random_images, seg_batch,
                                                 set_backbone_layout, synced)
    from mobilenet_mm.analysis.model_stats import config_input_shape
    from mobilenet_mm.deploy.build import load_config_file
    from mobilenet_mm.models.backbones import (ARCH_NAMES,
                                               build_backbone_by_name)
    archs = checked_archs(args.arch, ARCH_NAMES)
    note = ('Our backbone (then each `--layout-configs` model, pre-processing '
            'to the final boxes or label map) with channels-last input '
            '(ours) against the same model and weights on NCHW tensors '
            '(peer), batch 1, eval.')
    lines = report.section('Backbones: channels-last against NCHW',
                           TABLE_HEADER, note)
    for arch in archs:
        nchw = build_backbone_by_name(arch).to(args.device).eval()
        # Maps left NHWC, as our configs' necks and heads take them (no
        # conversion back to NCHW in the timed forward).
        nhwc = build_backbone_by_name(arch, channels_last=True,
                                      channels_last_outputs=True).to(
                                          args.device).eval()
        nhwc.load_state_dict(nchw.state_dict())
        for height, width in args.sizes:
            x = torch.randn(1, 3, height, width, device=args.device)
            report.add(lines, paired_benchmark(
                f'{arch}, {height}x{width}', inference(nhwc, x),
                inference(nchw, x), repeats=args.repeats,
                warmup=args.warmup).row())
    # Whole models (pre-processing to boxes or label maps), batch 1.
    check_configs(args.layout_configs)
    for config in args.layout_configs:
        cfg = load_config_file(config)
        seg = cfg.get('default_scope') == 'mmseg'
        shape = args.seg_size if seg else config_input_shape(cfg)
        nchw = set_backbone_layout(
            build(cfg, args.device, None if seg else shape).eval(), False)
        nhwc = set_backbone_layout(copy.deepcopy(nchw), True)
        images = [i.to(args.device) for i in random_images(1, *shape)]
        data = seg_batch(images) if seg else det_batch(images)
        report.add(lines, paired_benchmark(
            f'{config_name(config)} (whole model), {shape[0]}x{shape[1]}',
            synced(predict_step_fn(nhwc, data), args.device),
            synced(predict_step_fn(nchw, data), args.device),
            repeats=args.heavy_repeats if seg else args.repeats,
            warmup=min(args.warmup, 1) if seg else args.warmup).row())


def main(argv=None):
    args = parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        fail(f'--device {args.device}: no CUDA device here')
    torch.set_num_threads(args.threads)
    # Tracer notices of the ONNX export, mmengine deprecations: not results.
    warnings.filterwarnings('ignore')
    report = Report([
        machine_line(args.device),
        'command: python tools/analysis/benchmark.py '
        + ' '.join(argv if argv is not None else sys.argv[1:])])
    memory = None if args.no_memory else []
    for suite in args.suite:
        if suite == 'backbones':
            backbone_suite(args, report)
        elif suite == 'ssdlite':
            ssdlite_suite(args, report, memory)
        elif suite == 'ssdlite-train':
            ssdlite_train_suite(args, report, memory)
        elif suite == 'lraspp':
            lraspp_suite(args, report, memory)
        elif suite == 'onnx':
            onnx_suite(args, report, memory)
        elif suite == 'madds':
            madds_suite(args, report)
        elif suite == 'layout':
            layout_suite(args, report)
        elif suite == 'int8':
            int8_suite(args, report)
    if memory:
        from mobilenet_mm.analysis.benchmark import (MEMORY_HEADER,
                                                     MemoryResult)
        lines = report.section(
            'Peak memory', MEMORY_HEADER,
            'Peak added by one call, after warm-up: CPU resident set '
            '(VmHWM above VmRSS before the call, freed heap returned '
            'first), or the CUDA allocator\'s peak.')
        for name, ours, peer in memory:
            report.add(lines, MemoryResult(name, ours, peer).row())
    if args.markdown:
        directory = osp.dirname(osp.abspath(args.markdown))
        os.makedirs(directory, exist_ok=True)
        with open(args.markdown, 'w') as out:
            out.write(report.markdown())
        print(f'wrote {args.markdown}')


if __name__ == '__main__':
    main()
