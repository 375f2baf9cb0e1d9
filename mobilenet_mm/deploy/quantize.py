"""INT8 static quantization of our ONNX exports with onnxruntime.

``tools/deploy/quantize_onnx.py CONFIG CKPT`` exports the model with
:mod:`mobilenet_mm.deploy.onnx_export` (same graph, same input convention:
pixels 0-255, normalisation inside), runs onnxruntime's
``quant_pre_process`` (shape inference and graph optimisation, which the
quantizer expects) and ``quantize_static``: QDQ format, signed 8-bit
activations and weights (S8S8), weights per output channel by default,
activation ranges calibrated on images of the config's own dataloader
(:func:`calibration_batches`). This is onnxruntime's advice for CNNs on
the CPU; per-channel weights absorb most of the depthwise-conv + BN range
spread that ruins per-tensor MobileNets (REFERENCE.md section 6).

What stays in float (``keep_float``), each entry one of:

* an ONNX op type of the pre-processed graph (``Mul``, ``Add``,
  ``Sigmoid``, ``Resize``, ``Conv``, ...): no node of that type is
  quantized. Ops onnxruntime never quantizes (``HardSigmoid``,
  ``ReduceMean``, ``Exp``, ...) run in float anyway, between a
  DequantizeLinear and a QuantizeLinear; the graph optimiser splits
  ``HardSwish`` into ``HardSigmoid`` + ``Mul``, so hard-swish's quantized
  part is that ``Mul``, as is the SE multiply;
* a glob over node names (``/bbox_head/cls_convs.0/*``);
* ``@decode``: every node between the last convs and the graph outputs
  (detectors: the box decoding against the anchors and the score softmax
  or sigmoid; segmentors: what follows the classifier convs);
* ``@predictors``: those last convs (class and box predictors, the
  segmentation classifier).

An entry that matches nothing is an error, never a silent no-op.

Default (:data:`DEFAULT_KEEP_FLOAT`): ``@decode``. Why: the decoding
mixes magnitudes one 8-bit scale cannot hold (anchor corners up to the
image side beside deltas of a few hundredths; class scores whose useful
range reaches down to mmdet's 0.001 threshold, below one int8 step of
1/256), and it is a handful of element-wise ops, so float costs nothing
there. Measured on the demos (docs/performance.md, "INT8 with
onnxruntime"; target drop <= 1.0): the SSDLite demo (sigmoid focal loss)
loses 1.1 mAP with ``@decode`` in float, 0.3 with ``Mul`` (the SE
multiply and hard-swish's multiply) in float too, 0.7 with
``@predictors`` too and 1.5 with nothing in float; with the softmax loss
it had before, 0.3, 0.5, 0.3 and 2.0. The LR-ASPP demo loses nothing
either way (+0.04 mIoU with the default, 80.99 with nothing in float).
``Resize`` and ``Sigmoid`` are available
through ``--keep-float``.

Speed: with S8S8 onnxruntime 1.32 on x86 fuses only part of the convs
into ``QLinearConv`` (46 of 98 on the SSDLite demo) and INT8 runs slower
than float; ``activations='uint8'`` (U8S8, onnxruntime's own x86 advice)
is faster (``--suite int8`` of tools/analysis/benchmark.py).
"""
import fnmatch
import os
import os.path as osp
import tempfile
import time
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Tuple)

import numpy as np

from ..errors import CalibrationDataError, OnnxExportError  # noqa: F401

CALIB_METHODS = ('minmax', 'entropy', 'percentile')
CALIB_LOADERS = ('val', 'train', 'test')
GROUPS = ('@decode', '@predictors')
DEFAULT_KEEP_FLOAT = ('@decode', )
DEFAULT_NUM_IMAGES = 100
ACTIVATION_TYPES = ('int8', 'uint8')




