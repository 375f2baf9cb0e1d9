#!/usr/bin/env python
"""Convert timm / torchvision ImageNet weights into a mobilenet_mm backbone
checkpoint.

    python tools/convert_weights.py mobilenetv4_conv_medium.safetensors \\
        mnv4_conv_medium_mm.pth --arch v4_conv_medium

The output loads into the bare backbone with mmengine's
``load_checkpoint(backbone, DST, strict=True)`` and into a detector/segmenter
with ``init_cfg=dict(type='Pretrained', checkpoint=DST)`` on its backbone.
Classifier keys are dropped and listed.
"""
import argparse
import io
import os
import sys


def parse_args():
    parser = argparse.ArgumentParser(
        description='timm/torchvision weights -> mobilenet_mm backbone')
    parser.add_argument('src', help='state-dict file (.pth, .pt, .bin or '
                        '.safetensors)')
    parser.add_argument('dst', help='output mmengine checkpoint (.pth)')
    parser.add_argument('--arch', required=True,
                        help='v1, v2, v3_large, v3_small, '
                        'v3_large_minimalistic, v3_small_minimalistic, '
                        'v4_conv_small, v4_conv_medium, v4_conv_large, '
                        'v4_hybrid_medium, v4_hybrid_large')
    parser.add_argument('--widen-factor', type=float, default=1.0)
    parser.add_argument('--force', action='store_true',
                        help='overwrite DST if it exists')
    return parser.parse_args()


def main(argv=None):
    args = parse_args()
    import torch

    from mobilenet_mm.models.backbones import build_backbone_by_name
    from mobilenet_mm.errors import CheckpointLoadError
    from mobilenet_mm.models.weight_conversion import (
        convert_reference_state_dict, is_own_state_dict)
    from mobilenet_mm.utils.checkpoint import (atomic_write,
                                               load_checkpoint_file,
                                               unwrap_state_dict)
    if os.path.exists(args.dst) and not args.force:
        sys.exit(f'convert_weights: error: {args.dst} exists; pass --force '
                 'to overwrite it')
    try:
        backbone = build_backbone_by_name(args.arch,
                                          widen_factor=args.widen_factor)
        checkpoint = load_checkpoint_file(args.src)
        if not isinstance(checkpoint, dict):
            sys.exit(f'convert_weights: error: {args.src} holds a '
                     f'{type(checkpoint).__name__}, not a state dict (a dict '
                     'of tensors, or one under state_dict/model)')
        state = unwrap_state_dict(checkpoint)
        if is_own_state_dict(state, backbone):
            sys.exit(f'convert_weights: error: {args.src} already uses '
                     'mobilenet_mm key names; nothing to convert')
        converted, dropped = convert_reference_state_dict(state, backbone)
    except (ValueError, FileNotFoundError, CheckpointLoadError) as error:
        sys.exit(f'convert_weights: error: {error}')
    buffer = io.BytesIO()
    torch.save(dict(state_dict=converted,
                    meta=dict(source=os.path.basename(args.src),
                              arch=args.arch,
                              widen_factor=args.widen_factor)), buffer)
    atomic_write(args.dst, buffer.getvalue())
    print(f'wrote {len(converted)} tensors for {args.arch} to {args.dst}')
    if dropped:
        print(f'dropped {len(dropped)} classifier keys: {", ".join(dropped)}')


if __name__ == '__main__':
    from mobilenet_mm.apis import run_cli
    sys.exit(run_cli(main))
