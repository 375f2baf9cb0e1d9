"""Our ONNX exports (float or INT8) run by onnxruntime as an mmengine model,
so that ``tools/test.py CONFIG FILE.onnx`` scores them with the config's own
evaluator (mmdet's ``CocoMetric``, mmseg's ``IoUMetric``).

:func:`onnx_model_cfg` replaces a config's ``model`` with
:class:`OnnxRuntimeModel`, which keeps the config's own model (its weights
unused) for everything the graph leaves out, so that only the graph differs
from the PyTorch run:

* inputs: the config's data preprocessor with the steps the graph does
  itself switched off (channel flip, mean/std; see
  :func:`mobilenet_mm.deploy.onnx_export.graph_preprocessing`): batching and
  padding are unchanged and the graph receives what the export's
  convention says, pixels 0-255 at the export's ``H x W``;
* detectors: the ``boxes`` and ``scores`` of every anchor go through
  :func:`~mobilenet_mm.deploy.onnx_export.detections_from_raw` with each
  image's meta (mmdet's per-level ``nms_pre`` top-k above ``score_thr``,
  rescaling to the original image, class-wise NMS, ``max_per_img``): what
  the head's ``predict`` does after the box decoding;
* segmentors: the ``logits`` go through the decode head's
  ``predict_by_feat`` (resize to the input) and the segmentor's
  ``postprocess_result`` (padding cropped, resize to the original image,
  argmax), as ``EncoderDecoder.predict`` does in ``'whole'`` mode.

Only files of :mod:`mobilenet_mm.deploy.onnx_export`'s convention are taken
(:func:`read_export`): one input ``image`` of fixed ``H x W`` and the raw
outputs. In-graph NMS exports are refused: their NMS skips mmdet's
``nms_pre`` cut, so their detections are not the config's.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.model import BaseModel

from ..errors import OnnxExportError  # noqa: F401  (raised here)
from ..registry import MODELS

# Output names of our raw exports (onnx_export.output_names).
EXPORT_OUTPUTS = {('boxes', 'scores'): 'det', ('logits', ): 'seg'}
TASK_NAMES = {'det': 'detector', 'seg': 'segmentor'}
QDQ_OPS = ('QuantizeLinear', 'DequantizeLinear')




@dataclass
class ExportInfo:
    path: str
    task: str  # 'det' or 'seg'
    shape: Tuple[int, int]  # the fixed input H x W
    output_shapes: Dict[str, tuple]  # None for symbolic dims
    quantized: bool
    metadata: Dict[str, str] = field(default_factory=dict)


def _dims(value_info) -> tuple:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField('dim_value') else None
                 for d in dims)


def read_export(path: str) -> ExportInfo:
    """What an ONNX file of ours computes; :class:`OnnxExportError`, in one
    line, for a file that is not ONNX or not one of our raw exports."""
    import onnx
    from google.protobuf.message import DecodeError
    if not osp.isfile(path):
        raise OnnxExportError(f'ONNX file does not exist: {path}')
    try:
        proto = onnx.load(path, load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise OnnxExportError(f'{path} is not an ONNX file ({e})') from None
    if any(None in _dims(o)[1:] for o in proto.graph.output):
        # The tracer leaves some output sizes symbolic; infer them.
        proto = onnx.shape_inference.infer_shapes(proto)
    graph = proto.graph
    constants = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    outputs = tuple(o.name for o in graph.output)
    hint = ('ours take one input "image" (float32, B x 3 x H x W with fixed '
            'H and W) and give boxes, scores or logits: export with '
            'tools/deploy/export_onnx.py')
    described = ', '.join(f'{i.name} {list(_dims(i))}' for i in inputs)
    dims = _dims(inputs[0]) if len(inputs) == 1 else ()
    if (len(inputs) != 1 or inputs[0].name != 'image' or len(dims) != 4
            or dims[1] != 3 or not dims[2] or not dims[3]):
        raise OnnxExportError(f'{path} is not a mobilenet_mm export: its '
                              f'inputs are {described or "none"}; {hint}')
    if outputs and outputs[0] == 'det_boxes':
        raise OnnxExportError(
            f'{path} ends in NMS (outputs {", ".join(outputs)}); evaluate '
            'an export without --with-nms: the in-graph NMS lacks mmdet\'s '
            'nms_pre cut, so its detections are not the config\'s')
    if outputs and outputs[0] == 'feat0':
        raise OnnxExportError(f'{path} is a backbone-only export; evaluate '
                              'a whole-model export')
    if outputs not in EXPORT_OUTPUTS:
        raise OnnxExportError(f'{path} is not a mobilenet_mm export: its '
                              f'outputs are {", ".join(outputs)}; {hint}')
    return ExportInfo(
        path=path, task=EXPORT_OUTPUTS[outputs],
        shape=(int(dims[2]), int(dims[3])),
        output_shapes={o.name: _dims(o) for o in graph.output},
        quantized=any(n.op_type in QDQ_OPS for n in graph.node),
        metadata={p.key: p.value for p in proto.metadata_props})


def check_export_fits(info: ExportInfo, model: torch.nn.Module,
                      config: str = 'the config') -> Optional[List[int]]:
    """Raise :class:`OnnxExportError` unless ``info``'s file is an export of
    ``model``'s architecture (task, classes; detectors: anchors at the
    file's input size). Returns the anchors per level of a detector."""
    from .onnx_export import DetectorExport, model_task
    task = model_task(model)
    if task != info.task:
        raise OnnxExportError(
            f'{info.path} is a {TASK_NAMES[info.task]} export but {config} '
            f'builds a {TASK_NAMES[task]}')
    height, width = info.shape
    if task == 'seg':
        classes = info.output_shapes['logits'][1]
        expected = model.decode_head.out_channels
        if classes != expected:
            raise OnnxExportError(
                f'{info.path} gives {classes} class logits but {config}\'s '
                f'decode head has {expected}')
        return None
    try:
        level_sizes = DetectorExport(model, info.shape).level_sizes
    except ValueError as e:
        raise OnnxExportError(f'{config}: {e}') from None
    anchors, classes = info.output_shapes['scores'][1:]
    head = model.bbox_head
    # The tracer may leave the anchor count symbolic (None): then
    # OnnxRuntimeModel.run_graph checks it on the first batch.
    if classes != head.num_classes or anchors not in (None,
                                                      sum(level_sizes)):
        raise OnnxExportError(
            f'{info.path} scores {anchors} anchors x {classes} classes but '
            f'{config}\'s head has {sum(level_sizes)} anchors x '
            f'{head.num_classes} classes at {height}x{width}')
    return level_sizes


