# SSDLite on MobileNetV3-Large (the default backbone; each config of
# configs/ssdlite/ replaces the backbone and the two in_channels that follow
# its taps). Data: ../datasets/coco_ssdlite-320x320.py, schedule:
# ../schedules/sgd-cosine_660e.py.
#
# Architecture: MobileNetV2 paper section 6.2 and MobileNetV3 paper section
# 6.2, as built by TF object_detection (ssd_mobilenet_v3_feature_extractor,
# samples/configs/ssdlite_mobilenet_v3_large_320x320_coco.config):
# two backbone maps (stride 16 and 32), four extra layers of 512/256/256/128
# channels, separable 3x3 predictors on all six maps, SSD anchors with scales
# 0.2-0.95 (3 boxes on the first map, 6 on the others), BN eps 1e-3 and
# decay 0.97 (momentum 0.03), ReLU6.
# Loss: TF's V3 config (ssdlite_mobilenet_v3_large_320x320_coco.config):
# sigmoid focal alpha 0.75 gamma 2 over every anchor (no mining), the
# background output kept but trained to 0 (encode_background_as_zeros),
# class bias -4.6, smooth L1 divided by the box code size 4
# (normalize_loc_loss_by_codesize); the V1/V2 configs take TF's V2 loss and
# the torchvision-layout configs torchvision's. The optimiser and schedule
# are torchvision's. configs/README.md, "Recipes against their references".
# The backbone starts from scratch, as in the TF release ("initialized from
# scratch") and torchvision, with their init (normal std 0.03 everywhere); to
# start from ImageNet weights set
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...).
# Every recipe item against its reference: configs/README.md, "Recipes
# against their references".
custom_imports = dict(
    imports=['mobilenet_mm', 'mobilenet_mm.datasets.coco_checks'],
    allow_failed_imports=False)

# TF batch norm decay 0.97 == PyTorch momentum 0.03; also in the backbone
# (TF override_base_feature_extractor_hyperparams, torchvision norm_layer).
norm_cfg = dict(type='BN', eps=1e-3, momentum=0.03)
# Channels-last (NHWC) tensors on the CPU, where oneDNN's convs are faster
# on them (figures: docs/performance.md, `tools/analysis/benchmark.py
# --suite layout`); GPUs keep NCHW, unmeasured here.
# channels_last_outputs=True (in each backbone): the maps stay NHWC for
# our neck and head, which read strides; a host head gets NCHW maps with
# the backbone's default False.
channels_last = 'cpu'
# From scratch every conv is normal(0, 0.03), as torchvision's
# ssdlite320_mobilenet_v3_large (_normal_init when weights_backbone is None)
# and TF (truncated_normal_initializer stddev 0.03,
# ssdlite_mobilenet_v3_large_320x320_coco.config) do; the neck and head set
# the same std themselves (init_std). Configs that replace the backbone dict
# keep it with init_cfg={{_base_.scratch_init}}.
scratch_init = dict(type='Normal', layer='Conv2d', std=0.03)

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # TF and torchvision SSDLite map pixels to [-1, 1].
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='mobilenet_mm.MobileNetV3',
        arch='large',
        out_indices=(3, 4),
        out_types=('expansion', 'output'),
        channels_last=channels_last,
        channels_last_outputs=True,
        norm_cfg=norm_cfg,
        # ImageNet weights: dict(type='Pretrained', checkpoint=...)
        init_cfg=scratch_init),
    # in_channels == the backbone's out_channels (tests check every config).
    neck=dict(
        type='mobilenet_mm.SSDLiteNeck',
        in_channels=(672, 960),
        extra_channels=(512, 256, 256, 128),
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='mobilenet_mm.SSDLiteHead',
        num_classes=80,
        in_channels=(672, 960, 512, 256, 256, 128),
        norm_cfg=norm_cfg,
        anchor_generator=dict(
            type='mobilenet_mm.SSDLiteAnchorGenerator',
            input_size=320,  # the data's input_size
            min_scale=0.2,
            max_scale=0.95),
        # TF faster_rcnn_box_coder scales (10, 10, 5, 5).
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0., 0., 0., 0.],
            target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(
            type='mobilenet_mm.PortableFocalLoss', use_sigmoid=True,
            gamma=2.0, alpha=0.75, loss_weight=1.0),
        encode_background_as_zeros=True,
        cls_bias_init=-4.6,  # class_prediction_bias_init: sigmoid 0.01
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=0.25)),
    # TF argmax matcher: IoU >= 0.5 positive, < 0.5 negative, every box gets
    # its best anchor (force_match_for_each_row).
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=None,  # the focal loss weighs every anchor
        debug=False),
    # TF post-processing: NMS IoU 0.6, at most 100 detections.
    test_cfg=dict(
        nms_pre=1000,
        # split_thr=0: mmcv's batched_nms runs NMS class by class (it
        # splits when there are more boxes than split_thr) instead of once
        # over every box with class offsets. Same detections; NMS is
        # quadratic in its input, so 80 small runs beat one over every
        # candidate box (the end-to-end effect: docs/performance.md).
        nms=dict(type='nms', iou_threshold=0.6, split_thr=0),
        min_bbox_size=0,
        score_thr=0.001,
        max_per_img=100))
