#!/usr/bin/env python
"""Export a detector, segmentor or backbone of a config to ONNX and check
it against PyTorch with onnxruntime.

    python tools/deploy/export_onnx.py CONFIG [CKPT] [--out FILE]
        [--opset 17] [--shape H W] [--with-nms] [--backbone-only]
        [--dynamic-shape] [--fuse]
        [--verify-batch 2] [--no-verify] [--device cpu|cuda[:N]]

The graph takes ``image``: float32 (B, 3, H, W), pixels 0-255 as the test
pipeline gives them (BGR, resized to H x W; normalisation is inside the
graph); the batch is dynamic. Outputs: detectors ``boxes`` (B, N, 4) and
``scores`` (B, N, classes) of every anchor, or with ``--with-nms``
``det_boxes``, ``det_scores``, ``det_labels``, ``det_batch``; segmentors
``logits``; ``--backbone-only`` the feature maps ``feat0..``.
``--dynamic-shape`` makes height and width dynamic too (segmentors and
backbones; refused for detectors, whose graphs hold one size's anchors). See
``mobilenet_mm/deploy/onnx_export.py``.

Without CKPT the weights are random (useful to check that a config
exports). After writing the file, onnxruntime and PyTorch run one random
batch: every output must agree within 1e-4 of its largest magnitude and the
detections after NMS must be the same; otherwise the exit status is 1.
``--device cuda`` exports the model from the GPU and checks onnxruntime
(CPU) against PyTorch on the GPU in float32 (TF32 off for that run).
"""
import argparse
import os
import os.path as osp
import sys
import time

from mobilenet_mm.apis import check_file, detect_task, load_config, run_cli
from mobilenet_mm.errors import CLIError
from mobilenet_mm.utils.checkpoint import (check_state_dict_matches,
                                           read_state_dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a config (detector, segmentor or its backbone) '
        'to ONNX and check it with onnxruntime.')
    parser.add_argument('config', help='mmdet or mmseg config file')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint (default: random weights)')
    parser.add_argument('--out', help='ONNX file (default: '
                        'work_dirs/onnx/<config>[-backbone][-nms].onnx)')
    parser.add_argument('--opset', type=int, default=17,
                        help='ONNX opset, 17 to the newest torch exports '
                        '(default 17)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: the test pipeline\'s '
                        'Resize scale)')
    parser.add_argument('--with-nms', action='store_true',
                        help='detectors: end the graph with NMS')
    parser.add_argument('--backbone-only', action='store_true',
                        help='export the backbone (with pre-processing)')
    parser.add_argument('--dynamic-shape', action='store_true',
                        help='dynamic height and width too (segmentors and '
                        'backbones); checked at a second size')
    parser.add_argument('--fuse', action='store_true',
                        help='fold conv + BN before exporting')
    parser.add_argument('--verify-batch', type=int, default=2,
                        help='batch of the onnxruntime check (default 2)')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the onnxruntime check')
    parser.add_argument('--device', default='cpu',
                        help='where the model lives while it is traced and '
                        'checked: cpu (default) or cuda[:N]')
    return parser.parse_args(argv)


def default_out(config: str, backbone_only: bool, with_nms: bool) -> str:
    name = osp.splitext(osp.basename(config))[0]
    name += '-backbone' if backbone_only else ''
    name += '-nms' if with_nms else ''
    return osp.join('work_dirs', 'onnx', name + '.onnx')


