"""MobileNetV3 Large and Small [arXiv 1905.02244, Tables 1 and 2].

The "minimalistic" variants (TF-slim release) drop squeeze-excite,
h-swish and 5x5 kernels; they are derived from the same tables.
"""
from dataclasses import replace

from .specs import ArchSpec, ClassifierSpec, ConvSpec, IBSpec


def bneck(kernel, expanded, channels, se, act, stride):
    """The paper's columns: kernel, exp size, #out, SE, NL, s."""
    return IBSpec(channels, stride, mid_kernel=kernel, expanded=expanded,
                  se=se, act=act)


RE, HS = 'relu', 'hswish'

LARGE = ArchSpec(
    stem_channels=16,
    stages=(
        (bneck(3, 16, 16, False, RE, 1), ),                     # stride 2
        (bneck(3, 64, 24, False, RE, 2),
         bneck(3, 72, 24, False, RE, 1)),                       # stride 4
        (bneck(5, 72, 40, True, RE, 2),
         bneck(5, 120, 40, True, RE, 1),
         bneck(5, 120, 40, True, RE, 1)),                       # stride 8
        (bneck(3, 240, 80, False, HS, 2),
         bneck(3, 200, 80, False, HS, 1),
         bneck(3, 184, 80, False, HS, 1),
         bneck(3, 184, 80, False, HS, 1),
         bneck(3, 480, 112, True, HS, 1),
         bneck(3, 672, 112, True, HS, 1)),                      # stride 16
        (bneck(5, 672, 160, True, HS, 2),
         bneck(5, 960, 160, True, HS, 1),
         bneck(5, 960, 160, True, HS, 1),
         ConvSpec(1, 1, 960, act=HS)),                          # stride 32
    ),
    act=HS,
    classifier=ClassifierSpec(hidden_channels=1280, hidden_act=HS),
    source='[V3] Table 1')

SMALL = ArchSpec(
    stem_channels=16,
    stages=(
        (),                                                     # stride 2
        (bneck(3, 16, 16, True, RE, 2), ),                      # stride 4
        (bneck(3, 72, 24, False, RE, 2),
         bneck(3, 88, 24, False, RE, 1)),                       # stride 8
        (bneck(5, 96, 40, True, HS, 2),
         bneck(5, 240, 40, True, HS, 1),
         bneck(5, 240, 40, True, HS, 1),
         bneck(5, 120, 48, True, HS, 1),
         bneck(5, 144, 48, True, HS, 1)),                       # stride 16
        (bneck(5, 288, 96, True, HS, 2),
         bneck(5, 576, 96, True, HS, 1),
         bneck(5, 576, 96, True, HS, 1),
         ConvSpec(1, 1, 576, act=HS)),                          # stride 32
    ),
    act=HS,
    classifier=ClassifierSpec(hidden_channels=1024, hidden_act=HS),
    source='[V3] Table 2')


def minimalistic(arch: ArchSpec) -> ArchSpec:
    """No SE, ReLU everywhere, 3x3 depthwise kernels (TF-slim
    `*_minimalistic`)."""

    def simplify(spec):
        if isinstance(spec, IBSpec):
            return replace(spec, se=False, act=RE, mid_kernel=3)
        return replace(spec, act=RE)

    return replace(
        arch, act=RE,
        stages=tuple(tuple(simplify(s) for s in stage)
                     for stage in arch.stages),
        classifier=replace(arch.classifier, hidden_act=RE),
        source=arch.source + ', minimalistic (TF-slim)')


V3_ARCHS = {
    'large': LARGE,
    'small': SMALL,
    'large_minimalistic': minimalistic(LARGE),
    'small_minimalistic': minimalistic(SMALL),
}
