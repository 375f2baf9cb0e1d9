#!/usr/bin/env python
"""Print params and MAdds next to the papers' figures.

    python tools/analysis/model_stats.py --arch v3_large [--widen-factor 0.75]
    python tools/analysis/model_stats.py --all-archs      # README table
    python tools/analysis/model_stats.py configs/ssdlite_v3.py [--shape H W]
        [--cfg-options model.bbox_head.num_classes=89]
"""
import argparse
import sys

MIN_SIZE = 32


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', help='detection/segmentation '
                        'config: whole-model stats at its test input size')
    parser.add_argument('--arch', help='backbone name (v1, v2, v3_large, '
                        'v3_small, v4_conv_small, ...) with its ImageNet head')
    parser.add_argument('--widen-factor', type=float, default=1.0)
    parser.add_argument('--resolution', type=int, default=None,
                        help='ImageNet input size (default: the paper\'s)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size for CONFIG (default: test Resize)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override CONFIG settings, key=value (e.g. '
                        'the class count a paper counted with)')
    parser.add_argument('--all-archs', action='store_true',
                        help='every row of the papers\' ImageNet tables')
    parser.add_argument('--no-reference', action='store_true',
                        help='skip building the timm/torchvision reference')
    args = parser.parse_args(argv)
    if sum(bool(x) for x in (args.config, args.arch, args.all_archs)) != 1:
        parser.error('give exactly one of CONFIG, --arch, --all-archs')
    # The networks downsample 32 times: smaller inputs fail deep inside.
    if args.resolution is not None and args.resolution < MIN_SIZE:
        parser.error(f'--resolution must be >= {MIN_SIZE}, got '
                     f'{args.resolution}')
    if args.shape and min(args.shape) < MIN_SIZE:
        parser.error(f'--shape H W must both be >= {MIN_SIZE}, got '
                     f'{args.shape[0]} {args.shape[1]}')
    if not args.widen_factor > 0:
        parser.error(f'--widen-factor must be > 0, got {args.widen_factor}')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mobilenet_mm.analysis import model_stats as ms
    try:
        if args.all_archs:
            rows = ms.all_classifier_stats(not args.no_reference)
            print(ms.format_classifier_table(rows))
        elif args.arch:
            stats = ms.classifier_stats(args.arch, args.widen_factor,
                                        args.resolution,
                                        not args.no_reference)
            print(ms.format_classifier_table([stats]))
            if stats['paper'] is not None and stats['paper'].note:
                print(f"note: {stats['paper'].note}")
        else:
            stats = ms.config_stats(args.config, args.shape,
                                    args.cfg_options)
            paper = stats['paper']
            height, width = stats['shape']
            print(f"| config | input | params (M) | paper params (M) | "
                  f"MAdds (G) | paper MAdds (G) | paper {paper.metric if paper else 'score'} | source |")
            print('|---|---|---|---|---|---|---|---|')
            print(f"| {stats['config']} | {height}x{width} | "
                  f"{stats['params'] / 1e6:.3f} | "
                  f"{paper.params_m.value if paper else '-'} | "
                  f"{stats['madds'] / 1e9:.3f} | "
                  f"{stats['paper_madds'] or '-'} | "
                  f"{paper.score if paper else '-'} | "
                  f"{paper.source if paper else 'ours'} |")
            if paper and stats['paper_madds'] is None:
                print(f'note: the paper gives MAdds at the config\'s own '
                      f'input size, not at {height}x{width}')
    except (ValueError, FileNotFoundError) as error:
        from mobilenet_mm.errors import CLIError
        raise CLIError(str(error)) from None  # run_cli's one line


if __name__ == '__main__':
    from mobilenet_mm.apis import run_cli
    sys.exit(run_cli(main))
