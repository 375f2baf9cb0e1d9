"""RetinaNet head with separable convs, as in the MobileNetV4 paper.

[V4] section 7 evaluates its backbones in RetinaNet at 384x384 with a 256-d
FPN (P3-P7) and "a 4-layer 256-d separable head". TF Model Garden's mobile
RetinaNet builds it so (``head: num_convs: 4, use_separable_conv: true``):
the class and box towers are ``num_convs`` separable 3x3 convs (+ BN + act)
shared over the levels, and the two predictors are separable 3x3 convs too.
mmdet's ``RetinaHead`` has full 3x3 convs throughout; its 3x3 class
predictor alone would be 1.7M parameters and 5 GMAdds at 384 px, more than
the paper's whole head. Its NMS runs on any device
(:class:`~mobilenet_mm.models.utils.AnyDeviceNMSMixin`).
"""
import math

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads import RetinaHead

from ...registry import MODELS
from ..necks.separable_conv import SeparableConv2d
from ..utils import AnyDeviceNMSMixin


@MODELS.register_module()
class SepRetinaHead(AnyDeviceNMSMixin, RetinaHead):
    """``RetinaHead`` whose tower convs and predictors are separable.

    Registered as ``mobilenet_mm.SepRetinaHead``. Takes ``RetinaHead``'s
    arguments; ``conv_cfg`` is fixed to :class:`SeparableConv2d`, and
    ``norm_cfg``/``act_cfg`` apply to the tower convs (TF: BN + ReLU6).

    Args:
        prior_prob: initial foreground probability of the classifier
            (RetinaNet's 0.01).
        init_std: std of the normal initialisation of every conv.
    """

    def __init__(self, *args, act_cfg: dict = dict(type='ReLU6'),
                 prior_prob: float = 0.01, init_std: float = 0.01,
                 **kwargs):
        if kwargs.get('conv_cfg') is not None:
            raise ValueError('SepRetinaHead: conv_cfg is fixed (separable '
                             'convs); use mmdet RetinaHead for others')
        self.act_cfg = act_cfg
        self.prior_prob = prior_prob
        self.init_std = init_std
        # init_cfg=None: init_weights below does it (see there).
        kwargs['init_cfg'] = None
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        """Separable towers and predictors (replaces RetinaHead's)."""
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        conv_cfg = dict(type=SeparableConv2d)
        channels = self.in_channels
        for _ in range(self.stacked_convs):
            for tower in (self.cls_convs, self.reg_convs):
                tower.append(ConvModule(
                    channels, self.feat_channels, 3, padding=1,
                    conv_cfg=conv_cfg, norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg))
            channels = self.feat_channels
        self.retina_cls = SeparableConv2d(
            channels, self.num_base_priors * self.cls_out_channels, 3,
            padding=1)
        self.retina_reg = SeparableConv2d(
            channels, self.num_base_priors * self.bbox_coder.encode_size, 3,
            padding=1)

    def init_weights(self) -> None:
        """Normal(0, init_std) convs, zero biases except the classifier's
        (``-log((1 - p) / p)``), BN (1, 0).

        Set here rather than by ``init_cfg``: mmengine initialises the
        ``ConvModule`` children after the parent's ``init_cfg`` (their
        Kaiming default would overwrite it), and mmengine's ``Normal``
        initialiser cannot take a two-conv module as an override target.
        """
        if self.is_init:
            return
        super().init_weights()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=self.init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.retina_cls.pointwise.bias,
                          -math.log((1 - self.prior_prob) / self.prior_prob))
