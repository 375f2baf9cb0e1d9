#!/usr/bin/env python
"""Speed of our models against their peers, measured in the same run.

    python tools/analysis/benchmark.py --suite backbones [--arch v3_large ...]
        [--sizes 224x224 512x1024] [--repeats 20] [--threads 1]

Each case prints the median ratio ours/peer and its inter-quartile range;
a case that misses its target is shown as MISSED with the figure. These
are benchmarks, not tests: timings on shared machines are noisy, ratios
from back-to-back pairs much less so.
"""
import argparse
import platform
import sys

import torch

BACKBONE_TARGET = 1.05


def parse_size(text):
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size {text!r} is not HxW (e.g. 224x224)')
    return height, width


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--suite', choices=['backbones'], default='backbones')
    parser.add_argument('--arch', nargs='+', default=None,
                        help='backbones to time (default: all with a '
                        'timm/torchvision reference)')
    parser.add_argument('--sizes', nargs='+', type=parse_size,
                        default=[(224, 224), (512, 1024)])
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (1 is the most stable)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args()


def machine_line(device):
    if device.startswith('cuda'):
        return f'device: {torch.cuda.get_device_name(device)}'
    return (f'device: CPU {platform.processor() or platform.machine()}, '
            f'{torch.get_num_threads()} thread(s), torch {torch.__version__}')


def backbone_suite(args):
    from mobilenet_mm.analysis.benchmark import (TABLE_HEADER, inference,
                                                 paired_benchmark)
    from mobilenet_mm.analysis.model_stats import build_reference_classifier
    from mobilenet_mm.analysis.references import (REFERENCE_MODELS,
                                                  reference_features,
                                                  reference_kwargs)
    from mobilenet_mm.models.backbones import build_backbone_by_name
    from mobilenet_mm.models.weight_conversion import \
        convert_reference_state_dict

    archs = args.arch or list(REFERENCE_MODELS)
    unknown = [a for a in archs if a not in REFERENCE_MODELS]
    if unknown:
        sys.exit(f'benchmark: error: no reference for {unknown}; allowed: '
                 f'{", ".join(REFERENCE_MODELS)}')
    print(TABLE_HEADER)
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
            print(result.row(), flush=True)
            results.append(result)
    missed = [r for r in results if r.meets_target is False]
    print(f'\n{len(results) - len(missed)} of {len(results)} cases meet '
          f'ratio <= {BACKBONE_TARGET}' +
          (f'; missed: {", ".join(r.name for r in missed)}' if missed else ''))


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line(args.device))
    print(f'command: python tools/analysis/benchmark.py '
          f'{" ".join(sys.argv[1:])}\n')
    if args.suite == 'backbones':
        backbone_suite(args)


if __name__ == '__main__':
    main()