# -- calibration data ------------------------------------------------------
def _innermost_dataset(dataset: dict) -> dict:
    # Dataset wrappers (RepeatDataset, ClassBalancedDataset, ...) hold the
    # real one under 'dataset'; the pipeline belongs to that one.
    while isinstance(dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    return dataset


def calibration_dataset_cfg(cfg, loader: str = 'val',
                            config: str = 'the config') -> dict:
    """The dataset of ``cfg``'s ``<loader>_dataloader`` with the test
    pipeline (the train set's own pipeline augments; calibration must see
    what the graph sees at test time)."""
    import copy
    if loader not in CALIB_LOADERS:
        raise CalibrationDataError(
            f'unknown calibration loader {loader!r}; allowed: '
            f'{", ".join(CALIB_LOADERS)}')
    key = f'{loader}_dataloader'
    dataloader = cfg.get(key)
    if not isinstance(dataloader, dict) or not isinstance(
            dataloader.get('dataset'), dict):
        others = [name for name in CALIB_LOADERS if name != loader
                  and isinstance(cfg.get(f'{name}_dataloader'), dict)]
        hint = (f'; pass --calib-loader {"|".join(others)}' if others else
                '; add one (the test pipeline is applied to its images)')
        raise CalibrationDataError(
            f'{config} has no {key} with a dataset to calibrate on{hint}')
    dataset = copy.deepcopy(dataloader['dataset'])
    inner = _innermost_dataset(dataset)
    if loader == 'train':
        test = cfg.get('test_dataloader') or {}
        pipeline = (_innermost_dataset(test.get('dataset') or {}).get(
            'pipeline') or cfg.get('test_pipeline'))
        if not pipeline:
            raise CalibrationDataError(
                f'{config} has no test pipeline (test_dataloader.dataset.'
                'pipeline) to apply to the train images')
        inner['pipeline'] = copy.deepcopy(pipeline)
        inner['test_mode'] = True  # no empty-image filtering, no retries
    if not inner.get('pipeline'):
        raise CalibrationDataError(f'{config}: {key}.dataset has no '
                                   'pipeline')
    return dataset


def spread_indices(total: int, count: int) -> List[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them
    when ``count >= total``): calibration sees the whole split, not its
    first city or first shapes."""
    if count >= total:
        return list(range(total))
    return [int(i * total / count) for i in range(count)]


def calibration_batches(cfg, data_preprocessor, num_images: int,
                        loader: str = 'val', batch_size: int = 8,
                        scope: str = 'mmdet', config: str = 'the config'
                        ) -> Tuple[int, Callable[..., Iterator[np.ndarray]]]:
    """``(count, batches)``: ``count`` images of the loader's data set
    (evenly spread), after the test pipeline and the model's data
    preprocessor without the steps the graph does itself
    (:func:`mobilenet_mm.deploy.ort_model.pixel_preprocessor`).
    ``batches(limit=None)`` yields them (the first ``limit``) as float32
    ``(b, 3, H, W)`` arrays, lazily, each call from the start."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, DefaultScope

    from .ort_model import pixel_preprocessor
    if num_images < 1:
        raise CalibrationDataError(
            f'calibration needs at least 1 image, got {num_images}')
    dataset_cfg = calibration_dataset_cfg(cfg, loader, config)
    with DefaultScope.overwrite_default_scope(scope):
        try:
            dataset = DATASETS.build(dataset_cfg)
        except ValueError as e:
            # mmengine's BaseDataset cannot pack an empty data list.
            if 'at least one array' not in str(e):
                raise
            dataset = ()
    if len(dataset) == 0:
        raise CalibrationDataError(
            f'the {loader}_dataloader data set of {config} has no images; '
            'calibration needs at least 1')
    indices = spread_indices(len(dataset), num_images)
    pixels = pixel_preprocessor(data_preprocessor).eval()

    def batches(limit: Optional[int] = None):
        import torch
        chosen = indices[:limit] if limit else indices
        for start in range(0, len(chosen), batch_size):
            data = pseudo_collate([dataset[i] for i in
                                   chosen[start:start + batch_size]])
            with torch.no_grad():
                inputs = pixels(data, False)['inputs']
            yield inputs.float().contiguous().numpy()

    return len(indices), batches


class BatchReader:
    """onnxruntime's ``CalibrationDataReader`` protocol over arrays,
    checking each against the graph's input size."""

    def __init__(self, batches: Iterable[np.ndarray],
                 shape: Tuple[int, int]):
        self.batches = iter(batches)
        self.shape = tuple(shape)
        self.images = 0

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        batch = next(self.batches, None)
        if batch is None:
            return None
        if tuple(batch.shape[-2:]) != self.shape:
            raise CalibrationDataError(
                f'calibration images are {batch.shape[-2]}x'
                f'{batch.shape[-1]} after the test pipeline, the graph '
                f'takes {self.shape[0]}x{self.shape[1]}: export at the '
                'test pipeline\'s size (--shape H W)')
        self.images += len(batch)
        return {'image': batch}

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


# -- graph analysis ----------------------------------------------------------
def name_unnamed_nodes(model) -> int:
    """Give every nameless node a unique name (the optimiser leaves some
    without one); node-name exclusions need them. Returns how many."""
    names = {n.name for n in model.graph.node if n.name}
    count = 0
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f'/{node.op_type}_unnamed_{index}'
            while name in names:
                name += '_'
            node.name = name
            names.add(name)
            count += 1
    return count


def graph_tail(model) -> Tuple[List[str], List[str]]:
    """``(decode, predictors)``: the nodes between the last convs and the
    graph outputs, and those last convs. ``Shape`` nodes read only sizes:
    the walk does not go through them."""
    producers = {out: node for node in model.graph.node
                 for out in node.output}
    decode, predictors, seen = [], [], set()
    stack = [o.name for o in model.graph.output]
    while stack:
        node = producers.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == 'Conv':
            predictors.append(node.name)
            continue
        decode.append(node.name)
        if node.op_type != 'Shape':
            stack.extend(node.input)
    return sorted(decode), sorted(predictors)


def quantizable_op_types() -> List[str]:
    """The op types onnxruntime's QDQ quantizer handles (its default)."""
    from onnxruntime.quantization.registry import (QDQRegistry,
                                                   QLinearOpsRegistry)
    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))