def pixel_preprocessor(data_preprocessor: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``data_preprocessor`` without the steps our graphs do
    themselves (channel flip, normalisation): it batches and pads as the
    config does and hands the graph its input."""
    import copy

    from .onnx_export import CHANNEL_FLIP_FLAGS
    pixels = copy.deepcopy(data_preprocessor)
    for flag in CHANNEL_FLIP_FLAGS:
        if hasattr(pixels, flag):
            setattr(pixels, flag, False)
    pixels._enable_normalize = False
    return pixels


def build_host_model(model_cfg: dict, scope: str) -> torch.nn.Module:
    """The config's detector or segmentor, built in its host's scope (the
    wrapper itself is built in ours)."""
    from mmengine.registry import DefaultScope
    if scope == 'mmdet':
        from mmdet.registry import MODELS as HOST_MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS as HOST_MODELS
    else:
        raise OnnxExportError(f"scope {scope!r} is not supported; allowed: "
                              "'mmdet', 'mmseg'")
    from .build import quiet_mmengine
    with DefaultScope.overwrite_default_scope(scope), quiet_mmengine():
        return HOST_MODELS.build(model_cfg).eval()


def onnx_model_cfg(cfg, onnx_file: str, threads: Optional[int] = None
                   ) -> dict:
    """The ``model`` entry that evaluates ``onnx_file`` in place of
    ``cfg.model`` (``cfg.default_scope`` names the host)."""
    return dict(type='mobilenet_mm.OnnxRuntimeModel', onnx_file=onnx_file,
                model=cfg.model, scope=cfg.get('default_scope', 'mmdet'),
                threads=threads)


def use_onnx_model(cfg, onnx_file: str, config: str = 'the config') -> None:
    """Make ``cfg`` evaluate ``onnx_file``: check, before any runner is
    built, that the file is one of our exports of ``cfg``'s model (one-line
    :class:`OnnxExportError` otherwise), then swap the model entry."""
    info = read_export(onnx_file)
    check_export_fits(info, build_host_model(
        cfg.model, cfg.get('default_scope', 'mmdet')), config)
    cfg.model = onnx_model_cfg(cfg, onnx_file)
    cfg.load_from = None


@MODELS.register_module()
class OnnxRuntimeModel(BaseModel):
    """An onnxruntime session on one of our exports, with the config's own
    data preprocessing and post-processing around it (module docstring).

    Args:
        onnx_file: a float or INT8 export (``tools/deploy/export_onnx.py``,
            ``tools/deploy/quantize_onnx.py``).
        model: the config's ``model`` dict.
        scope: ``'mmdet'`` or ``'mmseg'``, the host ``model`` is built in.
        threads: onnxruntime intra-op threads (default: torch's count,
            which follows ``OMP_NUM_THREADS``).
    """

    def __init__(self, onnx_file: str, model: dict, scope: str = 'mmdet',
                 threads: Optional[int] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.info = read_export(onnx_file)
        self.host = build_host_model(model, scope)
        self.level_sizes = check_export_fits(self.info, self.host)
        self.data_preprocessor = pixel_preprocessor(
            self.host.data_preprocessor)
        from .onnx_export import ort_session
        self.session = ort_session(onnx_file,
                                   threads=threads or torch.get_num_threads())
        self.output_names = [n for n in self.info.output_shapes]

    def run_graph(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """The graph's outputs on a batch of input images."""
        shape = tuple(inputs.shape[-2:])
        if shape != self.info.shape:
            raise OnnxExportError(
                f'the batch is {shape[0]}x{shape[1]} but {self.info.path} '
                f'takes {self.info.shape[0]}x{self.info.shape[1]} images: '
                'export at the size the test pipeline gives (--shape H W)')
        feed = {'image': inputs.detach().float().cpu().contiguous().numpy()}
        outputs = [torch.from_numpy(o)
                   for o in self.session.run(self.output_names, feed)]
        if self.level_sizes and outputs[0].shape[1] != sum(self.level_sizes):
            raise OnnxExportError(
                f'{self.info.path} gives {outputs[0].shape[1]} anchors, the '
                f"config's head lays out {sum(self.level_sizes)}")
        return outputs

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'predict'):
        if mode != 'predict' or data_samples is None:
            raise OnnxExportError(
                f'{type(self).__name__} predicts for the test loop only '
                f"(mode='predict' with data samples), got mode={mode!r}")
        outputs = self.run_graph(inputs)
        metas = [sample.metainfo for sample in data_samples]
        if self.info.task == 'det':
            from .onnx_export import detections_from_raw
            results = detections_from_raw(self.host.bbox_head, *outputs,
                                          self.level_sizes, img_metas=metas)
            return self.host.add_pred_to_datasample(data_samples, results)
        if self.host.test_cfg.get('mode', 'whole') != 'whole':
            raise OnnxExportError(
                f"the graph runs whole images; the config's test_cfg.mode "
                f"is {self.host.test_cfg.mode!r} (set model.test_cfg.mode="
                "'whole')")
        seg_logits = self.host.decode_head.predict_by_feat(outputs[0], metas)
        return self.host.postprocess_result(seg_logits, data_samples)
