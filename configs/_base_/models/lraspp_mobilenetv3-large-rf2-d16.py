# The LR-ASPP segmentor ([V3] section 6.4, Figure 10) on MobileNetV3-Large
# with the reduced tail, output stride 16, F = 128: [V3] Table 7 row 8. The
# configs of configs/lraspp/ of other backbones replace `backbone` and the
# head's in_channels. Data: ../datasets/cityscapes_769x769.py, schedule:
# ../schedules/sgd-poly_90k.py; the config sets the preprocessor's size to
# the data's crop_size.
# mobilenet_mm.LRASPPHead is ours; mmseg's own LRASPPHead is a different
# head (output stride 8, extra skips, a pool fixed to one crop size).
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN when not distributed
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='mobilenet_mm.MobileNetV3',
        arch='large',
        out_indices=(2, 4),  # 1/8 (low-level) and 1/16 (high-level)
        # The low-level map is TF DeepLab's decoder input: the depthwise
        # output of the last 1/8 block (`layer_7/depthwise_output`, 120
        # channels on V3-Large), not the 40-channel block output.
        out_types=('depthwise', 'output'),
        output_stride=16,  # the last stage is atrous
        # "RF2": the last stage's channels halved, TF DeepLab's rule (the
        # first block's expansion too: 672 -> 336)
        reduced_tail='segmentation',
        # NHWC on the CPU (faster there; see ssdlite_mobilenetv3-large.py),
        # the head included (it reads strides)
        channels_last='cpu',
        channels_last_outputs=True,
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='mobilenet_mm.LRASPPHead',
        in_channels=(120, 480),  # the backbone's out_channels
        in_index=(0, 1),
        channels=128,  # F
        # Gate pool: 49x49, stride (16, 20) on the 64x128 map of a
        # 1024x2048 image (Figure 10), as fractions of the map so that it
        # follows the input size. (1., 1.) would pool globally.
        pool_kernel=(49 / 64, 49 / 128),
        pool_stride=(16 / 64, 20 / 128),
        num_classes=19,  # Cityscapes
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
