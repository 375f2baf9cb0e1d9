"""NMS on any device: mmcv's where it has a kernel, torchvision's elsewhere.

Every NMS our detectors run goes through :func:`batched_nms`; the dense
heads get it through :class:`AnyDeviceNMSMixin`. torchvision's PyPI wheels
ship CPU and CUDA kernels for ``torchvision.ops.nms``, so validation and
testing on a GPU work with the CPU-ops mmcv that ``make setup`` builds.
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .mmcv_kernels import mmcv_has_kernel


def torchvision_nms(boxes: Tensor, scores: Tensor, iou_threshold: float,
                    offset: int = 0, score_threshold: float = 0,
                    max_num: int = -1) -> Tuple[Tensor, Tensor]:
    """``mmcv.ops.nms`` (same arguments, same ``(dets, keep)``) on
    torchvision's kernel.

    Both kernels visit boxes by falling score and drop a box whose IoU with
    a kept one is strictly above ``iou_threshold``; ``keep`` is in that
    order. Equal scores are visited in the order of mmcv's (unstable)
    ``scores.sort``, not torchvision's stable one, so ties keep the same
    boxes. ``offset=1`` (the legacy ``+1`` pixel convention of box areas)
    has no torchvision equivalent and is refused.
    """
    from torchvision.ops import nms
    if offset != 0:
        raise ValueError(
            f'NMS with offset={offset} has no torchvision kernel, and this '
            f'mmcv has none for {boxes.device.type} tensors; use offset=0 '
            'or build mmcv with MMCV_CUDA_OPS=1 (tools/setup_env.sh)')
    candidates = None
    if score_threshold > 0:
        candidates = torch.nonzero(scores > score_threshold).squeeze(1)
        boxes_in, scores_in = boxes[candidates], scores[candidates]
    else:
        boxes_in, scores_in = boxes, scores
    # Sorted as mmcv's kernels sort; torchvision's stable sort then keeps
    # that order.
    order = scores_in.sort(0, descending=True)[1]
    keep = order[nms(boxes_in[order], scores_in[order], float(iou_threshold))]
    if candidates is not None:
        keep = candidates[keep]
    if max_num > 0:
        keep = keep[:max_num]
    dets = torch.cat((boxes[keep], scores[keep].reshape(-1, 1)), dim=1)
    return dets, keep


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor,
                nms_cfg: Optional[Dict],
                class_agnostic: bool = False) -> Tuple[Tensor, Tensor]:
    """``mmcv.ops.batched_nms`` on any device.

    Where mmcv has an NMS kernel for ``boxes.device`` this is mmcv's call as
    it is. Elsewhere mmcv's own batching (class offsets, ``split_thr``,
    ``max_num``) runs with :func:`torchvision_nms` as its kernel, so the
    results are the same; only ``type='nms'`` has that equivalent.
    """
    from mmcv.ops import batched_nms as mmcv_batched_nms
    if nms_cfg is None or mmcv_has_kernel('nms', boxes.device):
        return mmcv_batched_nms(boxes, scores, idxs, nms_cfg, class_agnostic)
    cfg = dict(nms_cfg)
    kind = cfg.get('type', 'nms')
    if kind != 'nms':
        raise ValueError(
            f'NMS type {kind!r} has no kernel for {boxes.device.type} '
            "tensors in this mmcv build, and only type='nms' has a "
            'torchvision equivalent; build mmcv with MMCV_CUDA_OPS=1 '
            '(tools/setup_env.sh) or use nms=dict(type=\'nms\', ...)')
    cfg['type'] = torchvision_nms  # mmcv's batched_nms takes a callable
    return mmcv_batched_nms(boxes, scores, idxs, cfg, class_agnostic)


class AnyDeviceNMSMixin:
    """For mmdet dense heads: ``_bbox_post_process`` with
    :func:`batched_nms`.

    mmdet's ``BaseDenseHead._bbox_post_process`` does the rescaling, score
    factors and ``min_bbox_size`` filter (run here with ``with_nms=False``),
    then ``mmcv.ops.batched_nms`` and the ``max_per_img`` cut, which this
    repeats with the any-device NMS. Put it before the mmdet head class in
    the bases.
    """

    def _bbox_post_process(self, results, cfg, rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None):
        from mmdet.structures.bbox import get_box_tensor
        results = super()._bbox_post_process(
            results=results, cfg=cfg, rescale=rescale, with_nms=False,
            img_meta=img_meta)
        if with_nms and results.bboxes.numel() > 0:
            dets, keep = batched_nms(get_box_tensor(results.bboxes),
                                     results.scores, results.labels, cfg.nms)
            results = results[keep]
            results.scores = dets[:, -1]  # soft-NMS types rescore
            results = results[:cfg.max_per_img]
        return results
