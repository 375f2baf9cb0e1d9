"""Block specifications: one small frozen record per table row.

An architecture table is a list of five stages (stage 0 is what follows
the stem at stride 2; stage ``i`` ends at output stride ``2 ** (i + 1)``),
each a tuple of these records. Channel counts are the paper's at width 1.0;
the builder scales them, threads input channels and applies stride and
dilation. Unknown fields are a ``TypeError`` at import time, not a silent
no-op.
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

ACTIVATIONS = {
    'relu': dict(type='ReLU'),
    'relu6': dict(type='ReLU6'),
    'hswish': dict(type='HSwish'),
    'gelu': dict(type='GELU'),
}


@dataclass(frozen=True)
class ConvSpec:
    """Conv + norm + act (stem-like full conv or a 1x1 "last" conv).

    ``never_narrower``: width factors below 1 do not shrink it (MobileNetV2's
    final 1280 conv, [V2] section 5.1).
    """
    kernel: int
    stride: int
    channels: int
    act: Optional[str] = None
    never_narrower: bool = False


@dataclass(frozen=True)
class IBSpec:
    """Universal inverted bottleneck row (see ``InvertedBottleneck``).

    Give either ``expand_ratio`` (times the block's input channels, V2/V4
    tables) or ``expanded`` (absolute width-1.0 channels, V3 tables).
    """
    channels: int
    stride: int = 1
    mid_kernel: int = 3
    start_kernel: int = 0
    expand_ratio: Optional[float] = None
    expanded: Optional[int] = None
    se: bool = False
    act: Optional[str] = None
    project_act: bool = False
    skip: bool = True

    def __post_init__(self):
        if (self.expand_ratio is None) == (self.expanded is None):
            raise TypeError('IBSpec needs exactly one of expand_ratio and '
                            'expanded')


@dataclass(frozen=True)
class FusedIBSpec:
    """Fused inverted bottleneck row (MobileNetV4 FusedIB)."""
    kernel: int
    stride: int
    expand_ratio: float
    channels: int
    act: Optional[str] = None


@dataclass(frozen=True)
class MQASpec:
    """Mobile multi-query attention row (MobileNetV4 hybrid)."""
    num_heads: int
    key_dim: int
    channels: int
    kv_stride: int = 1
    kv_kernel: int = 3
    stride: int = 1


BlockSpec = Union[ConvSpec, IBSpec, FusedIBSpec, MQASpec]


@dataclass(frozen=True)
class ClassifierSpec:
    """The ImageNet head after global pooling, for the papers' tables.

    ``hidden_channels``: a 1x1 conv before the final linear layer (V3, V4)
    or None (V1, V2); the width factor does not scale it (TF and timm; this
    gives [V3] Table 3's counts at width 0.75).
    """
    hidden_channels: Optional[int] = None
    hidden_norm: bool = False
    hidden_bias: bool = True
    hidden_act: Optional[str] = None


@dataclass(frozen=True)
class ArchSpec:
    """One architecture: stem, five stages, default activation and head."""
    stem_channels: int
    stages: Tuple[Tuple[BlockSpec, ...], ...]
    act: str
    classifier: ClassifierSpec = field(default_factory=ClassifierSpec)
    layer_scale_init: Optional[float] = None
    source: str = ''

    def __post_init__(self):
        if len(self.stages) != 5:
            raise TypeError('an ArchSpec has exactly five stages')
