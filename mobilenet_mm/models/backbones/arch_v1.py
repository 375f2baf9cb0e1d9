"""MobileNetV1 [arXiv 1704.04861, Table 1].

Activation: ReLU6, as in the TF-slim and timm releases whose weights users
load (the paper says ReLU).
"""
from .specs import ArchSpec, ClassifierSpec, IBSpec


def dws(stride, channels):
    """Depthwise 3x3 + BN + act, pointwise 1x1 + BN + act, no residual."""
    return IBSpec(channels, stride, mid_kernel=3, expand_ratio=1,
                  project_act=True, skip=False)


V1_ARCHS = {
    '1.0': ArchSpec(
        stem_channels=32,  # conv 3x3 s2
        stages=(
            (dws(1, 64), ),                       # C1, stride 2
            (dws(2, 128), dws(1, 128)),           # C2, stride 4
            (dws(2, 256), dws(1, 256)),           # C3, stride 8
            (dws(2, 512), ) + (dws(1, 512), ) * 5,  # C4, stride 16
            (dws(2, 1024), dws(1, 1024)),         # C5, stride 32
        ),
        act='relu6',
        classifier=ClassifierSpec(),
        source='[V1] Table 1'),
}
