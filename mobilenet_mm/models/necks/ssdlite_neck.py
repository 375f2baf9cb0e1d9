"""SSDLite's extra feature layers ([V2] section 6.2, [V3] section 6.2).

The backbone gives two maps (output stride 16 and 32); four extra layers
halve the resolution each, so the head sees six maps (20, 10, 5, 3, 2, 1 at
320x320). Each extra layer is "1x1 to half width -> 3x3 depthwise stride 2
-> 1x1 to full width", every conv followed by BN and ReLU6, as TF's
``multi_resolution_feature_maps(use_depthwise=True, insert_1x1_conv=True)``
and torchvision's ``_extra_block`` build it.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, normal_init, trunc_normal_init

from ...registry import MODELS

# TF's batch norm decay 0.97 is PyTorch momentum 0.03 (TF release configs
# and torchvision's ssdlite320).
SSDLITE_NORM = dict(type='BN', eps=1e-3, momentum=0.03)


def init_convs_normal(module: nn.Module, std: float,
                      truncated: bool = False) -> None:
    """Every conv of ``module``: (truncated) normal weights, zero bias.

    SSDLite's modules call it from ``init_weights`` after their
    ``ConvModule`` children have run their own (Kaiming) default, which
    mmengine runs after a parent's ``init_cfg`` and which would overwrite it.
    """
    for m in module.modules():
        if not isinstance(m, nn.Conv2d):
            continue
        if truncated:
            # TF truncates at two standard deviations; mmengine's bounds
            # are absolute values.
            trunc_normal_init(m, std=std, a=-2 * std, b=2 * std, bias=0.)
        else:
            normal_init(m, std=std, bias=0.)


@MODELS.register_module()
class SSDLiteNeck(BaseModule):
    """Two backbone maps in, those two plus four extra maps out.

    Registered as ``mobilenet_mm.SSDLiteNeck`` (mmdet has no class of that
    name; configs still name it with our scope so nothing can shadow it).

    Args:
        in_channels: channels of the two backbone maps, in order (a
            ``MobileNet`` backbone's ``out_channels``).
        extra_channels: output channels of the extra layers; the 1x1 before
            each depthwise conv has half of them.
        norm_cfg / act_cfg: of every conv (BN eps 1e-3 momentum 0.03,
            ReLU6 as in the TF release).
        init_std: std of the truncated normal initialisation of every conv
            (0.03 in the TF release).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (672, 960),
                 extra_channels: Sequence[int] = (512, 256, 256, 128),
                 norm_cfg: Optional[dict] = SSDLITE_NORM,
                 act_cfg: Optional[dict] = dict(type='ReLU6'),
                 init_std: float = 0.03):
        super().__init__(init_cfg=None)
        in_channels = tuple(in_channels)
        if len(in_channels) != 2:
            raise ValueError(
                'SSDLiteNeck: in_channels must list the two backbone maps '
                f'(stride 16 and 32), got {in_channels!r}')
        self.in_channels = in_channels
        self.extra_channels = tuple(extra_channels)
        self.extra_layers = nn.ModuleList()
        channels = in_channels[-1]
        for out in self.extra_channels:
            if out % 2:
                raise ValueError('SSDLiteNeck: extra_channels must be even '
                                 f'(the 1x1 has half of them), got {out}')
            mid = out // 2
            self.extra_layers.append(nn.Sequential(
                ConvModule(channels, mid, 1, norm_cfg=norm_cfg,
                           act_cfg=act_cfg),
                # Padding 1 makes every size halve rounding up (10, 5, 3, 2,
                # 1), as TF's 'SAME' padding does.
                ConvModule(mid, mid, 3, stride=2, padding=1, groups=mid,
                           norm_cfg=norm_cfg, act_cfg=act_cfg),
                ConvModule(mid, out, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)))
            channels = out
        self.init_std = init_std

    def init_weights(self) -> None:
        """Truncated normal convs, BN (1, 0); see :func:`init_convs_normal`.
        """
        if self.is_init:
            return
        super().init_weights()
        init_convs_normal(self, self.init_std, truncated=True)

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of the six maps the neck returns."""
        return self.in_channels + self.extra_channels

    def forward(self, inputs: Sequence[torch.Tensor]
                ) -> Tuple[torch.Tensor, ...]:
        """Return the two input maps followed by the extra maps."""
        got = tuple(x.shape[1] for x in inputs)
        if got != self.in_channels:
            # A config whose in_channels do not match the backbone would
            # otherwise fail deep inside a conv with a shape message.
            raise ValueError(
                f'SSDLiteNeck: backbone gave maps with {got} channels, '
                f'in_channels is {self.in_channels}; set in_channels to the '
                "backbone's out_channels")
        outs = list(inputs)
        x = inputs[-1]
        for layer in self.extra_layers:
            x = layer(x)
            outs.append(x)
        return tuple(outs)
