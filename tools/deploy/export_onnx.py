#!/usr/bin/env python
"""Export a detector, segmentor or backbone of a config to ONNX and check
it against PyTorch with onnxruntime.

    python tools/deploy/export_onnx.py CONFIG [CKPT] [--out FILE]
        [--opset 17] [--shape H W] [--with-nms] [--backbone-only] [--fuse]
        [--verify-batch 2] [--no-verify] [--device cpu|cuda[:N]]

The graph takes ``image``: float32 (B, 3, H, W), pixels 0-255 as the test
pipeline gives them (BGR, resized to H x W; normalisation is inside the
graph); the batch is dynamic. Outputs: detectors ``boxes`` (B, N, 4) and
``scores`` (B, N, classes) of every anchor, or with ``--with-nms``
``det_boxes``, ``det_scores``, ``det_labels``, ``det_batch``; segmentors
``logits``; ``--backbone-only`` the feature maps ``feat0..``. See
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

from mobilenet_mm.tools_common import (CLIError, check_file,
                                       check_state_dict_matches, detect_task,
                                       load_config, read_state_dict, run_cli)


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
                        help='ONNX opset, >= 17 (default 17)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: the test pipeline\'s '
                        'Resize scale)')
    parser.add_argument('--with-nms', action='store_true',
                        help='detectors: end the graph with NMS')
    parser.add_argument('--backbone-only', action='store_true',
                        help='export the backbone (with pre-processing)')
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
    if args.opset < 17:
        raise CLIError(f'--opset must be 17 or newer, got {args.opset}')
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
    if args.with_nms and task != 'det':
        raise CLIError(f'--with-nms applies to detection configs; '
                       f'{args.config} is a segmentation config')
    state = read_state_dict(args.checkpoint) if args.checkpoint else None

    from mobilenet_mm.analysis.model_stats import (build_model_from_config,
                                                   config_input_shape)
    from mobilenet_mm.deploy import fuse_conv_bn
    from mobilenet_mm.deploy.build import init_random, quiet_mmengine
    from mobilenet_mm.deploy.onnx_export import (build_export_module,
                                                 export_onnx,
                                                 set_detector_input_size,
                                                 verify_export)
    if args.shape:
        shape = tuple(args.shape)
    else:
        try:
            shape = config_input_shape(cfg)
        except ValueError as e:
            raise CLIError(f'{args.config}: {e}') from None
    if task == 'det':
        set_detector_input_size(cfg, shape)
    cfg.setdefault('default_scope', 'mmdet' if task == 'det' else 'mmseg')
    torch.manual_seed(0)
    with quiet_mmengine():
        model = build_model_from_config(cfg)
    if state is not None:
        check_state_dict_matches(model, state, args.checkpoint)
        model.load_state_dict(state)
    else:
        init_random(model)
        print('no checkpoint given: exporting random weights')
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
    names = export_onnx(wrapper, shape, out, opset=args.opset, metadata=dict(
        config=osp.basename(args.config),
        checkpoint=osp.basename(args.checkpoint or '') or 'random weights',
        input='image: float32 (B, 3, H, W), pixels 0-255 in the pipeline '
        'channel order; normalisation inside',
        input_size=f'{shape[0]}x{shape[1]}', fused=str(args.fuse),
        exported_on=device.type))
    size_mb = os.path.getsize(out) / 2**20
    print(f'wrote {out} ({size_mb:.1f} MiB, opset {args.opset}, input '
          f'{shape[0]}x{shape[1]}, dynamic batch, outputs '
          f'{", ".join(names)}) in {time.perf_counter() - start:.1f} s')
    if args.no_verify:
        return 0
    result = verify_export(wrapper, out, shape, batch=args.verify_batch)
    print(f'onnxruntime vs PyTorch ({device.type}), batch '
          f'{args.verify_batch}:')
    for line in result.lines:
        print('  ' + line)
    if not result.ok:
        print(f'{osp.basename(sys.argv[0])}: error: the ONNX graph does not '
              'match PyTorch (see above)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
