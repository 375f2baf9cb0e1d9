#!/usr/bin/env python
"""The INT8 table: accuracy of a checkpoint, its float ONNX export and its
INT8 files with the config's metric, and the latency of each file against
the float one (onnxruntime, batch 1, paired timing in the same run).

    python tools/deploy/int8_report.py CONFIG CKPT FLOAT.onnx INT8.onnx
        [MORE_INT8.onnx ...] [--repeats 30] [--threads 1]

Each row's metric comes from ``tools/test.py CONFIG FILE`` (mmdet's
CocoMetric bbox mAP, or mmseg's IoUMetric mIoU), run as a subprocess; the
drop is against the PyTorch checkpoint. Targets (issue 15): drop <= 1.0
point (of 100), INT8 latency <= 0.6x float onnxruntime.
"""
import argparse
import os
import re
import subprocess
import sys

from mobilenet_mm.apis import check_file, detect_task, load_config, run_cli
from mobilenet_mm.errors import CLIError

DROP_TARGET = 1.0
LATENCY_TARGET = 0.6
METRICS = {'det': ('bbox mAP', r'coco/bbox_mAP: ([\d.]+)', 100.),
           'seg': ('mIoU', r'\bmIoU: ([\d.]+)', 1.)}
TEST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), 'test.py')


def evaluate(config: str, path: str, pattern: str, scale: float) -> float:
    proc = subprocess.run([sys.executable, TEST, config, path],
                          capture_output=True, text=True)
    found = re.findall(pattern, proc.stdout + proc.stderr)
    if proc.returncode or not found:
        tail = (proc.stderr.strip().splitlines() or [''])[-1]
        raise CLIError(f'tools/test.py {config} {path} failed: {tail}')
    return float(found[-1]) * scale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('float_onnx')
    parser.add_argument('int8_onnx', nargs='+')
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    for path in [args.config, args.checkpoint, args.float_onnx,
                 *args.int8_onnx]:
        check_file(path, 'input file')
    task = detect_task(load_config(args.config), args.config)
    name, pattern, scale = METRICS[task]

    import torch

    from mobilenet_mm.analysis.benchmark import paired_benchmark, vector_isa
    from mobilenet_mm.deploy.onnx_export import ort_session
    from mobilenet_mm.deploy.ort_model import read_export
    infos = [read_export(p) for p in [args.float_onnx, *args.int8_onnx]]
    shape = infos[0].shape
    image = (torch.rand(1, 3, *shape,
                        generator=torch.Generator().manual_seed(0)) * 255)
    feed = {'image': image.numpy()}
    float_session = ort_session(args.float_onnx, threads=args.threads)

    print(vector_isa())
    print(f'command: python tools/deploy/int8_report.py '
          + ' '.join(argv if argv is not None else sys.argv[1:]))
    reference = evaluate(args.config, args.checkpoint, pattern, scale)
    print(f'\n| model | kept in float | {name} | drop (points) | latency '
          '(ms) | ratio to float ORT | targets |')
    print('|---|---|---|---|---|---|---|')
    print(f'| PyTorch {os.path.basename(args.checkpoint)} | - | '
          f'{reference:.1f} | - | - | - | - |', flush=True)
    for info in infos:
        metric = evaluate(args.config, info.path, pattern, scale)
        drop = reference - metric
        session = ort_session(info.path, threads=args.threads)
        timing = paired_benchmark(
            os.path.basename(info.path), lambda s=session: s.run(None, feed),
            lambda: float_session.run(None, feed), repeats=args.repeats,
            warmup=3, target=LATENCY_TARGET if info.quantized else None)
        kept = info.metadata.get('float_kept', '-') if info.quantized \
            else 'all (float)'
        verdict = '-'
        if info.quantized:
            verdict = ', '.join([
                f'drop {"met" if drop <= DROP_TARGET else "MISSED"}',
                f'latency {"met" if timing.meets_target else "MISSED"}'])
        print(f'| {os.path.basename(info.path)} | {kept} | {metric:.1f} | '
              f'{drop:+.1f} | {timing.ours_ms:.1f} | {timing.ratio:.3f} '
              f'({timing.ratio_q1:.3f}-{timing.ratio_q3:.3f}) | {verdict} |',
              flush=True)
    print(f'\ntargets: {name} drop <= {DROP_TARGET} point, INT8 latency <= '
          f'{LATENCY_TARGET}x float onnxruntime ({args.threads} thread(s), '
          f'batch 1, {shape[0]}x{shape[1]})')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
