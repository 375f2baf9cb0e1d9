#!/usr/bin/env python
"""INT8 static quantization of a detector or segmentor with onnxruntime.

    python tools/deploy/quantize_onnx.py CONFIG CKPT [--out FILE]
        [--float-out FILE] [--calib-method minmax|entropy|percentile]
        [--num-images 100] [--calib-loader val|train|test]
        [--keep-float ENTRY ...] [--per-tensor] [--activations int8|uint8]
        [--shape H W] [--no-verify]

CKPT is a checkpoint (the model is exported first, with
tools/deploy/export_onnx.py's graph, and the float file kept at
``--float-out``) or a float ONNX export of ours of this config. The INT8
file is QDQ, signed 8-bit activations and weights, per-channel weights
(``--per-tensor`` for one scale per tensor; ``--activations uint8`` for
unsigned activations, U8S8), with activation ranges from
``--num-images`` images of the ``--calib-loader`` dataloader's data set
after the test pipeline. ``--keep-float`` replaces the default set kept in
float (``@decode``; ``none`` keeps nothing): op types, node-name globs or
the groups ``@decode`` and ``@predictors`` (mobilenet_mm/deploy/quantize.py
says what each means and why the default is what it is).

Afterwards INT8 and float run on the first calibration images and the
differences of their outputs are printed. Evaluate either file with the
config's metric: ``python tools/test.py CONFIG FILE.onnx``.
"""
import argparse
import os
import os.path as osp
import sys

from mobilenet_mm.apis import (check_file, detect_task, load_config,
                               register_host_modules, run_cli)
from mobilenet_mm.datasets.path_checks import check_data_paths
from mobilenet_mm.errors import CLIError
from mobilenet_mm.utils.checkpoint import read_state_dict

COMPARED_IMAGES = 8


def parse_args(argv=None):
    from mobilenet_mm.deploy.quantize import (CALIB_LOADERS, CALIB_METHODS,
                                              DEFAULT_KEEP_FLOAT,
                                              DEFAULT_NUM_IMAGES)
    parser = argparse.ArgumentParser(
        description='Quantize a config\'s model to INT8 (onnxruntime static '
        'quantization, QDQ) calibrated on its own data.')
    parser.add_argument('config', help='mmdet or mmseg config file')
    parser.add_argument('checkpoint',
                        help='checkpoint, or a float ONNX export of ours')
    parser.add_argument('--out', help='INT8 ONNX file (default: '
                        'work_dirs/onnx/<config>-int8.onnx)')
    parser.add_argument('--float-out', help='where the float export is '
                        'written (default: work_dirs/onnx/<config>.onnx)')
    parser.add_argument('--calib-method', choices=CALIB_METHODS,
                        default='minmax', help='activation range estimate '
                        '(default minmax)')
    parser.add_argument('--num-images', type=int, default=DEFAULT_NUM_IMAGES,
                        help='calibration images, spread over the data set '
                        f'(default {DEFAULT_NUM_IMAGES})')
    parser.add_argument('--calib-loader', choices=CALIB_LOADERS,
                        default='val', help='dataloader whose data set is '
                        'calibrated on, with the test pipeline (default val)')
    parser.add_argument('--keep-float', nargs='+', metavar='ENTRY',
                        default=list(DEFAULT_KEEP_FLOAT),
                        help='op types, node-name globs, @decode, '
                        '@predictors, or none (default: '
                        f'{" ".join(DEFAULT_KEEP_FLOAT)})')
    parser.add_argument('--activations', choices=('int8', 'uint8'),
                        default='int8', help='activation type: int8 (S8S8, '
                        'default) or uint8 (U8S8, faster in onnxruntime on '
                        'x86, see docs/performance.md)')
    parser.add_argument('--per-tensor', action='store_true',
                        help='one weight scale per tensor instead of per '
                        'output channel')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='export input size (default: the test '
                        'pipeline\'s Resize scale)')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the float export\'s onnxruntime check')
    return parser.parse_args(argv)


def default_path(config: str, suffix: str) -> str:
    name = osp.splitext(osp.basename(config))[0]
    return osp.join('work_dirs', 'onnx', name + suffix + '.onnx')


