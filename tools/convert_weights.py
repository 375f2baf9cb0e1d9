#!/usr/bin/env python
"""Convert timm / torchvision weights into mobilenet_mm checkpoints.

ImageNet classifiers into a backbone checkpoint (``--arch``):

    python tools/convert_weights.py mobilenetv4_conv_medium.safetensors \\
        mnv4_conv_medium_mm.pth --arch v4_conv_medium

The output loads into the bare backbone with mmengine's
``load_checkpoint(backbone, DST, strict=True)`` and into a detector/segmenter
with ``init_cfg=dict(type='Pretrained', checkpoint=DST)`` on its backbone.
Classifier keys are dropped and listed.

torchvision's trained SSDLite320 / LR-ASPP models into a whole-model
checkpoint of a config (``--config``), e.g.

    python tools/convert_weights.py \\
        ssdlite320_mobilenet_v3_large_coco-a79551df.pth \\
        checkpoints/ssdlite320_mobilenet_v3_large_coco_mm.pth \\
        --config configs/ssdlite/ssdlite_mobilenetv3-large-reduced-torchvision_8xb24-660e_coco-320x320.py

which ``tools/test.py CONFIG DST``, ``load_from`` and
``mobilenet_mm.FinetuneHook`` take. The files are the ones torchvision's
weight URLs serve (README "Start from trained weights"); nothing is
downloaded here.
"""
import argparse
import io
import os
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='timm/torchvision weights -> mobilenet_mm checkpoint')
    parser.add_argument('src', help='state-dict file (.pth, .pt, .bin or '
                        '.safetensors)')
    parser.add_argument('dst', help='output mmengine checkpoint (.pth)')
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--arch',
                        help='backbone of an ImageNet classifier: v1, v2, '
                        'v3_large, v3_small, v3_large_minimalistic, '
                        'v3_small_minimalistic, v4_conv_small, '
                        'v4_conv_medium, v4_conv_large, v4_hybrid_medium, '
                        'v4_hybrid_large')
    target.add_argument('--config',
                        help="config whose model takes torchvision's trained "
                        'ssdlite320_mobilenet_v3_large or '
                        'lraspp_mobilenet_v3_large, e.g. '
                        'configs/ssdlite/ssdlite_mobilenetv3-large-reduced-torchvision_8xb24-660e_coco-320x320.py')
    parser.add_argument('--widen-factor', type=float, default=1.0,
                        help='with --arch')
    parser.add_argument('--force', action='store_true',
                        help='overwrite DST if it exists')
    return parser.parse_args(argv)


def convert_backbone(args, state):
    from mobilenet_mm.models.backbones import build_backbone_by_name
    from mobilenet_mm.models.weight_conversion import (
        convert_reference_state_dict, is_own_state_dict)
    backbone = build_backbone_by_name(args.arch,
                                      widen_factor=args.widen_factor)
    if is_own_state_dict(state, backbone):
        raise ValueError(f'{args.src} already uses mobilenet_mm key names; '
                         'nothing to convert')
    converted, dropped = convert_reference_state_dict(state, backbone)
    meta = dict(arch=args.arch, widen_factor=args.widen_factor)
    done = [f'wrote {len(converted)} tensors for {args.arch} to {args.dst}']
    if dropped:
        done.append(f'dropped {len(dropped)} classifier keys: '
                    f'{", ".join(dropped)}')
    return converted, meta, done


def convert_model(args, state):
    from mmengine.model import revert_sync_batchnorm

    from mobilenet_mm.analysis.model_stats import build_model_from_config
    from mobilenet_mm.models.torchvision_conversion import \
        convert_torchvision_model
    from mobilenet_mm.models.weight_conversion import is_own_state_dict
    from mobilenet_mm.apis import load_config
    cfg = load_config(args.config)
    model = revert_sync_batchnorm(build_model_from_config(cfg))
    if is_own_state_dict(state, model):
        raise ValueError('it already uses mobilenet_mm key names; nothing '
                         'to convert')
    converted, name = convert_torchvision_model(state, model)
    meta = dict(config=os.path.basename(args.config),
                converted_from=f'torchvision {name}')
    return converted, meta, [
        f'wrote {len(converted)} tensors of torchvision\'s {name} for '
        f'{args.config} to {args.dst}'
    ]


def main(argv=None):
    args = parse_args(argv)
    import torch

    from mobilenet_mm.errors import CheckpointLoadError, CLIError
    from mobilenet_mm.utils.checkpoint import (atomic_write,
                                               load_checkpoint_file,
                                               unwrap_state_dict)
    if os.path.exists(args.dst) and not args.force:
        sys.exit(f'convert_weights: error: {args.dst} exists; pass --force '
                 'to overwrite it')
    try:
        checkpoint = load_checkpoint_file(args.src)
        if not isinstance(checkpoint, dict):
            sys.exit(f'convert_weights: error: {args.src} holds a '
                     f'{type(checkpoint).__name__}, not a state dict (a dict '
                     'of tensors, or one under state_dict/model)')
        state = unwrap_state_dict(checkpoint)
        converted, meta, done = (convert_model if args.config else
                                 convert_backbone)(args, state)
    except (ValueError, FileNotFoundError, CheckpointLoadError,
            CLIError) as error:
        sys.exit(f'convert_weights: error: {args.src}: {error}'
                 if args.config else f'convert_weights: error: {error}')
    buffer = io.BytesIO()
    torch.save(dict(state_dict=converted,
                    meta=dict(source=os.path.basename(args.src), **meta)),
               buffer)
    atomic_write(args.dst, buffer.getvalue())
    print('\n'.join(done))


if __name__ == '__main__':
    from mobilenet_mm.apis import run_cli
    sys.exit(run_cli(main))
