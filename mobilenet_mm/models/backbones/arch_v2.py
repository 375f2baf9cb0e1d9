"""MobileNetV2 [arXiv 1801.04381, Table 2]."""
from .specs import ArchSpec, ClassifierSpec, ConvSpec, IBSpec


def ir(expand_ratio, channels, stride=1):
    """Inverted residual: the paper's (t, c, s) columns."""
    return IBSpec(channels, stride, mid_kernel=3, expand_ratio=expand_ratio)


V2_ARCHS = {
    '1.0': ArchSpec(
        stem_channels=32,
        stages=(
            (ir(1, 16), ),                                   # stride 2
            (ir(6, 24, 2), ir(6, 24)),                       # stride 4
            (ir(6, 32, 2), ) + (ir(6, 32), ) * 2,            # stride 8
            (ir(6, 64, 2), ) + (ir(6, 64), ) * 3 +
            (ir(6, 96), ) * 3,                               # stride 16
            (ir(6, 160, 2), ) + (ir(6, 160), ) * 2 +
            (ir(6, 320), ConvSpec(1, 1, 1280, never_narrower=True)),  # 32
        ),
        act='relu6',
        classifier=ClassifierSpec(),
        source='[V2] Table 2'),
}