def export_float(args, cfg, task, path):
    """Export the checkpoint's model with our exporter and check it; the
    exported module (for the report)."""
    from mobilenet_mm.deploy.build import build_checkpoint_model, export_shape
    from mobilenet_mm.deploy.onnx_export import (build_export_module,
                                                 export_onnx, verify_export)
    state = read_state_dict(args.checkpoint)
    shape = export_shape(cfg, args.shape, args.config)
    model = build_checkpoint_model(cfg, task, shape, args.checkpoint, state)
    wrapper = build_export_module(model, shape)
    export_onnx(wrapper, shape, path, metadata=dict(
        config=osp.basename(args.config),
        checkpoint=osp.basename(args.checkpoint),
        input='image: float32 (B, 3, H, W), pixels 0-255 in the pipeline '
        'channel order; normalisation inside',
        input_size=f'{shape[0]}x{shape[1]}', fused='False'))
    print(f'exported {path} (float, {shape[0]}x{shape[1]})')
    if not args.no_verify:
        result = verify_export(wrapper, path, shape)
        for line in result.lines:
            print('  ' + line)
        if not result.ok:
            raise CLIError(f'the float export {path} does not match '
                           'PyTorch (see above); not quantized')
    return model


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config)
    task = detect_task(cfg, args.config)
    check_file(args.checkpoint, 'checkpoint file')
    if args.num_images < 1:
        raise CLIError(f'--num-images must be >= 1, got {args.num_images}')
    keep_float = [] if args.keep_float == ['none'] else args.keep_float
    if 'none' in keep_float:
        raise CLIError('--keep-float none stands alone (it keeps nothing '
                       'in float)')
    from mobilenet_mm.deploy.quantize import calibration_dataset_cfg
    from mobilenet_mm.errors import CalibrationDataError
    try:  # before anything is exported: the loader must be usable
        calibration_dataset_cfg(cfg, args.calib_loader, args.config)
    except CalibrationDataError as e:
        raise CLIError(str(e)) from None
    check_data_paths(cfg, [f'{args.calib_loader}_dataloader'])
    out = args.out or default_path(args.config, '-int8')
    register_host_modules(task)

    from mobilenet_mm.deploy.ort_model import (build_host_model,
                                               check_export_fits,
                                               read_export)
    from mobilenet_mm.deploy.quantize import (BatchReader,
                                              calibration_batches,
                                              compare_int8,
                                              quantize_export)
    from mobilenet_mm.analysis.benchmark import vector_isa
    scope = cfg.setdefault('default_scope',
                           'mmdet' if task == 'det' else 'mmseg')
    if args.checkpoint.endswith('.onnx'):
        if args.float_out or args.shape:
            raise CLIError('--float-out and --shape apply when CKPT is a '
                           'checkpoint; this one is an ONNX file')
        float_path = args.checkpoint
        info = read_export(float_path)
        if info.quantized:
            raise CLIError(f'{float_path} is already quantized (it has '
                           'QuantizeLinear/DequantizeLinear nodes)')
        model = build_host_model(cfg.model, scope)
        check_export_fits(info, model, args.config)
    else:
        float_path = args.float_out or default_path(args.config, '')
        if osp.abspath(float_path) == osp.abspath(out):
            raise CLIError(f'--out and --float-out are the same file: {out}')
        model = export_float(args, cfg, task, float_path)
        info = read_export(float_path)
    count, batches = calibration_batches(
        cfg, model.data_preprocessor, args.num_images, args.calib_loader,
        scope=scope, config=args.config)
    if count < args.num_images:
        print(f'the {args.calib_loader} set has {count} images: calibrating '
              f'on all of them (--num-images {args.num_images})')
    print(f'{vector_isa()}')
    print(f'calibrating ({args.calib_method}) on {count} '
          f'{args.calib_loader} images at {info.shape[0]}x{info.shape[1]} '
          f'and quantizing {float_path} ...', flush=True)
    try:
        result = quantize_export(
            float_path, out, BatchReader(batches(), info.shape),
            method=args.calib_method, per_channel=not args.per_tensor,
            keep_float=keep_float, metadata=info.metadata,
            activations=args.activations)
    except ValueError as e:  # --keep-float entries, calibration images
        raise CLIError(str(e)) from None
    sizes = [os.path.getsize(p) / 2**20 for p in (float_path, out)]
    print(f'wrote {out} ({sizes[1]:.1f} MiB; float {sizes[0]:.1f} MiB) in '
          f'{result.seconds:.0f} s: {result.int8_convs} of '
          f'{result.convs} convs in INT8; kept in float: '
          f'{result.kept.describe()}')
    drifts = compare_int8(float_path, out, batches(COMPARED_IMAGES))
    print(f'INT8 against float on {min(count, COMPARED_IMAGES)} calibration '
          'images:')
    for drift in drifts:
        print('  ' + drift.line())
    print(f'evaluate: python tools/test.py {args.config} {out}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
