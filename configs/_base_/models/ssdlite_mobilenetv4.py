# SSDLite on MobileNetV4: ./ssdlite_mobilenetv3-large.py (neck, head,
# anchors, losses, init) with a MobileNetV4 backbone. Each
# ../../ssdlite/ssdlite_mobilenetv4-* config sets the backbone's arch and
# the two in_channels its taps give.
# Taps, the V3 rule applied to V4 (no SSDLite in the V4 paper): the 1x1
# expansion of the first block of the last stage (stride 16) and the last
# layer before pooling (the 960-ch 1x1 conv, stride 32).
_base_ = './ssdlite_mobilenetv3-large.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mobilenet_mm.MobileNetV4',
        out_indices=(3, 4),
        out_types=('expansion', 'output'),
        channels_last={{_base_.channels_last}},
        channels_last_outputs=True,
        norm_cfg={{_base_.norm_cfg}},
        init_cfg={{_base_.scratch_init}}))
