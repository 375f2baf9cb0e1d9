"""ONNX export of backbones, detectors and segmentors, with parity checks.

What a graph computes (input ``image``: float32 ``(B, 3, H, W)``, pixel
values 0-255 in the channel order the config's pipeline loads, i.e. BGR for
mmcv's loader, already resized to ``H x W``; the batch is dynamic):

* every graph starts with the model's ``data_preprocessor`` (channel flip,
  mean/std), so it takes images as the test pipeline produces them;
* backbone: the feature maps ``feat0..`` of ``out_indices``;
* detector: ``boxes`` ``(B, N, 4)`` (x1, y1, x2, y2 in input pixels, decoded
  from every anchor and clipped to the image) and ``scores``
  ``(B, N, num_classes)`` (sigmoid, or softmax without the background),
  before any score threshold or NMS. :func:`detections_from_raw` turns them
  into the detections mmdet's own ``predict`` gives. With ``with_nms``, the
  graph ends in ONNX ``NonMaxSuppression`` per image and class instead and
  returns ``det_boxes``, ``det_scores``, ``det_labels`` and ``det_batch``
  (the image of each detection); see :class:`DetectorExport`;
* segmentor: ``logits`` ``(B, classes, h, w)`` at the decode head's
  resolution.

Graphs are traced with PyTorch's TorchScript-based exporter
(``dynamo=False``): the torch.export-based default needs ``onnxscript``,
which this environment does not have, and the traced exporter covers every
op used here at opset 17 (``HardSwish``, ``HardSigmoid``, and the attention
of MobileNetV4's Mobile MQA, exported as MatMul + Softmax).
"""
import io
import itertools
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

MIN_OPSET = 17


def max_opset() -> int:
    """The newest opset torch's TorchScript exporter (``dynamo=False``,
    what :func:`export_onnx` uses) writes."""
    from torch.onnx import _constants
    return int(getattr(_constants, 'ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET',
                       getattr(_constants, 'ONNX_MAX_OPSET', MIN_OPSET)))


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters (or buffers) live; CPU for none."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device('cpu')


