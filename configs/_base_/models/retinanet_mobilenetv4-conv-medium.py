# RetinaNet with a MobileNetV4 backbone at 384x384 on COCO 2017, as in the
# MobileNetV4 paper (section 7, Table 7): mmdet's RetinaNet and FPN with a
# 256-d FPN on P3-P7 and a 4-layer 256-d separable head.
#
# Layers follow TF Model Garden's mobile RetinaNet (official/vision/configs/
# experiments/retinanet/coco_mobilenetv2_tpu.yaml: use_separable_conv in the
# FPN and the head, BN eps 1e-3 momentum 0.99 (PyTorch 0.01), ReLU6 in the
# head, anchor_size 3, 3 scales x 3 ratios; decoders/fpn.py: P6 from P5's
# output, ReLU before P7). Stochastic depth 0.2 ([V4] section 7).
#
# Loss and matching: [V4] gives none; TF Model Garden's retinanet_mobile_coco
# (official/vision/configs/retinanet.py Losses): focal gamma 1.5, alpha 0.25;
# Huber box loss delta 0.1 with box_loss_weight 50. Keras' Huber averages the
# 4 coordinates, mmdet's SmoothL1 sums them and divides by beta: Huber_d(x) =
# d * SmoothL1_beta=d(x), so 50 * 0.1 / 4 = loss_weight 1.25 (both divided by
# the number of positives, retinanet_task.py build_losses); matcher: IoU >=
# 0.5 positive, < 0.5 negative (Parser match_threshold / unmatched_threshold).
#
# The backbone starts from ImageNet weights ([V4]): convert timm's
# (mobilenetv4_conv_medium / mobilenetv4_hybrid_medium state dicts) once with
#   python tools/convert_weights.py mobilenetv4_conv_medium.safetensors \
#       checkpoints/mobilenetv4_conv_medium_mm.pth --arch v4_conv_medium
# and train with that path (or pass --cfg-options
# model.backbone.init_cfg.checkpoint=PATH). Nothing is downloaded; a missing
# file stops training when the weights are loaded. From scratch:
# model.backbone.init_cfg=None. Data: ../datasets/coco_retinanet-384x384.py,
# schedule: ../schedules/sgd-step_600e.py.
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'
custom_imports = dict(
    imports=['mobilenet_mm', 'mobilenet_mm.datasets.coco_checks'],
    allow_failed_imports=False)

# ImageNet weights of the backbone, converted by tools/convert_weights.py
# (see the header); the user provides the file.
backbone_checkpoint = 'checkpoints/mobilenetv4_conv_medium_mm.pth'
norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mobilenet_mm.MobileNetV4',
        arch='conv_medium',
        out_indices=(2, 3, 4),
        drop_path_rate=0.2,
        # NHWC on the CPU (faster there; see ssdlite_mobilenetv3-large.py),
        # FPN and head included (they read strides)
        channels_last='cpu',
        channels_last_outputs=True,
        norm_cfg=norm_cfg,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    neck=dict(
        # == the backbone's out_channels (strides 8, 16, 32)
        in_channels=[80, 160, 960],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        num_outs=5,
        conv_cfg=dict(type='mobilenet_mm.SeparableConv2d'),
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='mobilenet_mm.SepRetinaHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU6'),
        anchor_generator=dict(octave_base_scale=3),
        # mmdet's focal loss at TF's gamma 1.5 / alpha 0.25 (header), as a
        # module that also trains on a GPU when mmcv has CPU ops only
        # (mmdet's would call mmcv's CUDA kernel;
        # models/losses/portable_focal_loss.py).
        loss_cls=dict(
            type='mobilenet_mm.PortableFocalLoss', gamma=1.5, alpha=0.25),
        # Huber delta 0.1 x weight 50, averaged over 4 coordinates (header)
        loss_bbox=dict(
            _delete_=True, type='SmoothL1Loss', beta=0.1, loss_weight=1.25)),
    train_cfg=dict(
        assigner=dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.)))
