"""MobileNetV4 [arXiv 2404.10518].

The spec is the TF Model Garden code (`official/vision/modeling/backbones/
mobilenet.py`) as mirrored by timm (`_gen_mobilenet_v4`), not the paper's
Table 13: the only public weights follow the code (see REFERENCE.md 1).
Row comments name the UIB flavour.
"""
from .specs import (ArchSpec, ClassifierSpec, ConvSpec, FusedIBSpec, IBSpec,
                    MQASpec)


def uib(start_kernel, mid_kernel, stride, expand_ratio, channels):
    """Universal inverted bottleneck: start/middle depthwise kernels (0 =
    absent), stride, expansion ratio, output channels."""
    return IBSpec(channels, stride, mid_kernel=mid_kernel,
                  start_kernel=start_kernel, expand_ratio=expand_ratio)


def fused_ib(kernel, stride, expand_ratio, channels):
    return FusedIBSpec(kernel, stride, expand_ratio, channels)


def conv(kernel, stride, channels):
    return ConvSpec(kernel, stride, channels)


def mqa(num_heads, key_dim, kv_stride, channels):
    return MQASpec(num_heads, key_dim, channels, kv_stride=kv_stride)


HEAD = ClassifierSpec(hidden_channels=1280, hidden_norm=True,
                      hidden_bias=False)

CONV_SMALL = ArchSpec(
    stem_channels=32,
    stages=(
        (),
        (conv(3, 2, 32), conv(1, 1, 32)),
        (conv(3, 2, 96), conv(1, 1, 64)),
        (uib(5, 5, 2, 3, 96),                      # ExtraDW
         *[uib(0, 3, 1, 2, 96)] * 4,               # IB
         uib(3, 0, 1, 4, 96)),                     # ConvNext
        (uib(3, 3, 2, 6, 128),                     # ExtraDW
         uib(5, 5, 1, 4, 128),                     # ExtraDW
         uib(0, 5, 1, 4, 128),                     # IB
         uib(0, 5, 1, 3, 128),                     # IB
         *[uib(0, 3, 1, 4, 128)] * 2,              # IB
         conv(1, 1, 960)),
    ),
    act='relu', classifier=HEAD, source='TF Model Garden MNV4ConvSmall')

CONV_MEDIUM = ArchSpec(
    stem_channels=32,
    stages=(
        (),
        (fused_ib(3, 2, 4, 48), ),
        (uib(3, 5, 2, 4, 80),                      # ExtraDW
         uib(3, 3, 1, 2, 80)),                     # ExtraDW
        (uib(3, 5, 2, 6, 160),                     # ExtraDW
         *[uib(3, 3, 1, 4, 160)] * 2,              # ExtraDW
         uib(3, 5, 1, 4, 160),                     # ExtraDW
         uib(3, 3, 1, 4, 160),                     # ExtraDW
         uib(3, 0, 1, 4, 160),                     # ConvNext
         uib(0, 0, 1, 2, 160),                     # FFN
         uib(3, 0, 1, 4, 160)),                    # ConvNext
        (uib(5, 5, 2, 6, 256),                     # ExtraDW
         uib(5, 5, 1, 4, 256),                     # ExtraDW
         *[uib(3, 5, 1, 4, 256)] * 2,              # ExtraDW
         uib(0, 0, 1, 4, 256),                     # FFN
         uib(3, 0, 1, 4, 256),                     # ConvNext
         uib(3, 5, 1, 2, 256),                     # ExtraDW
         uib(5, 5, 1, 4, 256),                     # ExtraDW
         *[uib(0, 0, 1, 4, 256)] * 2,              # FFN
         uib(5, 0, 1, 2, 256),                     # ConvNext
         conv(1, 1, 960)),
    ),
    act='relu', classifier=HEAD, source='TF Model Garden MNV4ConvMedium')

CONV_LARGE = ArchSpec(
    stem_channels=24,
    stages=(
        (),
        (fused_ib(3, 2, 4, 48), ),
        (uib(3, 5, 2, 4, 96),                      # ExtraDW
         uib(3, 3, 1, 4, 96)),                     # ExtraDW
        (uib(3, 5, 2, 4, 192),                     # ExtraDW
         *[uib(3, 3, 1, 4, 192)] * 3,              # ExtraDW
         uib(3, 5, 1, 4, 192),                     # ExtraDW
         *[uib(5, 3, 1, 4, 192)] * 5,              # ExtraDW
         uib(3, 0, 1, 4, 192)),                    # ConvNext
        (uib(5, 5, 2, 4, 512),                     # ExtraDW
         *[uib(5, 5, 1, 4, 512)] * 3,              # ExtraDW
         uib(5, 0, 1, 4, 512),                     # ConvNext
         uib(5, 3, 1, 4, 512),                     # ExtraDW
         *[uib(5, 0, 1, 4, 512)] * 2,              # ConvNext
         uib(5, 3, 1, 4, 512),                     # ExtraDW
         uib(5, 5, 1, 4, 512),                     # ExtraDW
         *[uib(5, 0, 1, 4, 512)] * 3,              # ConvNext
         conv(1, 1, 960)),
    ),
    act='relu', classifier=HEAD, source='TF Model Garden MNV4ConvLarge')