@dataclass
class FloatKept:
    op_types: List[str] = field(default_factory=list)
    nodes: List[str] = field(default_factory=list)  # by name or group

    def describe(self) -> str:
        parts = []
        if self.op_types:
            parts.append('op types ' + ', '.join(self.op_types))
        if self.nodes:
            parts.append(f'{len(self.nodes)} nodes by name or group')
        return '; '.join(parts) or 'nothing'


def resolve_keep_float(model, entries: Sequence[str]) -> FloatKept:
    """Op types and node names that ``entries`` (module docstring) keep in
    float in ``model``; ``ValueError`` for an entry that matches nothing."""
    op_types = sorted({n.op_type for n in model.graph.node})
    names = [n.name for n in model.graph.node]
    decode, predictors = graph_tail(model)
    kept = FloatKept()
    for entry in entries:
        if entry == '@decode':
            kept.nodes += decode
        elif entry == '@predictors':
            kept.nodes += predictors
        elif entry.startswith('@'):
            raise ValueError(f'unknown group {entry!r} in --keep-float; '
                             f'allowed groups: {", ".join(GROUPS)}')
        elif entry in op_types:
            kept.op_types.append(entry)
        else:
            matched = fnmatch.filter(names, entry)
            if not matched:
                raise ValueError(
                    f'--keep-float {entry!r} is neither a group '
                    f'({", ".join(GROUPS)}), an op type of the graph '
                    f'({", ".join(op_types)}) nor a pattern matching a '
                    'node name')
            kept.nodes += matched
    kept.nodes = sorted(set(kept.nodes))
    return kept


# -- quantization ----------------------------------------------------------
@dataclass
class QuantizeResult:
    path: str
    calibration_images: int
    kept: FloatKept
    convs: int
    int8_convs: int  # convs whose weights are INT8 (fed by a dequantize)
    seconds: float


def count_int8_convs(path: str) -> Tuple[int, int]:
    """``(convs, INT8 convs)`` of a QDQ file: a conv is INT8 when its
    weights come from a DequantizeLinear (onnxruntime then fuses it into a
    QLinearConv when its input and output are quantized too)."""
    import onnx
    graph = onnx.load(path).graph
    dequantized = {out for n in graph.node if n.op_type == 'DequantizeLinear'
                   for out in n.output}
    convs = [n for n in graph.node if n.op_type == 'Conv']
    return len(convs), sum(n.input[1] in dequantized for n in convs)


def _write_metadata(path: str, metadata: Dict[str, str]) -> None:
    import onnx
    proto = onnx.load(path)
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in metadata.items():
        entry = existing.get(key) or proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, path)


