# torchvision's ssdlite320_mobilenet_v3_large (torchvision/models/detection/
# ssdlite.py), built by our modules so that its COCO-trained weights load
# with identical outputs: convert them with
#   python tools/convert_weights.py ssdlite320_mobilenet_v3_large_coco-a79551df.pth \
#       checkpoints/ssdlite320_mobilenet_v3_large_coco_mm.pth \
#       --config configs/ssdlite/ssdlite_mobilenetv3-large-reduced-torchvision_8xb24-660e_coco-320x320.py
# torchvision: 21.3 box AP on COCO val2017 (its figure, not measured here),
# 3,440,060 parameters. README "Start from trained weights".
#
# The architecture is ssdlite_mobilenetv3-large-reduced-scratch_8xb24-660e_coco-320x320.py's (reduced tail, taps 672
# and 480 channels, the same neck and separable predictors, BN eps 1e-3
# momentum 0.03, [-1, 1] inputs). What torchvision does differently from TF
# (and so from our paper configs), set here:
# * anchors: DefaultBoxGenerator([[2, 3]] * 6, min_ratio=0.2, max_ratio=0.95):
#   six boxes on every map (TF: three on the first), in its order, sizes
#   clipped to the image;
# * classes: 91 softmax outputs (background, COCO ids 1-90, ten of them never
#   assigned); ours hold mmdet's 80 classes, the background, then the ten
#   unused outputs, which stay in the softmax so that scores are identical;
# * loss: softmax, 3:1 hard negatives, smooth L1 over the matches
#   (torchvision/models/detection/ssd.py compute_loss), no class bias;
# * post-processing: per class the 300 best anchors above score 0.001, NMS
#   IoU 0.55, 300 detections, no minimum box size.
_base_ = './ssdlite_mobilenetv3-large-reduced-scratch_8xb24-660e_coco-320x320.py'

model = dict(
    bbox_head=dict(
        num_classes=80,
        unused_class_outputs=10,
        anchor_generator=dict(
            reduce_first_level=False, layout='torchvision', clip_sizes=True),
        loss_cls=dict(_delete_=True, type='CrossEntropyLoss',
                      use_sigmoid=False, loss_weight=1.0),
        encode_background_as_zeros=False,
        cls_bias_init=0.,
        loss_bbox=dict(loss_weight=1.0)),
    train_cfg=dict(neg_pos_ratio=3),
    test_cfg=dict(
        _delete_=True,
        nms_pre=-1,  # replaced by torchvision's per-class selection
        topk_per_class=300,
        score_thr=0.001,
        # split_thr=0: class by class, as torchvision's batched_nms does for
        # this many boxes (same detections either way)
        nms=dict(type='nms', iou_threshold=0.55, split_thr=0),
        min_bbox_size=-1,  # torchvision keeps boxes clipped to zero size
        max_per_img=300))