HYBRID_MEDIUM = ArchSpec(
    stem_channels=32,
    stages=(
        (),
        (fused_ib(3, 2, 4, 48), ),
        (uib(3, 5, 2, 4, 80),                      # ExtraDW
         uib(3, 3, 1, 2, 80)),                     # ExtraDW
        (uib(3, 5, 2, 6, 160),                     # ExtraDW
         uib(0, 0, 1, 2, 160),                     # FFN
         uib(3, 3, 1, 4, 160),                     # ExtraDW
         uib(3, 5, 1, 4, 160),                     # ExtraDW
         mqa(4, 64, 2, 160),
         uib(3, 3, 1, 4, 160),                     # ExtraDW
         mqa(4, 64, 2, 160),
         uib(3, 0, 1, 4, 160),                     # ConvNext
         mqa(4, 64, 2, 160),
         uib(3, 3, 1, 4, 160),                     # ExtraDW
         mqa(4, 64, 2, 160),
         uib(3, 0, 1, 4, 160)),                    # ConvNext
        (uib(5, 5, 2, 6, 256),                     # ExtraDW
         uib(5, 5, 1, 4, 256),                     # ExtraDW
         *[uib(3, 5, 1, 4, 256)] * 2,              # ExtraDW
         uib(0, 0, 1, 2, 256),                     # FFN
         uib(3, 5, 1, 2, 256),                     # ExtraDW
         uib(0, 0, 1, 2, 256),                     # FFN
         uib(0, 0, 1, 4, 256),                     # FFN
         mqa(4, 64, 1, 256),
         uib(3, 0, 1, 4, 256),                     # ConvNext
         mqa(4, 64, 1, 256),
         uib(5, 5, 1, 4, 256),                     # ExtraDW
         mqa(4, 64, 1, 256),
         uib(5, 0, 1, 4, 256),                     # ConvNext
         mqa(4, 64, 1, 256),
         uib(5, 0, 1, 4, 256),                     # ConvNext
         conv(1, 1, 960)),
    ),
    act='relu', classifier=HEAD, layer_scale_init=1e-5,
    source='TF Model Garden MNV4HybridMedium')

HYBRID_LARGE = ArchSpec(
    stem_channels=24,
    stages=(
        (),
        (fused_ib(3, 2, 4, 48), ),
        (uib(3, 5, 2, 4, 96),                      # ExtraDW
         uib(3, 3, 1, 4, 96)),                     # ExtraDW
        (uib(3, 5, 2, 4, 192),                     # ExtraDW
         *[uib(3, 3, 1, 4, 192)] * 3,              # ExtraDW
         uib(3, 5, 1, 4, 192),                     # ExtraDW
         *[uib(5, 3, 1, 4, 192)] * 2,              # ExtraDW
         mqa(8, 48, 2, 192),
         uib(5, 3, 1, 4, 192),                     # ExtraDW
         mqa(8, 48, 2, 192),
         uib(5, 3, 1, 4, 192),                     # ExtraDW
         mqa(8, 48, 2, 192),
         uib(5, 3, 1, 4, 192),                     # ExtraDW
         mqa(8, 48, 2, 192),
         uib(3, 0, 1, 4, 192)),                    # ConvNext
        (uib(5, 5, 2, 4, 512),                     # ExtraDW
         *[uib(5, 5, 1, 4, 512)] * 3,              # ExtraDW
         uib(5, 0, 1, 4, 512),                     # ConvNext
         uib(5, 3, 1, 4, 512),                     # ExtraDW
         *[uib(5, 0, 1, 4, 512)] * 2,              # ConvNext
         uib(5, 3, 1, 4, 512),                     # ExtraDW
         uib(5, 5, 1, 4, 512),                     # ExtraDW
         mqa(8, 64, 1, 512),
         uib(5, 0, 1, 4, 512),                     # ConvNext
         mqa(8, 64, 1, 512),
         uib(5, 0, 1, 4, 512),                     # ConvNext
         mqa(8, 64, 1, 512),
         uib(5, 0, 1, 4, 512),                     # ConvNext
         mqa(8, 64, 1, 512),
         uib(5, 0, 1, 4, 512),                     # ConvNext
         conv(1, 1, 960)),
    ),
    act='gelu', classifier=HEAD, layer_scale_init=1e-5,
    source='TF Model Garden MNV4HybridLarge')

V4_ARCHS = {
    'conv_small': CONV_SMALL,
    'conv_medium': CONV_MEDIUM,
    'conv_large': CONV_LARGE,
    'hybrid_medium': HYBRID_MEDIUM,
    'hybrid_large': HYBRID_LARGE,
}
