"""The one builder: turns an architecture table into stages.

It is the only place that scales channels, threads input channels, and
turns strides into dilation for ``output_stride`` < 32, for every block
type alike (attention included).
"""
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import torch.nn as nn

from ..layers import (ConvBlock, ConvNormAct, FusedInvertedBottleneck,
                      InvertedBottleneck, MobileMQA, make_divisible)
from .specs import (ACTIVATIONS, ArchSpec, BlockSpec, ConvSpec, FusedIBSpec,
                    IBSpec, MQASpec)


@dataclass(frozen=True)
class StageInfo:
    """What a stage returns: channels and output stride (``reduction``),
    and the channels of the taps that lie at this stage's stride, if the
    blocks have them: the 1x1 expansion output of the *next* stage's first
    block, the depthwise output of this stage's last block, and the output
    of this stage's first block."""
    channels: int
    reduction: int
    expansion_channels: Optional[int]
    depthwise_channels: Optional[int] = None
    first_block_channels: Optional[int] = None


REDUCED_TAIL_RULES = ('detection', 'segmentation')
# Which dilation the block whose stride ``output_stride`` removes gets:
# 'tf' the previous one (TF-slim, timm), 'torchvision' the new one
# (torchvision's ``dilated=True``, behind its LR-ASPP).
DILATION_RULES = ('tf', 'torchvision')


