"""One backbone class for MobileNetV1-V4, with four thin public entries."""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...registry import MODELS
from .arch_v1 import V1_ARCHS
from .arch_v2 import V2_ARCHS
from .arch_v3 import V3_ARCHS
from .arch_v4 import V4_ARCHS
from .builder import (DILATION_RULES, REDUCED_TAIL_RULES, StageInfo,
                      build_stages, drop_last_conv, first_block_position,
                      reduce_tail)
from .specs import ArchSpec

NUM_STAGES = 5
OUTPUT_TYPES = ('output', 'expansion', 'depthwise', 'first_block')
CHANNELS_LAST_MODES = (False, True, 'cpu')
# The papers and timm go up to 1.4-2.0; far beyond is a typo (1e9 would try
# to allocate petabytes), NaN/inf fail later in ceil().
MAX_WIDEN_FACTOR = 4.0


class MobileNet(BaseModule):
    """MobileNet backbone of any generation, OpenMMLab style.

    Stages are resolution levels: stage 0 is the stem (and the stride-1
    blocks after it) at output stride 2, stage ``i`` ends at output stride
    ``2 ** (i + 1)``: ``out_indices=(2, 3, 4)`` gives strides 8, 16, 32 for
    every generation.

    Args:
        arch: architecture name, see each subclass's ``arch_settings``.
        widen_factor: channel multiplier (rounded to multiples of 8).
        out_indices: stages to return (0-4, negative indices allowed).
        out_types: per entry of ``out_indices``, ``'output'`` (the stage
            output) or ``'expansion'``: the output of the 1x1 expansion conv
            of the *next* stage's first block, computed at this stage's
            resolution before that block's strided depthwise conv (TF's
            ``expansion_output``; SSDLite's first feature map), or
            ``'depthwise'``: the depthwise conv output (after its
            activation, before SE) of this stage's last block (TF's
            ``depthwise_output``; TF DeepLab's LR-ASPP low-level input), or
            ``'first_block'``: the output of this stage's first block
            (torchvision's LR-ASPP low-level input, ``features[4]`` of
            V3-Large: the strided 40-channel block, not the stage output).
            ``None`` means all ``'output'``.
        frozen_stages: stages 0..frozen_stages are frozen (-1: none).
        norm_eval: keep BatchNorm layers in eval mode while training.
        output_stride: 32, 16 or 8; strides beyond it become dilation.
        dilation_rule: ``'tf'`` (default): the block whose stride is
            removed keeps the previous dilation (TF-slim, timm);
            ``'torchvision'``: it gets the new one (torchvision's
            ``dilated=True``).
        reduced_tail: halve the channels of the last stage. ``True`` or
            ``'detection'``: [V3] section 6.3 / torchvision (the first
            block's expansion is kept); ``'segmentation'``: TF DeepLab's
            rule behind [V3] Table 7 "RF2" (that expansion is halved too).
        with_last_conv: keep the final 1x1 conv of the last stage (V2's
            1280, V3's/V4's 960/576); TF's V2 segmentation extractor ends
            before it.
        with_cp: gradient checkpointing of each block.
        channels_last: run on channels-last (NHWC) tensors: ``True``
            always, ``'cpu'`` only for inputs on the CPU, ``False`` never.
            Only the input is converted; every later conv follows its
            layout. On this project's x86 CPU (oneDNN) it makes inference
            and training faster, but GELU networks (V4 Hybrid-L) slower
            (figures in docs/performance.md, from
            ``tools/analysis/benchmark.py --suite layout``); the shipped
            configs use ``'cpu'`` since it is unmeasured on GPUs here.
        channels_last_outputs: return the maps channels-last too, so that
            the neck and head run on that layout (our configs' speed-up).
            Only for consumers known to read strides: mobilenet_mm's necks
            and heads and the mmdet modules our configs use (their
            channels-last results are checked against NCHW in
            tests/tools/test_host_tools.py). ``False`` (default) returns standard
            contiguous NCHW maps, which any host head or op reads
            correctly: mmcv's CPU ``RoIAlign`` (Faster/Mask R-CNN) reads
            its input as contiguous NCHW whatever its strides, and heads
            that ``view`` maps fail on channels-last ones.
        drop_path_rate: stochastic depth, linear in the block index.
        norm_cfg: norm layer config (default ``dict(type='BN')``).
        act_cfg: replaces the architecture's main activation (V1/V2 ReLU6,
            V3 h-swish, V4 ReLU/GELU); rows with another activation in the
            tables (V3's ReLU rows) keep theirs.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH[, prefix=...])``
            loads our own, timm or torchvision weights (``.pth`` or
            ``.safetensors``); see :func:`load_pretrained`.
    """

    arch_settings: Dict[str, ArchSpec] = {}
    default_arch: str = ''

    def __init__(self,
                 arch: Optional[str] = None,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (4, ),
                 out_types: Optional[Sequence[str]] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 output_stride: int = 32,
                 dilation_rule: str = 'tf',
                 reduced_tail=False,
                 with_last_conv: bool = True,
                 with_cp: bool = False,
                 channels_last=False,
                 channels_last_outputs: bool = False,
                 drop_path_rate: float = 0.,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = self.default_arch if arch is None else arch
        name = type(self).__name__
        if isinstance(init_cfg, dict) and init_cfg.get(
                'type') == 'Pretrained' and not init_cfg.get('checkpoint'):
            raise ValueError(f"{name}: init_cfg=dict(type='Pretrained') "
                             'needs checkpoint=PATH (a .pth or .safetensors '
                             'file)')
        if arch not in self.arch_settings:
            raise ValueError(f'{name}: unknown arch {arch!r}; allowed: '
                             f'{sorted(self.arch_settings)}')
        if isinstance(widen_factor, bool) or not isinstance(
                widen_factor, (int, float)) or not (
                    0 < widen_factor <= MAX_WIDEN_FACTOR):
            raise ValueError(f'{name}: widen_factor must be a positive '
                             f'number, at most {MAX_WIDEN_FACTOR}, got '
                             f'{widen_factor!r}')
        if output_stride not in (8, 16, 32):
            raise ValueError(f'{name}: output_stride must be 8, 16 or 32, '
                             f'got {output_stride!r}')
        if dilation_rule not in DILATION_RULES:
            raise ValueError(f'{name}: dilation_rule must be one of '
                             f'{DILATION_RULES}, got {dilation_rule!r}')
        if not isinstance(frozen_stages, int) or not (
                -1 <= frozen_stages < NUM_STAGES):
            raise ValueError(f'{name}: frozen_stages must be -1 (none) to '
                             f'{NUM_STAGES - 1}, got {frozen_stages!r}')
        if not (isinstance(channels_last, bool) or channels_last == 'cpu'):
            raise ValueError(f'{name}: channels_last must be one of '
                             f'{CHANNELS_LAST_MODES}, got {channels_last!r}')
        if not isinstance(channels_last_outputs, bool):
            raise ValueError(f'{name}: channels_last_outputs must be True or '
                             f'False, got {channels_last_outputs!r}')
        if isinstance(drop_path_rate, bool) or not isinstance(
                drop_path_rate, (int, float)) or not 0 <= drop_path_rate < 1:
            raise ValueError(f'{name}: drop_path_rate must be in [0, 1), '
                             f'got {drop_path_rate!r}')
        self.arch = arch
        self.widen_factor = widen_factor
        self.out_indices = self._normalize_indices(out_indices)
        self.out_types = self._check_types(out_types)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.output_stride = output_stride
        self.with_cp = with_cp
        self.channels_last = channels_last
        self.channels_last_outputs = channels_last_outputs

        spec = self.arch_settings[arch]
        if reduced_tail not in (False, True) + REDUCED_TAIL_RULES:
            raise ValueError(
                f'{name}: reduced_tail must be False, True or one of '
                f'{REDUCED_TAIL_RULES}, got {reduced_tail!r}')
        if reduced_tail:
            spec = reduce_tail(spec, 'detection' if reduced_tail is True
                               else reduced_tail)
        if not with_last_conv:
            try:
                spec = drop_last_conv(spec)
            except ValueError as error:
                raise ValueError(f'{name}({arch}): with_last_conv=False: '
                                 f'{error}') from None
        self.arch_spec = spec
        self.stages, self.stage_infos = build_stages(
            spec, widen_factor, output_stride, norm_cfg, act_cfg,
            drop_path_rate, dilation_rule)
        self._check_taps(name, arch)
        self._last_stage = max(
            index + (out_type == 'expansion')
            for index, out_type in zip(self.out_indices, self.out_types))
        self._default_init()
        self._freeze_stages()

    def _normalize_indices(self, out_indices):
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        if not out_indices:
            raise ValueError(f'{type(self).__name__}: out_indices is empty')
        normalized = []
        for index in out_indices:
            if not isinstance(index, int) or not (
                    -NUM_STAGES <= index < NUM_STAGES):
                raise ValueError(
                    f'{type(self).__name__}: out_indices entry {index!r} is '
                    f'out of range; allowed: {-NUM_STAGES}..{NUM_STAGES - 1} '
                    '(stage 0 = stem, stride 2; stage 4 = stride 32)')
            normalized.append(index % NUM_STAGES)
        return tuple(normalized)

    def _check_taps(self, name, arch):
        """Check the requested taps exist; plan which block yields each:
        ``self._tap_plan[(stage, position)] = (out index, out type)``."""
        self._tap_plan = {}
        self._first_block_taps = {}  # stage -> (out index, 'first_block')
        for index, out_type in zip(self.out_indices, self.out_types):
            info = self.stage_infos[index]
            if out_type == 'expansion' and info.expansion_channels is None:
                raise ValueError(
                    f'{name}({arch}): stage {index} has no expansion tap: '
                    'the first block of the next stage has no stride-1 1x1 '
                    'expansion conv' if index < NUM_STAGES - 1 else
                    f'{name}({arch}): stage {index} is the last stage; an '
                    'expansion tap exists only for stages 0-3')
            if out_type == 'depthwise' and info.depthwise_channels is None:
                raise ValueError(
                    f'{name}({arch}): stage {index} has no depthwise tap: '
                    'its last block has no depthwise conv after an '
                    'expansion')
            if out_type == 'first_block':
                if info.first_block_channels is None:
                    raise ValueError(f'{name}({arch}): stage {index} has no '
                                     'block (only the stem conv)')
                # Read after the block has run: no block-level tap needed.
                self._first_block_taps[index] = (index, out_type)
            elif out_type != 'output':
                stage, position = ((index + 1, 0) if out_type == 'expansion'
                                   else (index, len(self.stages[index]) - 1))
                _, other = self._tap_plan.setdefault((stage, position),
                                                     (index, out_type))
                if other != out_type:
                    raise ValueError(
                        f'{name}({arch}): the {other} and {out_type} taps '
                        f'fall on the same block (stage {stage}); ask for '
                        'one of them')

    def _check_types(self, out_types):
        if out_types is None:
            return ('output', ) * len(self.out_indices)
        out_types = tuple(out_types)
        if len(out_types) != len(self.out_indices):
            raise ValueError(
                f'{type(self).__name__}: out_types has {len(out_types)} '
                f'entries, out_indices {len(self.out_indices)}')
        for out_type in out_types:
            if out_type not in OUTPUT_TYPES:
                raise ValueError(f'{type(self).__name__}: out_types entry '
                                 f'{out_type!r}; allowed: {OUTPUT_TYPES}')
        return out_types

    # -- what the backbone returns -------------------------------------
    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each returned feature map, in output order."""
        channels = {
            'output': lambda info: info.channels,
            'expansion': lambda info: info.expansion_channels,
            'depthwise': lambda info: info.depthwise_channels,
            'first_block': lambda info: info.first_block_channels,
        }
        return tuple(
            channels[kind](info)
            for info, kind in zip(self._out_infos(), self.out_types))

    @property
    def out_strides(self) -> Tuple[int, ...]:
        """Output stride of each returned feature map, in output order."""
        return tuple(info.reduction for info in self._out_infos())

    def _out_infos(self) -> Tuple[StageInfo, ...]:
        return tuple(self.stage_infos[i] for i in self.out_indices)

    # -- weights ---------------------------------------------------------
    def _default_init(self):
        """He-normal over each conv's *per-group* fan-out (the TF reference
        init, also timm's): PyTorch's fan-out of a depthwise conv counts all
        channels and would shrink its weights by the channel count."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = (module.kernel_size[0] * module.kernel_size[1] *
                           module.out_channels // module.groups)
                nn.init.normal_(module.weight, 0, (2.0 / fan_out)**0.5)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (_BatchNorm, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def init_weights(self):
        if isinstance(self.init_cfg, dict) and \
                self.init_cfg.get('type') == 'Pretrained':
            from mmengine.logging import MMLogger

            from ..weight_conversion import load_pretrained
            load_pretrained(self, self.init_cfg['checkpoint'],
                            prefix=self.init_cfg.get('prefix'),
                            logger=MMLogger.get_current_instance())
            self._is_init = True
            return
        if self.init_cfg is None:
            self._default_init()
            self._is_init = True
            return
        super().init_weights()

    # -- training behaviour ----------------------------------------------
    def _freeze_stages(self):
        for stage in self.stages[:self.frozen_stages + 1]:
            stage.eval()
            for param in stage.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def _run(self, block, x, tap=None):
        # Only blocks (never the stem conv) are asked for taps.
        call = (lambda t: block(t, tap=tap)) if tap else block
        if self.with_cp and self.training and x.requires_grad:
            return cp.checkpoint(call, x, use_reentrant=False)
        return call(x)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return a tuple with one map per ``out_indices`` entry."""
        # Only a converted input can make the maps channels-last; the
        # backbone never changes the layout of an input it was given.
        to_nchw = False
        if self.channels_last is True or (self.channels_last == 'cpu'
                                          and x.device.type == 'cpu'):
            to_nchw = not (self.channels_last_outputs
                           or x.is_contiguous(
                               memory_format=torch.channels_last))
            x = x.contiguous(memory_format=torch.channels_last)
        features = {}  # (stage index, output type) -> map
        for index, stage in enumerate(self.stages[:self._last_stage + 1]):
            for position, block in enumerate(stage):
                wanted = self._tap_plan.get((index, position))
                if wanted is None:
                    x = self._run(block, x)
                else:
                    x, features[wanted] = self._run(block, x, tap=wanted[1])
                if (position == first_block_position(index)
                        and index in self._first_block_taps):
                    features[self._first_block_taps[index]] = x
            features[(index, 'output')] = x
        outs = tuple(features[(index, kind)] for index, kind in zip(
            self.out_indices, self.out_types))
        if to_nchw:
            outs = tuple(out.contiguous() for out in outs)
        return outs


@MODELS.register_module()
class MobileNetV1(MobileNet):
    """MobileNetV1 [arXiv 1704.04861]. ``arch='1.0'`` (the only table);
    use ``widen_factor`` 0.25/0.5/0.75/1.0 for the paper's widths."""
    arch_settings = V1_ARCHS
    default_arch = '1.0'


@MODELS.register_module()
class MobileNetV2(MobileNet):
    """MobileNetV2 [arXiv 1801.04381]. ``widen_factor`` 0.35-1.4; the final
    1280 conv never narrows (paper section 5.1)."""
    arch_settings = V2_ARCHS
    default_arch = '1.0'


@MODELS.register_module()
class MobileNetV3(MobileNet):
    """MobileNetV3 [arXiv 1905.02244]: ``arch`` 'large', 'small',
    'large_minimalistic', 'small_minimalistic'."""
    arch_settings = V3_ARCHS
    default_arch = 'large'


@MODELS.register_module()
class MobileNetV4(MobileNet):
    """MobileNetV4 [arXiv 2404.10518]: ``arch`` 'conv_small', 'conv_medium',
    'conv_large', 'hybrid_medium', 'hybrid_large' (TF Model Garden / timm
    layer order)."""
    arch_settings = V4_ARCHS
    default_arch = 'conv_medium'


# Tool-level names (``--arch``): name -> (class, arch).
ARCH_NAMES = {
    'v1': (MobileNetV1, '1.0'),
    'v2': (MobileNetV2, '1.0'),
    'v3_large': (MobileNetV3, 'large'),
    'v3_small': (MobileNetV3, 'small'),
    'v3_large_minimalistic': (MobileNetV3, 'large_minimalistic'),
    'v3_small_minimalistic': (MobileNetV3, 'small_minimalistic'),
    'v4_conv_small': (MobileNetV4, 'conv_small'),
    'v4_conv_medium': (MobileNetV4, 'conv_medium'),
    'v4_conv_large': (MobileNetV4, 'conv_large'),
    'v4_hybrid_medium': (MobileNetV4, 'hybrid_medium'),
    'v4_hybrid_large': (MobileNetV4, 'hybrid_large'),
}


def build_backbone_by_name(name: str, **kwargs) -> MobileNet:
    """Build a backbone from a tool-level name such as ``'v3_large'``."""
    if name not in ARCH_NAMES:
        raise ValueError(f'unknown architecture {name!r}; allowed: '
                         f'{", ".join(ARCH_NAMES)}')
    cls, arch = ARCH_NAMES[name]
    return cls(arch=arch, **kwargs)
