"""SSDLite box and class predictors ([V2] section 6.2, [V3] section 6.2).

On each of the six maps, a class predictor and a box predictor, each a
"separable" conv: 3x3 depthwise + BN + ReLU6, then a 1x1 conv with bias and
no norm (TF ``ConvolutionalBoxPredictor(use_depthwise=True)``, torchvision
``SSDLiteHead``). mmdet's ``SSDHead(use_depthwise=True, stacked_convs=0)``
builds exactly these layers, so this class keeps its layers and target
assignment and changes:

* the loss: softmax cross-entropy over ``num_classes + 1`` (background
  last) with SSD hard negative mining at ``train_cfg.neg_pos_ratio`` (3:1,
  torchvision), or a sigmoid loss over the same outputs, as in TF's
  configs: V2 sigmoid with 3:1 mining and the background output trained as
  a class; V3 focal over every anchor (``neg_pos_ratio=None``) with
  ``encode_background_as_zeros`` (the background output's target is 0
  everywhere, so it is a dead output TF keeps and drops when predicting);
  smooth-L1 box loss; both built from ``loss_cls`` / ``loss_bbox`` configs
  like every mmdet anchor head. The class outputs are the same for every
  loss, so the loss never changes the architecture or its parameters.
  mmdet 3.3.0's ``SSDHead`` never builds
  ``self.loss_cls``, and ``BaseDenseHead`` reads it when predicting: that
  is its ``'SSDHead' object has no attribute 'loss_cls'`` crash;
* the anchors: :class:`SSDLiteAnchorGenerator` (TF layout, 3 boxes on the
  first map, 6 on the others, scales 0.2-0.95);
* the initialisation: normal, std 0.03 (TF release and torchvision), and
  optionally TF's class bias (``cls_bias_init``, -4.6 in its V3 config);
* the candidate selection when predicting: a partial top-k instead of a
  full sort (same detections, see :meth:`_predict_by_feat_single`), or
  torchvision's per-class top-k over all maps (``test_cfg.topk_per_class``);
* optional class outputs that no label uses (``unused_class_outputs``):
  torchvision's COCO detectors predict 91 scores, 10 of them for ids COCO
  never assigned; they share the softmax, so a converted model keeps them
  (a sigmoid loss trains them to 0).
* the NMS: mmcv's, or torchvision's where mmcv has no kernel for the
  device (:class:`~mobilenet_mm.models.utils.AnyDeviceNMSMixin`).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.structures.bbox import cat_boxes
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS
from ..necks.ssdlite_neck import SSDLITE_NORM, init_convs_normal
from ..utils import AnyDeviceNMSMixin


@MODELS.register_module()
class SSDLiteHead(AnyDeviceNMSMixin, SSDHead):
    """SSDLite head: separable predictors, SSD anchors, hard negatives.

    Registered as ``mobilenet_mm.SSDLiteHead``; mmdet has no class of that
    name, and configs name it with our scope so nothing can shadow it.

    Args:
        num_classes: object classes (background excluded).
        in_channels: channels of the six maps (an ``SSDLiteNeck``'s
            ``out_channels``).
        norm_cfg / act_cfg: of the depthwise convs.
        anchor_generator: must give ``num_base_priors`` per map.
        bbox_coder: TF's ``faster_rcnn_box_coder`` scales (10, 10, 5, 5) are
            stds (0.1, 0.1, 0.2, 0.2).
        loss_cls: a classification loss that can return per-anchor losses
            (``reduction_override='none'``): softmax (``num_classes + 1``
            outputs, background last) or sigmoid (``use_sigmoid=True``, one
            logistic per output, e.g. TF V3's
            ``dict(type='mobilenet_mm.PortableFocalLoss', use_sigmoid=True,
            gamma=2.0, alpha=0.75)``). Hard negative mining ranks
            negatives by it (summed over the outputs for a sigmoid loss,
            as TF does).
        loss_bbox: box regression loss (smooth L1, beta 1 in TF).
        reg_decoded_bbox: regress decoded boxes (for IoU losses).
        train_cfg: mmdet anchor-head training config; ``neg_pos_ratio``
            negatives per positive (hard negative mining), or ``None``
            for a sigmoid loss over every anchor (TF V3); a softmax loss
            needs mining.
        test_cfg: mmdet dense-head test config (nms, score_thr, ...);
            ``topk_per_class=K`` selects torchvision's candidates (per class,
            the K best anchors of all maps above ``score_thr``) in place of
            ``nms_pre`` (per map, the best (anchor, class) pairs).
        init_std: std of the normal initialisation of every conv.
        cls_bias_init: initial bias of the class outputs (0; TF V3's
            ``class_prediction_bias_init`` is -4.6, a prior of 0.01 for a
            sigmoid loss).
        encode_background_as_zeros: with a sigmoid loss, train the
            background output to 0 at every anchor (TF's field of that
            name, true in its V3 config) instead of to 1 at the unmatched
            anchors (False, TF's default and its V2 config). Needs a
            sigmoid loss: a softmax has no all-zero target.
        unused_class_outputs: softmax outputs after the background that no
            label uses (class outputs: ``num_classes`` labels, background,
            then these). torchvision's COCO models have 10 (its 91 outputs
            hold the ids COCO left unassigned, "N/A"); never predicted and
            never a positive target, but part of the softmax's sum.
    """

    def __init__(self,
                 num_classes: int = 80,
                 in_channels: Sequence[int] = (672, 960, 512, 256, 256, 128),
                 norm_cfg: Optional[dict] = SSDLITE_NORM,
                 act_cfg: Optional[dict] = dict(type='ReLU6'),
                 anchor_generator: dict = dict(
                     type='mobilenet_mm.SSDLiteAnchorGenerator',
                     input_size=320),
                 bbox_coder: dict = dict(
                     type='DeltaXYWHBBoxCoder',
                     target_means=[0., 0., 0., 0.],
                     target_stds=[0.1, 0.1, 0.2, 0.2]),
                 loss_cls: dict = dict(
                     type='CrossEntropyLoss', use_sigmoid=False,
                     loss_weight=1.0),
                 loss_bbox: dict = dict(
                     type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 reg_decoded_bbox: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_std: float = 0.03,
                 cls_bias_init: float = 0.,
                 encode_background_as_zeros: bool = False,
                 unused_class_outputs: int = 0) -> None:
        sigmoid = bool(loss_cls.get('use_sigmoid', False))
        if train_cfg is not None:
            if 'neg_pos_ratio' not in train_cfg:
                raise ValueError('SSDLiteHead: train_cfg needs neg_pos_ratio '
                                 '(3 in SSD and SSDLite; None for a sigmoid '
                                 'loss without mining)')
            ratio = train_cfg['neg_pos_ratio']
            if ratio is None and not sigmoid:
                raise ValueError(
                    'SSDLiteHead: neg_pos_ratio=None (no hard negative '
                    'mining) needs a sigmoid loss_cls; a softmax loss over '
                    'every anchor is swamped by the background')
            if ratio is not None and (isinstance(ratio, bool) or not
                                      isinstance(ratio, int) or ratio < 1):
                raise ValueError('SSDLiteHead: neg_pos_ratio must be an int '
                                 f'>= 1 or None, got {ratio!r}')
            if 'smoothl1_beta' in train_cfg:
                raise ValueError(
                    'SSDLiteHead: train_cfg.smoothl1_beta (mmdet SSDHead) is '
                    "not read here; set loss_bbox=dict(type='SmoothL1Loss', "
                    'beta=...) instead')
        if isinstance(unused_class_outputs, bool) or not isinstance(
                unused_class_outputs, int) or unused_class_outputs < 0:
            raise ValueError('SSDLiteHead: unused_class_outputs must be an '
                             f'int >= 0, got {unused_class_outputs!r}')
        if not isinstance(encode_background_as_zeros, bool):
            raise ValueError('SSDLiteHead: encode_background_as_zeros must '
                             f'be True or False, got '
                             f'{encode_background_as_zeros!r}')
        if encode_background_as_zeros and not sigmoid:
            raise ValueError(
                'SSDLiteHead: encode_background_as_zeros=True needs a '
                'sigmoid loss_cls (use_sigmoid=True); a softmax loss has no '
                'all-zero target')
        if test_cfg is not None and test_cfg.get('topk_per_class', 0) > 0 \
                and test_cfg.get('nms_pre', -1) > 0:
            raise ValueError(
                'SSDLiteHead: test_cfg sets both topk_per_class and nms_pre; '
                'they are two candidate selections: set nms_pre=-1 with '
                'topk_per_class (torchvision) or drop topk_per_class')
        in_channels = tuple(in_channels)
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            stacked_convs=0,
            use_depthwise=True,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            anchor_generator=anchor_generator,
            bbox_coder=bbox_coder,
            reg_decoded_bbox=reg_decoded_bbox,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=None)
        if len(self.num_base_priors) != len(in_channels):
            raise ValueError(
                f'SSDLiteHead: {len(in_channels)} input maps but the anchor '
                f'generator lays out {len(self.num_base_priors)}')
        # Built here (not by SSDHead): BaseDenseHead.predict_by_feat reads
        # self.loss_cls, and the losses below use both.
        self.loss_cls = MMDET_MODELS.build(loss_cls)
        self.loss_bbox = MMDET_MODELS.build(loss_bbox)
        self.init_std = init_std
        self.cls_bias_init = float(cls_bias_init)
        self.encode_background_as_zeros = encode_background_as_zeros
        self.unused_class_outputs = unused_class_outputs
        self.use_sigmoid_cls = sigmoid
        # The classes, the background, then any unused outputs, whatever
        # the loss (TF keeps its background output with sigmoid losses).
        outputs = num_classes + 1 + unused_class_outputs
        if outputs != self.cls_out_channels:
            self.cls_out_channels = outputs
            for convs, priors in zip(self.cls_convs, self.num_base_priors):
                last = convs[-1]
                convs[-1] = nn.Conv2d(last.in_channels,
                                      priors * self.cls_out_channels,
                                      last.kernel_size, padding=last.padding)

    @property
    def class_layers(self) -> Tuple[str, ...]:
        """The convs that output class scores (the last of each class
        predictor), re-initialised when fine-tuning to other classes
        (:func:`mobilenet_mm.engine.load_for_finetune`); the box predictors
        are class-agnostic and carry over."""
        return tuple(f'cls_convs.{i}.{len(convs) - 1}'
                     for i, convs in enumerate(self.cls_convs))

    def init_weights(self) -> None:
        """Normal(0, init_std) convs, zero biases, BN (1, 0).

        Set here rather than by ``init_cfg``: mmengine initialises the
        ``ConvModule`` children after the parent's ``init_cfg``, and their
        Kaiming default would overwrite it.
        """
        if self.is_init:
            return
        super().init_weights()
        init_convs_normal(self, self.init_std)
        for convs in self.cls_convs:
            nn.init.constant_(convs[-1].bias, self.cls_bias_init)

    def loss_by_feat_single(self, cls_score: Tensor, bbox_pred: Tensor,
                            anchor: Tensor, labels: Tensor,
                            label_weights: Tensor, bbox_targets: Tensor,
                            bbox_weights: Tensor,
                            avg_factor: int) -> Tuple[Tensor, Tensor]:
        """Losses of one image (all anchors of all maps, concatenated).

        Every positive anchor counts; of the negatives only the
        ``neg_pos_ratio * num_pos`` with the highest classification loss,
        or all of them with ``neg_pos_ratio=None``. Both losses are divided
        by ``avg_factor`` (the number of positives in the batch), TF's
        ``normalize_loss_by_num_matches``.
        """
        loss_labels = labels
        if self.encode_background_as_zeros:
            # mmdet's sigmoid losses read label == number of outputs as
            # "no output is 1" (TF's all-zero unmatched target)
            loss_labels = torch.where(labels == self.num_classes,
                                      self.cls_out_channels, labels)
        per_anchor = self.loss_cls(
            cls_score, loss_labels, label_weights, reduction_override='none')
        if per_anchor.dim() == 2:  # a sigmoid loss: one column per output
            per_anchor = per_anchor.sum(-1)
        ratio = self.train_cfg['neg_pos_ratio']
        if ratio is None:
            loss_cls = per_anchor.sum() / avg_factor
        else:
            positive = (labels >= 0) & (labels < self.num_classes)
            negative = labels == self.num_classes
            num_neg = min(ratio * int(positive.sum()), int(negative.sum()))
            hardest_neg, _ = per_anchor[negative].topk(num_neg)
            loss_cls = (per_anchor[positive].sum() + hardest_neg.sum()) \
                / avg_factor
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchor, bbox_pred)
        loss_bbox = self.loss_bbox(
            bbox_pred, bbox_targets, bbox_weights, avg_factor=avg_factor)
        return loss_cls[None], loss_bbox

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Optional[Tensor]],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg=None,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """Detections of one image.

        On each map, the ``nms_pre`` highest (anchor, class) scores above
        ``score_thr`` are kept and their boxes decoded; then mmdet's own
        post-processing (``min_bbox_size``, rescale, NMS, ``max_per_img``).
        The candidates are those mmdet's ``BaseDenseHead`` keeps, but mmdet
        fully sorts every score above the threshold (about 100k per map at
        320x320 with 80 classes, nearly all of them while scores are low)
        and deep-copies the test config per image; a partial top-k does the
        same selection in a fraction of the time. ``nms_pre <= 0`` keeps
        every candidate.
        """
        cfg = self.test_cfg if cfg is None else cfg
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0)
        num_classes = self.num_classes
        mlvl_deltas, mlvl_kept_priors, mlvl_scores, mlvl_labels = \
            [], [], [], []
        per_map = [(self._anchor_scores(cls_score), bbox_pred.permute(
            1, 2, 0).reshape(-1, self.bbox_coder.encode_size), priors)
                   for cls_score, bbox_pred, priors in zip(
                       cls_score_list, bbox_pred_list, mlvl_priors)]
        if cfg.get('topk_per_class', 0) > 0:
            # torchvision SSD.postprocess_detections: per class, the best
            # anchors of all maps together; top-k then the threshold is the
            # same set as its threshold then top-k.
            scores = torch.cat([m[0] for m in per_map])
            num_keep = min(cfg['topk_per_class'], scores.shape[0])
            scores, anchor_idxs = scores.topk(num_keep, dim=0)
            labels = torch.arange(num_classes, device=scores.device).expand(
                num_keep, num_classes)
            above = scores > score_thr
            anchor_idxs = anchor_idxs[above]
            mlvl_scores.append(scores[above])
            mlvl_labels.append(labels[above])
            mlvl_deltas.append(torch.cat([m[1] for m in per_map])[anchor_idxs])
            mlvl_kept_priors.append(
                cat_boxes([m[2] for m in per_map])[anchor_idxs])
            per_map = []
        for scores, deltas, priors in per_map:
            scores = scores.reshape(-1)
            num_keep = scores.numel() if nms_pre <= 0 else min(
                nms_pre, scores.numel())
            # Top-k first, then the threshold: the same set as mmdet's
            # threshold-then-top-k, since thresholding keeps the order.
            scores, flat_idxs = scores.topk(num_keep)
            above = scores > score_thr
            scores, flat_idxs = scores[above], flat_idxs[above]
            anchor_idxs = torch.div(flat_idxs, num_classes,
                                    rounding_mode='floor')
            mlvl_scores.append(scores)
            mlvl_labels.append(flat_idxs - anchor_idxs * num_classes)
            mlvl_deltas.append(deltas[anchor_idxs])
            mlvl_kept_priors.append(priors[anchor_idxs])
        results = InstanceData()
        results.bboxes = self.bbox_coder.decode(
            cat_boxes(mlvl_kept_priors), torch.cat(mlvl_deltas),
            max_shape=img_meta['img_shape'])
        results.scores = torch.cat(mlvl_scores)
        results.labels = torch.cat(mlvl_labels)
        return self._bbox_post_process(
            results=results, cfg=cfg, rescale=rescale, with_nms=with_nms,
            img_meta=img_meta)

    def _anchor_scores(self, cls_score: Tensor) -> Tensor:
        """(anchors, num_classes) scores of one map of one image."""
        return self.class_scores(
            cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels))

    def class_scores(self, logits: Tensor) -> Tensor:
        """Scores of the classes from logits of every output
        (``(..., cls_out_channels)`` to ``(..., num_classes)``): the
        background (then any unused outputs) after the classes is dropped,
        after the softmax or, for a sigmoid loss, before the sigmoid (TF's
        post-processing slices it off)."""
        if self.use_sigmoid_cls:
            return logits[..., :self.num_classes].sigmoid()
        return logits.softmax(-1)[..., :self.num_classes]
