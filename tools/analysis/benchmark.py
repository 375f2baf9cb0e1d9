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
import sys

from mobilenet_mm.analysis.benchmark_suites import (MMDET_SSDLITE,
                                                    MMSEG_LRASPP, SUITES,
                                                    run_suites)
from mobilenet_mm.apis.cli import parse_size, positive_int
from mobilenet_mm.errors import CLIError


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


def main(argv=None):
    args = parse_args(argv)
    command = 'python tools/analysis/benchmark.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:])
    try:
        run_suites(args, command)
    except CLIError as e:
        sys.exit(f'benchmark: error: {e}')


if __name__ == '__main__':
    main()