def reduce_tail(arch: ArchSpec, rule: str = 'detection') -> ArchSpec:
    """Halve every channel count produced in the last stage.

    ``'detection'`` ([V3] section 6.3 "reduced tail", torchvision
    ``reduced_tail``): the first block's expansion is kept, since it follows
    the stage input. ``'segmentation'`` (TF DeepLab's ``*_seg`` extractors
    behind [V3] Table 7 "RF2"): that expansion is halved too (V3-Large
    672 -> 336). Expansions given as ratios follow their (halved) input
    under both rules.
    """
    if rule not in REDUCED_TAIL_RULES:
        raise ValueError(f'reduced_tail rule {rule!r}; allowed: '
                         f'{REDUCED_TAIL_RULES}')

    def halve(index, spec):
        if isinstance(spec, IBSpec) and spec.expanded is not None and (
                index or rule == 'segmentation'):
            return replace(spec, channels=spec.channels // 2,
                           expanded=spec.expanded // 2)
        return replace(spec, channels=spec.channels // 2)

    last = tuple(halve(i, s) for i, s in enumerate(arch.stages[-1]))
    return replace(arch, stages=arch.stages[:-1] + (last, ))


def drop_last_conv(arch: ArchSpec) -> ArchSpec:
    """End the last stage before its final 1x1 conv (V2's 1280, V3's and
    V4's 960/576), like TF's MobileNetV2 segmentation extractor."""
    last = arch.stages[-1]
    if not isinstance(last[-1], ConvSpec):
        raise ValueError('this architecture has no final 1x1 conv to drop')
    return replace(arch, stages=arch.stages[:-1] + (last[:-1], ))


class _BlockFactory:
    """Builds one block from a spec with the stride and dilation the builder
    assigned; all width scaling lives here."""

    def __init__(self, arch: ArchSpec, widen_factor: float, norm_cfg: dict,
                 act_cfg: Optional[dict]):
        self.arch = arch
        self.widen_factor = widen_factor
        self.norm_cfg = norm_cfg
        self.user_act_cfg = act_cfg

    def act(self, name: Optional[str]) -> dict:
        """Activation config of a row: a user ``act_cfg`` replaces the
        architecture's main activation; rows with another one keep it."""
        name = name or self.arch.act
        if self.user_act_cfg is not None and name == self.arch.act:
            return dict(self.user_act_cfg)
        return dict(ACTIVATIONS[name])

    def width(self, channels: int, never_narrower: bool = False) -> int:
        factor = self.widen_factor
        if never_narrower:
            factor = max(1.0, factor)
        return make_divisible(channels * factor)

    def stem(self) -> nn.Module:
        return ConvNormAct(3, self.width(self.arch.stem_channels), 3,
                             stride=2, norm_cfg=self.norm_cfg,
                             act_cfg=self.act(None))

    def block(self, spec: BlockSpec, in_channels: int, table_in: int,
              stride: int, dilation: int,
              drop_path_rate: float) -> nn.Module:
        """``in_channels`` is the scaled input width, ``table_in`` the
        table's width-1.0 input width."""
        common = dict(stride=stride, dilation=dilation,
                      norm_cfg=self.norm_cfg)
        if isinstance(spec, ConvSpec):
            return ConvBlock(in_channels,
                             self.width(spec.channels, spec.never_narrower),
                             spec.kernel, act_cfg=self.act(spec.act),
                             **common)
        if isinstance(spec, IBSpec):
            if spec.expanded is not None:
                # An absolute expansion is a ratio of the table input, so
                # widths other than 1.0 scale it from the actual input (TF
                # reference code; gives [V3] Table 3's 0.75 counts).
                expanded = make_divisible(in_channels * spec.expanded /
                                          table_in)
            else:
                expanded = make_divisible(in_channels * spec.expand_ratio)
            return InvertedBottleneck(
                in_channels, self.width(spec.channels), expanded,
                start_kernel=spec.start_kernel, mid_kernel=spec.mid_kernel,
                use_se=spec.se, project_act=spec.project_act,
                use_skip=spec.skip, act_cfg=self.act(spec.act),
                drop_path_rate=drop_path_rate,
                layer_scale_init=self.arch.layer_scale_init, **common)
        if isinstance(spec, FusedIBSpec):
            return FusedInvertedBottleneck(
                in_channels, self.width(spec.channels),
                make_divisible(in_channels * spec.expand_ratio),
                kernel=spec.kernel, act_cfg=self.act(spec.act),
                drop_path_rate=drop_path_rate, **common)
        if isinstance(spec, MQASpec):
            return MobileMQA(
                in_channels, self.width(spec.channels), spec.num_heads,
                spec.key_dim, spec.key_dim, kv_stride=spec.kv_stride,
                kv_kernel=spec.kv_kernel, drop_path_rate=drop_path_rate,
                layer_scale_init=self.arch.layer_scale_init, **common)
        raise TypeError(f'unknown block spec {spec!r}')


def first_block_position(stage_index: int) -> int:
    """Position of a stage's first block (stage 0 starts with the stem
    conv, which is no block)."""
    return 1 if stage_index == 0 else 0


def build_stages(arch: ArchSpec,
                 widen_factor: float = 1.0,
                 output_stride: int = 32,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 drop_path_rate: float = 0.,
                 dilation_rule: str = 'tf'
                 ) -> Tuple[nn.ModuleList, List[StageInfo]]:
    """Build the stem and five stages of ``arch``.

    Stage 0 is the stem conv followed by the table's stride-2 blocks, stage
    ``i`` ends at output stride ``2 ** (i + 1)`` (or ``output_stride`` once
    that is reached: further strides become dilation; the block whose stride
    is removed keeps the previous dilation, later blocks get the new one, as
    in TF-slim and timm; with ``dilation_rule='torchvision'`` that block
    gets the new one too).

    Drop-path rates grow linearly with the block index, as in timm.
    """
    if dilation_rule not in DILATION_RULES:
        raise ValueError(f'dilation_rule {dilation_rule!r}; allowed: '
                         f'{DILATION_RULES}')
    factory = _BlockFactory(arch, widen_factor, norm_cfg or dict(type='BN'),
                            act_cfg)
    total_blocks = sum(len(stage) for stage in arch.stages)
    stem = factory.stem()
    channels, table_channels = stem.out_channels, arch.stem_channels
    reduction, dilation, block_index = 2, 1, 0
    stages, reductions = [], []
    for stage_index, stage_specs in enumerate(arch.stages):
        blocks = [stem] if stage_index == 0 else []
        for spec in stage_specs:
            stride = spec.stride
            block_dilation = dilation
            if stride > 1:
                if reduction * stride > output_stride:
                    dilation *= stride
                    stride = 1
                    if dilation_rule == 'torchvision':
                        block_dilation = dilation
                else:
                    reduction *= stride
            block = factory.block(spec, channels, table_channels, stride,
                                  block_dilation,
                                  drop_path_rate * block_index / total_blocks)
            blocks.append(block)
            channels, table_channels = block.out_channels, spec.channels
            block_index += 1
        stages.append(nn.Sequential(*blocks))
        reductions.append(reduction)

    infos = []
    for stage_index, stage in enumerate(stages):
        next_first = (stages[stage_index + 1][0]
                      if stage_index + 1 < len(stages) else None)
        expansion = (next_first.expanded_channels
                     if 'expansion' in getattr(next_first, 'taps', ()) else
                     None)
        last = stage[-1]
        depthwise = (last.expanded_channels
                     if 'depthwise' in getattr(last, 'taps', ()) else None)
        first = first_block_position(stage_index)
        first_channels = (stage[first].out_channels if len(stage) > first
                          else None)
        infos.append(StageInfo(last.out_channels, reductions[stage_index],
                               expansion, depthwise, first_channels))
    return nn.ModuleList(stages), infos