@contextmanager
def exact_float32():
    """CUDA convs and matmuls in float32 rather than TF32 (on by default
    for cuDNN convs): the reference a graph is checked against must not
    carry TF32's ~1e-3 rounding."""
    saved = (torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = saved


# -- building ------------------------------------------------------------
def model_task(model: nn.Module) -> str:
    """``'det'`` or ``'seg'`` for an mmdet detector or mmseg segmentor."""
    from mmdet.models.detectors import BaseDetector
    if isinstance(model, BaseDetector):
        return 'det'
    from mmseg.models.segmentors import BaseSegmentor
    if isinstance(model, BaseSegmentor):
        return 'seg'
    raise TypeError(f'{type(model).__name__} is neither an mmdet detector '
                    'nor an mmseg segmentor')


def set_detector_input_size(cfg, shape: Tuple[int, int]) -> None:
    """Lay SSDLite's anchors out for ``shape`` (they are fixed to one input
    size); other anchor generators follow the feature maps by themselves."""
    head = cfg.model.get('bbox_head')
    anchors = head.get('anchor_generator') if head else None
    if anchors is not None and 'input_size' in anchors:
        anchors['input_size'] = tuple(shape)


# -- wrappers ------------------------------------------------------------
# Where each host's data preprocessor keeps its BGR<->RGB switch: mmengine's
# ImgDataPreprocessor (and mmdet's) in ``_channel_conversion``, mmseg's
# SegDataPreProcessor in ``channel_conversion``.
CHANNEL_FLIP_FLAGS = ('_channel_conversion', 'channel_conversion')


def graph_preprocessing(data_preprocessor: nn.Module) -> Tuple[bool, bool]:
    """``(flip, normalize)``: the steps of ``data_preprocessor`` that an
    exported graph does itself (:class:`Preprocess`)."""
    flip = any(getattr(data_preprocessor, flag, False)
               for flag in CHANNEL_FLIP_FLAGS)
    return flip, bool(getattr(data_preprocessor, '_enable_normalize', False))


class Preprocess(nn.Module):
    """The tensor part of an mmengine ``ImgDataPreprocessor`` (mmdet's) or
    an mmseg ``SegDataPreProcessor``: optional BGR<->RGB flip, then ``(x - mean) / std``. Resizing and padding stay
    outside the graph (the pipeline does them)."""

    def __init__(self, data_preprocessor: nn.Module):
        super().__init__()
        self.flip, self.normalize = graph_preprocessing(data_preprocessor)
        if self.normalize:
            self.register_buffer('mean',
                                 data_preprocessor.mean.detach().clone())
            self.register_buffer('std', data_preprocessor.std.detach().clone())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.flip:
            image = image.flip(1)
        if self.normalize:
            image = (image - self.mean) / self.std
        return image


class BackboneExport(nn.Module):
    """Pre-processing + backbone: the tuple of feature maps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.preprocess = Preprocess(model.data_preprocessor)
        self.backbone = model.backbone
        self.eval()

    def forward(self, image):
        return tuple(self.backbone(self.preprocess(image)))


class SegmentorExport(nn.Module):
    """Pre-processing + encoder-decoder: the decode head's logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.preprocess = Preprocess(model.data_preprocessor)
        self.model = model
        self.eval()

    def forward(self, image):
        return self.model._forward(self.preprocess(image))


class _BatchedNMS(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` over ``(B, N, 4)`` boxes and ``(B, C, N)``
    scores, one run per image and class; in eager mode the same selection
    with torchvision's NMS. Returns ``(K, 3)`` int64 rows ``(image, class,
    box)`` ordered by image, class, then falling score, as onnxruntime does.
    """

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class: int, iou_threshold: float,
                score_threshold: float):
        from torchvision.ops import batched_nms
        selected = []
        for image in range(boxes.shape[0]):
            # Strictly above the threshold, as onnxruntime filters.
            cls, box = torch.nonzero(scores[image] > score_threshold,
                                     as_tuple=True)
            if box.numel() == 0:
                continue
            cand_scores = scores[image, cls, box]
            keep = batched_nms(boxes[image, box], cand_scores, cls,
                               iou_threshold)
            cls, box = cls[keep], box[keep]
            # batched_nms sorts by score; regroup by class keeping that
            # order (stable sort), then cut each class to max_per_class.
            order = torch.sort(cls, stable=True).indices
            cls, box = cls[order], box[order]
            rank = torch.arange(len(cls), device=cls.device) - \
                torch.searchsorted(cls, cls, right=False)
            within = rank < max_per_class
            cls, box = cls[within], box[within]
            selected.append(torch.stack(
                [torch.full_like(cls, image), cls, box], dim=1))
        if not selected:
            return torch.zeros(0, 3, dtype=torch.int64, device=boxes.device)
        return torch.cat(selected).to(torch.int64)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold,
                 score_threshold):
        def const(value, dtype):
            return g.op('Constant',
                        value_t=torch.tensor([value], dtype=dtype))
        # center_point_box=0 takes corner boxes as (y1, x1, y2, x2); IoU is
        # the same for (x1, y1, x2, y2), so boxes go in unchanged.
        return g.op('NonMaxSuppression', boxes, scores,
                    const(max_per_class, torch.int64),
                    const(iou_threshold, torch.float32),
                    const(score_threshold, torch.float32),
                    center_point_box_i=0)


class DetectorExport(nn.Module):
    """Pre-processing + detector + box decoding (+ optional NMS).

    The anchors are constants of the graph, laid out for ``shape``; the
    box decoding is mmdet's ``delta2bbox`` (the one ``predict`` uses), so
    only ``DeltaXYWHBBoxCoder`` heads are supported.

    With ``with_nms`` the graph keeps, per image and class, at most
    ``test_cfg.max_per_img`` boxes above ``test_cfg.score_thr`` after NMS at
    ``test_cfg.nms.iou_threshold``. mmdet's post-processing also keeps only
    the ``nms_pre`` best candidates of each level before NMS and
    ``max_per_img`` per image after it; those two cuts need per-image
    dynamic top-k and are left to the caller (:func:`detections_from_raw`
    does both on the raw outputs).
    """

    def __init__(self, model: nn.Module, shape: Tuple[int, int],
                 with_nms: bool = False):
        super().__init__()
        from mmdet.models.detectors import SingleStageDetector
        from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
        if not isinstance(model, SingleStageDetector):
            raise ValueError(
                f'ONNX export supports single-stage detectors (SSD, '
                f'RetinaNet: one bbox_head), not {type(model).__name__}')
        head = model.bbox_head
        if not isinstance(head.bbox_coder, DeltaXYWHBBoxCoder):
            raise ValueError(
                f'ONNX export supports DeltaXYWHBBoxCoder heads, this one '
                f'has {type(head.bbox_coder).__name__}')
        self.preprocess = Preprocess(model.data_preprocessor)
        self.model = model.eval()
        self.shape = tuple(int(s) for s in shape)
        self.with_nms = with_nms
        device = module_device(model)
        with torch.no_grad():
            probe = torch.zeros(1, 3, *self.shape, device=device)
            cls_scores, _ = head(model.extract_feat(probe))
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = head.prior_generator.grid_priors(featmap_sizes,
                                                  device=device)
        self.level_sizes = [len(p) for p in priors]
        self.register_buffer('priors', torch.cat(priors))
        cfg = head.test_cfg
        self.nms_args = (int(cfg.get('max_per_img', 100)),
                         float(cfg.nms.iou_threshold),
                         float(cfg.get('score_thr', 0.)))
        self.eval()

    @property
    def head(self):
        return self.model.bbox_head

    def raw(self, image):
        """``boxes (B, N, 4)``, ``scores (B, N, classes)`` of every anchor."""
        from mmdet.models.task_modules.coders.delta_xywh_bbox_coder import \
            delta2bbox
        head = self.head
        cls_scores, bbox_preds = head(self.model.extract_feat(
            self.preprocess(image)))
        batch = image.shape[0]
        # Same (row, column, anchor) order as mmdet's per-image flattening.
        logits = torch.cat([
            c.permute(0, 2, 3, 1).reshape(batch, -1, head.cls_out_channels)
            for c in cls_scores], dim=1)
        deltas = torch.cat([
            b.permute(0, 2, 3, 1).reshape(batch, -1, 4) for b in bbox_preds],
            dim=1)
        if hasattr(head, 'class_scores'):
            # SSDLiteHead: background (and unused) outputs after the classes
            scores = head.class_scores(logits)
        else:  # mmdet's heads: sigmoid ones have one output per class
            scores = (logits.sigmoid() if head.use_sigmoid_cls else
                      logits.softmax(-1)[..., :head.num_classes])
        coder = head.bbox_coder
        priors = self.priors.unsqueeze(0).expand(batch, -1, -1)
        boxes = delta2bbox(priors.reshape(-1, 4), deltas.reshape(-1, 4),
                           coder.means, coder.stds, max_shape=self.shape,
                           clip_border=coder.clip_border,
                           add_ctr_clamp=coder.add_ctr_clamp,
                           ctr_clamp=coder.ctr_clamp)
        return boxes.reshape(batch, -1, 4), scores

    def forward(self, image):
        boxes, scores = self.raw(image)
        if not self.with_nms:
            return boxes, scores
        selected = _BatchedNMS.apply(boxes, scores.transpose(1, 2),
                                     *self.nms_args)
        batch_index, labels, box_index = selected.unbind(1)
        return (boxes[batch_index, box_index],
                scores[batch_index, box_index, labels], labels, batch_index)


def model_name(wrapper: nn.Module) -> str:
    """The class names of the wrapped model and its heads, for messages."""
    model = getattr(wrapper, 'model', None) or getattr(wrapper, 'backbone')
    heads = [type(getattr(model, key)).__name__
             for key in ('decode_head', 'bbox_head')
             if getattr(model, key, None) is not None]
    return type(model).__name__ + (f" ({', '.join(heads)})" if heads else '')


def output_names(wrapper: nn.Module, num_outputs: int) -> List[str]:
    if isinstance(wrapper, DetectorExport):
        return (['det_boxes', 'det_scores', 'det_labels', 'det_batch']
                if wrapper.with_nms else ['boxes', 'scores'])
    if isinstance(wrapper, SegmentorExport):
        return ['logits']
    return [f'feat{i}' for i in range(num_outputs)]


def build_export_module(model: nn.Module, shape: Tuple[int, int],
                        backbone_only: bool = False,
                        with_nms: bool = False) -> nn.Module:
    """The module that is traced for ``model`` (in eval mode)."""
    model.eval()
    if backbone_only:
        if with_nms:
            raise ValueError('--with-nms applies to detectors, not to a '
                             'backbone-only export')
        return BackboneExport(model).eval()
    task = model_task(model)
    if task == 'det':
        return DetectorExport(model, shape, with_nms).eval()
    if with_nms:
        raise ValueError('--with-nms applies to detectors; this config '
                         'builds a segmentor')
    return SegmentorExport(model).eval()


# -- export --------------------------------------------------------------
def export_onnx(wrapper: nn.Module, shape: Tuple[int, int], path: str,
                opset: int = MIN_OPSET, batch: int = 2,
                metadata: Optional[Dict[str, str]] = None,
                dynamic_hw: bool = False) -> List[str]:
    """Trace ``wrapper`` on a ``(batch, 3, H, W)`` input and write an ONNX
    file with a dynamic batch axis; return the output names.

    ``batch`` > 1 keeps the tracer from baking a batch of one into reshapes.
    ``dynamic_hw``: height and width are dynamic too (segmentors and
    backbones; LR-ASPP's relative gate pool is exported as a function of the
    input's shape, see ``relative_avg_pool``). Detector graphs are refused:
    they hold the anchors of the traced size.
    """
    import onnx
    if dynamic_hw and isinstance(wrapper, DetectorExport):
        raise ValueError(
            'dynamic height/width: a detector graph holds the anchors (and '
            'box clipping) of the traced input size, so it is exact at that '
            'size only; export one graph per input size')
    # The exporter restores the module's own training flag afterwards,
    # recursively: a wrapper left in train mode would put the BNs of the
    # model it wraps in train mode too.
    wrapper.eval()
    if not MIN_OPSET <= opset <= max_opset():
        raise ValueError(f'opset must be >= {MIN_OPSET} (the opsets the '
                         f'parity tests cover) and <= {max_opset()} (the '
                         f'newest torch {torch.__version__} exports), got '
                         f'{opset}')
    example = torch.rand(batch, 3, *shape,
                         device=module_device(wrapper)) * 255
    if isinstance(wrapper, BackboneExport):
        count = len(wrapper.backbone.out_indices)
    elif isinstance(wrapper, (DetectorExport, SegmentorExport)):
        count = 0  # fixed names
    else:
        with torch.no_grad():
            count = len(_as_tuple(wrapper(example)))
    names = output_names(wrapper, count)
    spatial = {2: 'height', 3: 'width'} if dynamic_hw else {}
    dynamic = {'image': {0: 'batch', **spatial}}
    if not (isinstance(wrapper, DetectorExport) and wrapper.with_nms):
        dynamic.update({name: {0: 'batch', **{
            axis: f'{name}_{label}' for axis, label in spatial.items()}}
            for name in names})
    else:
        dynamic.update({name: {0: 'detections'} for name in names})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter's deprecation notice and tracer warnings about
        # Python values (fixed H x W) say nothing about this graph.
        warnings.simplefilter('ignore')
        try:
            torch.onnx.export(wrapper, (example, ), buffer, dynamo=False,
                              opset_version=opset, input_names=['image'],
                              output_names=names, dynamic_axes=dynamic,
                              do_constant_folding=True)
        except (torch.onnx.errors.OnnxExporterError, RuntimeError) as e:
            # An operator torch cannot export (e.g. PSPHead's adaptive
            # pooling to sizes that do not divide the input); its message
            # carries the whole graph after the first line.
            first = str(e).strip().splitlines()[0] if str(e).strip() else ''
            first = first.split(' Please feel free')[0].split(' [Caused')[0]
            raise ValueError(
                f'torch cannot export {model_name(wrapper)} to ONNX '
                f'(opset {opset}): {first[:300]}') from None
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    onnx.save(proto, path)
    return names


def ort_session(path: str, threads: int = 1, arena: bool = True):
    """An onnxruntime CPU session (``threads`` intra-op threads).

    ``arena=False`` makes each run allocate and free its own buffers
    instead of keeping them in onnxruntime's arena between runs, so that a
    run's peak memory can be measured.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = arena
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


def run_ort(session, image: torch.Tensor) -> List[np.ndarray]:
    return session.run(None, {'image': image.numpy()})


# -- parity --------------------------------------------------------------
@dataclass
class OutputParity:
    name: str
    max_abs_diff: float
    scale: float  # max |reference|

    @property
    def relative(self) -> float:
        return self.max_abs_diff / max(self.scale, 1e-12)


def compare_outputs(names: Sequence[str], reference: Sequence[torch.Tensor],
                    onnx_outputs: Sequence[np.ndarray]) -> List[OutputParity]:
    """Max abs difference of each output, beside the reference's scale."""
    if len(reference) != len(onnx_outputs):
        raise ValueError(f'PyTorch gave {len(reference)} outputs, '
                         f'onnxruntime {len(onnx_outputs)}')
    report = []
    for name, ref, got in zip(names, reference, onnx_outputs):
        ref = ref.detach().float().numpy()
        got = np.asarray(got, dtype=np.float32)
        if ref.shape != got.shape:
            raise ValueError(f'output {name}: PyTorch shape {ref.shape}, '
                             f'onnxruntime shape {got.shape}')
        diff = float(np.abs(ref - got).max()) if ref.size else 0.
        scale = float(np.abs(ref).max()) if ref.size else 0.
        report.append(OutputParity(name, diff, scale))
    return report


def detections_from_raw(head, boxes: torch.Tensor, scores: torch.Tensor,
                        level_sizes: Sequence[int], cfg=None,
                        img_metas: Optional[Sequence[dict]] = None) -> list:
    """mmdet's post-processing on the raw graph outputs of a batch.

    Per image and level the ``nms_pre`` best (anchor, class) pairs above
    ``score_thr`` (mmdet's ``filter_scores_and_topk``; or per class the
    ``topk_per_class`` best anchors of all levels), then the head's own
    ``_bbox_post_process`` (min size, class-wise NMS, ``max_per_img``):
    what ``head.predict_by_feat`` does, on decoded boxes. Returns one
    ``InstanceData`` (bboxes, scores, labels) per image. With ``img_metas``
    (each with ``scale_factor``) the boxes are rescaled to the original
    images before NMS, as ``predict(..., rescale=True)`` does; without, they
    stay in input pixels.
    """
    from mmdet.models.utils import filter_scores_and_topk
    from mmengine.structures import InstanceData
    cfg = head.test_cfg if cfg is None else cfg
    nms_pre = cfg.get('nms_pre', -1)
    score_thr = cfg.get('score_thr', 0)
    results = []
    metas = [None] * len(boxes) if img_metas is None else list(img_metas)
    for image_boxes, image_scores, meta in zip(boxes, scores, metas):
        kept_boxes, kept_scores, kept_labels = [], [], []
        start = 0
        if cfg.get('topk_per_class', 0) > 0:
            # torchvision's selection (SSDLiteHead): per class, over all
            # levels at once
            num_keep = min(cfg['topk_per_class'], len(image_scores))
            top, anchors = image_scores.topk(num_keep, dim=0)
            labels = torch.arange(top.shape[1]).expand_as(top)
            above = top > score_thr
            kept_boxes.append(image_boxes[anchors[above]])
            kept_scores.append(top[above])
            kept_labels.append(labels[above])
            level_sizes = []
        for size in level_sizes:
            level = slice(start, start + size)
            start += size
            level_scores, labels, _, extra = filter_scores_and_topk(
                image_scores[level], score_thr, nms_pre,
                dict(boxes=image_boxes[level]))
            kept_boxes.append(extra['boxes'])
            kept_scores.append(level_scores)
            kept_labels.append(labels)
        result = InstanceData()
        result.bboxes = torch.cat(kept_boxes)
        result.scores = torch.cat(kept_scores)
        result.labels = torch.cat(kept_labels)
        results.append(head._bbox_post_process(
            result, cfg, rescale=meta is not None, with_nms=True,
            img_meta=meta))
    return results


# -- comparing detections -------------------------------------------------
IOU_EPS = 1e-3  # IoU noise of boxes that agree to ~1e-5 of their size


@dataclass
class Detections:
    """One image's (or one image and class's) detections."""
    boxes: torch.Tensor  # (K, 4)
    scores: torch.Tensor  # (K, )
    labels: torch.Tensor  # (K, )

    @classmethod
    def from_instances(cls, instances) -> 'Detections':
        return cls(instances.bboxes.detach().float(),
                   instances.scores.detach().float(),
                   instances.labels.detach().long())

    def __len__(self):
        return len(self.scores)


def _greedy_match(first: Detections, second: Detections, box_tol: float,
                  score_tol: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """One-to-one pairs of equal label, scores within ``score_tol`` and
    boxes within ``box_tol``; returns which detections of each side found
    a partner."""
    used_a = torch.zeros(len(first), dtype=torch.bool)
    used_b = torch.zeros(len(second), dtype=torch.bool)
    if not len(first) or not len(second):
        return used_a, used_b
    close = ((first.labels[:, None] == second.labels[None])
             & ((first.scores[:, None] - second.scores[None]).abs()
                <= score_tol)
             & (torch.cdist(first.boxes.double(), second.boxes.double(),
                            p=float('inf')) <= box_tol))
    for row in range(len(first)):
        free = (close[row] & ~used_b).nonzero()
        if len(free):
            used_a[row] = used_b[free[0, 0]] = True
    return used_a, used_b


def _is_marginal(missing: Detections, other: Detections,
                 iou_threshold: float, score_eps: float,
                 score_floor: float) -> torch.Tensor:
    """Whether each detection kept on one side only hangs on a decision
    that float noise can flip: a score at a cut-off (threshold, top-k,
    max per image), or a same-class box on the other side that overlaps it
    at the NMS threshold with a score not clearly below it (which of the
    two survives NMS then depends on noise)."""
    from torchvision.ops import box_iou
    marginal = missing.scores <= score_floor + score_eps
    if len(other) and len(missing):
        overlap = box_iou(missing.boxes, other.boxes) >= (iou_threshold -
                                                         IOU_EPS)
        same = missing.labels[:, None] == other.labels[None]
        not_below = other.scores[None] >= missing.scores[:, None] - score_eps
        marginal |= (overlap & same & not_below).any(1)
    return marginal


def _compare(first: Detections, second: Detections, iou_threshold: float,
             score_eps: float, score_floor: float,
             atol: float) -> Tuple[int, int]:
    """``(unmatched, unexplained)`` detection counts over both sides."""
    scale = max([1.] + [float(d.boxes.abs().max()) for d in (first, second)
                        if len(d)])
    used_a, used_b = _greedy_match(first, second, atol * scale,
                                   score_eps + atol)
    unexplained = 0
    for used, mine, other in ((used_a, first, second),
                              (used_b, second, first)):
        missing = Detections(mine.boxes[~used], mine.scores[~used],
                             mine.labels[~used])
        unexplained += int((~_is_marginal(missing, other, iou_threshold,
                                          score_eps, score_floor)).sum())
    return int((~used_a).sum() + (~used_b).sum()), unexplained


def _verdict(unmatched: int, unexplained: int, total: int,
             what: str) -> Tuple[bool, str]:
    # A few flips are noise; a real bug (a shifted box, a wrong label)
    # leaves most detections without a partner.
    allowed = max(2, total // 20)
    if unexplained == 0 and unmatched <= allowed:
        extra = (f' ({unmatched} kept on one side only, each at a cut-off '
                 'or NMS tie)' if unmatched else '')
        return True, f'{total} {what} agree{extra}'
    return False, (f'{unmatched} of {total} {what} have no counterpart '
                   f'({unexplained} not explained by a cut-off or NMS tie)')


def detections_match(first, second, iou_threshold: float,
                     score_eps: float = 1e-6, score_floor: float = 0.,
                     cap: Optional[int] = None,
                     atol: float = 1e-3) -> Tuple[bool, str]:
    """Whether two images' detections (``InstanceData`` or
    :class:`Detections`) are the same up to decisions that float noise can
    flip.

    Order is ignored (equal scores may come in either order). Each
    detection needs a partner of equal label, score within ``score_eps +
    atol`` and box within ``atol`` of the image scale; one kept on one side
    only must be *marginal*: its score within ``score_eps`` of
    ``score_floor`` (the score threshold) or, when both lists are full
    (``cap``, mmdet's ``max_per_img``), of the lowest kept score; or a
    same-class detection of the other side overlaps it by the NMS IoU
    threshold with a score not clearly lower. ``score_eps`` is the score
    noise between the two sides. At most 5% (at least 2) may differ.
    """
    if not isinstance(first, Detections):
        first = Detections.from_instances(first)
    if not isinstance(second, Detections):
        second = Detections.from_instances(second)
    if cap is not None and len(first) == cap == len(second) and cap:
        score_floor = max(score_floor, float(torch.minimum(
            first.scores.min(), second.scores.min())))
    unmatched, unexplained = _compare(first, second, iou_threshold,
                                      score_eps, score_floor, atol)
    return _verdict(unmatched, unexplained, max(len(first), len(second)),
                    'detections')


def nms_outputs_match(first: Sequence, second: Sequence,
                      iou_threshold: float, score_threshold: float,
                      max_per_class: int, score_eps: float = 1e-4,
                      atol: float = 1e-3) -> Tuple[bool, str]:
    """:func:`detections_match` for in-graph NMS results (``det_boxes,
    det_scores, det_labels, det_batch``), per image and class, whose cut is
    ``max_per_class``."""
    def split(result):
        boxes, scores, labels, batch = (torch.as_tensor(np.asarray(v))
                                        for v in result)
        keys = torch.stack([batch.long(), labels.long()], dim=1)
        groups = {}
        for key in {tuple(k.tolist()) for k in keys}:
            mask = (keys == torch.tensor(key)).all(1)
            groups[key] = Detections(boxes[mask].float(),
                                     scores[mask].float(),
                                     labels[mask].long())
        return groups

    a, b = split(first), split(second)
    empty = Detections(torch.zeros(0, 4), torch.zeros(0),
                       torch.zeros(0, dtype=torch.long))
    unmatched = unexplained = total = 0
    for key in set(a) | set(b):
        group_a, group_b = a.get(key, empty), b.get(key, empty)
        floor = score_threshold
        if len(group_a) == max_per_class == len(group_b):
            floor = max(floor, float(torch.minimum(group_a.scores.min(),
                                                   group_b.scores.min())))
        counts = _compare(group_a, group_b, iou_threshold, score_eps, floor,
                          atol)
        unmatched += counts[0]
        unexplained += counts[1]
        total += max(len(group_a), len(group_b))
    return _verdict(unmatched, unexplained, total, 'detections')


@dataclass
class ParityResult:
    ok: bool
    lines: List[str]


def _as_tuple(outputs):
    return (outputs, ) if isinstance(outputs, torch.Tensor) else outputs


def verify_export(wrapper: nn.Module, path: str, shape: Tuple[int, int],
                  batch: int = 2, rtol: float = 1e-4, seed: int = 0,
                  float64_fallback: bool = False) -> ParityResult:
    """Run the ONNX file in onnxruntime and PyTorch on one random batch.

    Every output must agree within ``rtol`` times the reference's largest
    magnitude. For detectors, the detections after mmdet's post-processing
    (raw graph) or after the in-graph NMS must agree too, up to decisions
    that the measured noise can flip (see :func:`detections_match`).

    ``float64_fallback``: where an output misses ``rtol``, hold
    onnxruntime against PyTorch in float64 instead, allowing ``rtol`` or
    three times PyTorch's own float32 error, whichever is larger. Meant for
    random-weight deep models, whose float32 outputs already carry rounding
    near ``rtol`` (two float32 implementations then differ by up to twice
    that); trained models meet the plain check.
    """
    import copy
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, *shape, generator=generator) * 255
    device = module_device(wrapper)
    # A model on a GPU is checked there, in float32 (no TF32).
    with torch.no_grad(), exact_float32():
        reference = tuple(r.cpu() for r in _as_tuple(wrapper(
            image.to(device))))
    names = output_names(wrapper, len(reference))
    got = run_ort(ort_session(path), image)
    lines, ok = [], True
    if isinstance(wrapper, DetectorExport) and wrapper.with_nms:
        max_per_class, iou_threshold, score_threshold = wrapper.nms_args
        match, message = nms_outputs_match(
            got, [r.numpy() for r in reference], iou_threshold,
            score_threshold, max_per_class,
            score_eps=rtol * max(1., float(reference[1].abs().max())
                                 if len(reference[1]) else 1.))
        lines.append(f'in-graph NMS, onnxruntime vs PyTorch: {message}'
                     + ('' if match else ' (MISMATCH)'))
        return ParityResult(match, lines)
    comparison = compare_outputs(names, reference, got)
    limits, against = [rtol] * len(names), 'PyTorch'
    if float64_fallback and any(p.relative > rtol for p in comparison):
        with torch.no_grad():
            exact = tuple(r.cpu() for r in _as_tuple(
                copy.deepcopy(wrapper).double()(image.double().to(device))))
        own = compare_outputs(names, exact, [r.numpy() for r in reference])
        limits = [max(rtol, 3 * p.relative) for p in own]
        comparison = compare_outputs(names, exact, got)
        against = 'PyTorch float64'
    for parity, limit in zip(comparison, limits):
        good = parity.max_abs_diff <= limit * max(parity.scale, 1e-12)
        ok &= good
        lines.append(
            f'{parity.name}: max |diff| {parity.max_abs_diff:.3g} = '
            f'{parity.relative:.2g} of max |output| {parity.scale:.3g} vs '
            f'{against} ({"ok" if good else "FAILED"}, limit {limit:.2g})')
    if isinstance(wrapper, DetectorExport):
        head = wrapper.head
        ort_boxes, ort_scores = (torch.from_numpy(g) for g in got)
        score_eps = 4 * float((ort_scores - reference[1]).abs().max()) + 1e-7
        ours = detections_from_raw(head, ort_boxes, ort_scores,
                                   wrapper.level_sizes)
        theirs = detections_from_raw(head, *reference, wrapper.level_sizes)
        cfg = head.test_cfg
        for index, (a, b) in enumerate(zip(ours, theirs)):
            match, message = detections_match(
                a, b, cfg.nms.iou_threshold, score_eps=score_eps,
                score_floor=cfg.get('score_thr', 0.),
                cap=cfg.get('max_per_img'))
            ok &= match
            lines.append(f'image {index} after NMS: {message}'
                         + ('' if match else ' (MISMATCH)'))
    return ParityResult(ok, lines)