def quantize_export(float_path: str, out_path: str,
                    reader: BatchReader, method: str = 'minmax',
                    per_channel: bool = True,
                    keep_float: Sequence[str] = DEFAULT_KEEP_FLOAT,
                    calibration_cache: Optional[str] = None,
                    metadata: Optional[Dict[str, str]] = None,
                    activations: str = 'int8') -> QuantizeResult:
    """Pre-process and quantize ``float_path`` into ``out_path`` (written
    whole or not at all: a temporary file in its folder, then renamed).

    ``calibration_cache``: onnxruntime's JSON of the tensor ranges; when the
    file exists calibration is skipped (the ranges do not depend on what is
    kept in float, so one calibration serves every ``keep_float``).
    ``activations``: ``'int8'`` (S8S8, the default) or ``'uint8'`` (U8S8,
    which onnxruntime's x86 kernels fuse more widely; see the module
    docstring).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat,
                                          QuantType, quant_pre_process,
                                          quantize_static)
    if activations not in ACTIVATION_TYPES:
        raise ValueError(f'activation type {activations!r}; allowed: '
                         f'{", ".join(ACTIVATION_TYPES)}')
    if method not in CALIB_METHODS:
        raise ValueError(f'calibration method {method!r}; allowed: '
                         f'{", ".join(CALIB_METHODS)}')
    calibrate = {'minmax': CalibrationMethod.MinMax,
                 'entropy': CalibrationMethod.Entropy,
                 'percentile': CalibrationMethod.Percentile}[method]
    start = time.perf_counter()
    directory = osp.dirname(osp.abspath(out_path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='quantize-') as tmp:
        prepared = osp.join(tmp, 'prepared.onnx')
        quant_pre_process(float_path, prepared)
        model = onnx.load(prepared)
        name_unnamed_nodes(model)
        onnx.save(model, prepared)
        kept = resolve_keep_float(model, keep_float)
        op_types = [t for t in quantizable_op_types()
                    if t not in kept.op_types]
        handle, partial = tempfile.mkstemp(suffix='.onnx.partial',
                                           dir=directory)
        os.close(handle)
        try:
            quantize_static(
                prepared, partial, reader, quant_format=QuantFormat.QDQ,
                activation_type=(QuantType.QInt8 if activations == 'int8'
                                 else QuantType.QUInt8),
                weight_type=QuantType.QInt8, per_channel=per_channel,
                calibrate_method=calibrate, op_types_to_quantize=op_types,
                nodes_to_exclude=kept.nodes,
                calibration_cache_path=calibration_cache)
            _write_metadata(partial, dict(
                metadata or {}, quantization=(
                    f'INT8 QDQ {"S8S8" if activations == "int8" else "U8S8"}'
                    f', {"per-channel" if per_channel else "per-tensor"}'
                    f' weights, {method} calibration on '
                    f'{reader.images} images'),
                float_kept=kept.describe()))
            os.replace(partial, out_path)
        finally:
            if osp.exists(partial):
                os.remove(partial)
    return QuantizeResult(out_path, reader.images, kept,
                          *count_int8_convs(out_path),
                          time.perf_counter() - start)


# -- INT8 against float --------------------------------------------------
@dataclass
class OutputDrift:
    """How far an INT8 output is from the float one on the same images."""
    name: str
    mean_abs: float
    max_abs: float
    scale: float  # max |float output|
    argmax_agreement: Optional[float] = None  # logits: share of pixels

    def line(self) -> str:
        text = (f'{self.name}: mean |INT8 - float| {self.mean_abs:.3g}, '
                f'max {self.max_abs:.3g} (max |float| {self.scale:.3g})')
        if self.argmax_agreement is not None:
            text += (f'; same class at {100 * self.argmax_agreement:.2f}% '
                     'of pixels')
        return text


def compare_int8(float_path: str, int8_path: str,
                 batches: Iterable[np.ndarray]) -> List[OutputDrift]:
    """Run both files on ``batches``; the drift of each output."""
    from .onnx_export import ort_session
    sessions = [ort_session(p) for p in (float_path, int8_path)]
    names = [o.name for o in sessions[0].get_outputs()]
    sums = {n: [0., 0., 0., 0] for n in names}  # abs sum, max, scale, count
    agree = [0, 0]
    for batch in batches:
        ref, got = (s.run(names, {'image': batch}) for s in sessions)
        for name, a, b in zip(names, ref, got):
            diff = np.abs(a - b)
            entry = sums[name]
            entry[0] += float(diff.sum())
            entry[1] = max(entry[1], float(diff.max()))
            entry[2] = max(entry[2], float(np.abs(a).max()))
            entry[3] += diff.size
            if name == 'logits':
                agree[0] += int((a.argmax(1) == b.argmax(1)).sum())
                agree[1] += a.shape[0] * a.shape[2] * a.shape[3]
    return [OutputDrift(n, s[0] / max(s[3], 1), s[1], s[2],
                        agree[0] / agree[1] if n == 'logits' and agree[1]
                        else None) for n, s in sums.items()]