def main(argv=None) -> int:
    args = parse_args(argv)
    check_file(args.config, 'config file')
    if args.checkpoint:
        check_file(args.checkpoint, 'checkpoint file')
    from mobilenet_mm.deploy.onnx_export import MIN_OPSET, max_opset
    if not MIN_OPSET <= args.opset <= max_opset():
        raise CLIError(f'--opset must be {MIN_OPSET} or newer and at most '
                       f'{max_opset()} (the newest this torch exports), got '
                       f'{args.opset}')
    if args.shape and min(args.shape) < 32:
        raise CLIError(f'--shape must be at least 32 x 32, got {args.shape}')
    if args.verify_batch < 1:
        raise CLIError(f'--verify-batch must be >= 1, got '
                       f'{args.verify_batch}')
    if args.with_nms and args.backbone_only:
        raise CLIError('--with-nms and --backbone-only exclude each other')
    import torch
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise CLIError(f'--device must be cpu or cuda[:N], got '
                       f'{args.device!r}') from None
    if device.type not in ('cpu', 'cuda'):
        raise CLIError(f'--device must be cpu or cuda[:N], got '
                       f'{args.device!r}')
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise CLIError(f'--device {args.device}: no CUDA device here')
    cfg = load_config(args.config)
    task = detect_task(cfg, args.config)
    if args.dynamic_shape and task == 'det' and not args.backbone_only:
        raise CLIError('--dynamic-shape: a detector graph holds the anchors '
                       'of one input size; export one graph per --shape '
                       '(or use --backbone-only)')
    if args.with_nms and task != 'det':
        raise CLIError(f'--with-nms applies to detection configs; '
                       f'{args.config} is a segmentation config')
    state = read_state_dict(args.checkpoint) if args.checkpoint else None

    from mobilenet_mm.deploy import fuse_conv_bn
    from mobilenet_mm.deploy.build import build_checkpoint_model, export_shape
    from mobilenet_mm.deploy.onnx_export import (build_export_module,
                                                 export_onnx, verify_export)
    shape = export_shape(cfg, args.shape, args.config)
    model = build_checkpoint_model(cfg, task, shape, args.checkpoint, state)
    model.to(device).eval()
    if args.fuse:
        fuse_conv_bn(model)
        print(f'fused {model.fused_bn_count} conv + BN pairs')
    try:
        wrapper = build_export_module(model, shape, args.backbone_only,
                                      args.with_nms)
    except ValueError as e:
        raise CLIError(str(e)) from None
    out = args.out or default_out(args.config, args.backbone_only,
                                  args.with_nms)
    start = time.perf_counter()
    try:
        names = export_onnx(
            wrapper, shape, out, opset=args.opset, metadata=dict(
                config=osp.basename(args.config),
                checkpoint=osp.basename(args.checkpoint or '') or
                'random weights',
                input='image: float32 (B, 3, H, W), pixels 0-255 in the '
                'pipeline channel order; normalisation inside',
                input_size=f'{shape[0]}x{shape[1]}', fused=str(args.fuse),
                exported_on=device.type),
            dynamic_hw=args.dynamic_shape)
    except ValueError as e:
        raise CLIError(f'{args.config}: {e}') from None
    size_mb = os.path.getsize(out) / 2**20
    axes = 'batch, height and width' if args.dynamic_shape else 'batch'
    print(f'wrote {out} ({size_mb:.1f} MiB, opset {args.opset}, input '
          f'{shape[0]}x{shape[1]}, dynamic {axes}, outputs '
          f'{", ".join(names)}) in {time.perf_counter() - start:.1f} s')
    if args.no_verify:
        return 0
    # A dynamic graph is checked at a second size as well (3/4 of each side,
    # a multiple of 32).
    sizes = [shape] + ([tuple(max(32, n * 3 // 4 // 32 * 32) for n in shape)]
                       if args.dynamic_shape else [])
    ok = True
    for size in sizes:
        result = verify_export(wrapper, out, size, batch=args.verify_batch)
        on = '' if device.type == 'cpu' else f' ({device.type})'
        print(f'onnxruntime vs PyTorch{on}, batch {args.verify_batch}, '
              f'{size[0]}x{size[1]}:')
        for line in result.lines:
            print('  ' + line)
        ok &= result.ok
    if not ok:
        print(f'{osp.basename(sys.argv[0])}: error: the ONNX graph does not '
              'match PyTorch (see above)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
