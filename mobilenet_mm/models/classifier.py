"""The papers' ImageNet classifiers: a backbone plus its generation's head.

Used to reproduce the papers' parameter and MAdd counts (which include the
1000-class head) and to compare against timm/torchvision model sizes.
"""
import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer

from .backbones.mobilenet import MobileNet
from .backbones.specs import ACTIVATIONS


class MobileNetClassifier(nn.Module):
    """``backbone`` (its last stage) -> global average pool -> [1x1 conv
    hidden layer (+ BN) + act] -> dropout -> linear.

    The hidden layer follows the backbone's ``ClassifierSpec``: V3's 1280/
    1024 conv with bias and no BN, V4's 1280 conv + BN, none for V1/V2.
    """

    def __init__(self, backbone: MobileNet, num_classes: int = 1000,
                 dropout: float = 0.2):
        super().__init__()
        if backbone.out_indices != (4, ) or backbone.out_types != ('output', ):
            raise ValueError('MobileNetClassifier needs a backbone built with '
                             'out_indices=(4,) and plain outputs')
        self.backbone = backbone
        spec = backbone.arch_spec.classifier
        channels = backbone.out_channels[0]
        self.pool = nn.AdaptiveAvgPool2d(1)
        hidden = []
        if spec.hidden_channels:
            hidden_channels = spec.hidden_channels
            hidden.append(nn.Conv2d(channels, hidden_channels, 1,
                                    bias=spec.hidden_bias))
            if spec.hidden_norm:
                hidden.append(build_norm_layer(dict(type='BN'),
                                               hidden_channels)[1])
            act = ACTIVATIONS[spec.hidden_act or backbone.arch_spec.act]
            hidden.append(build_activation_layer(dict(act)))
            channels = hidden_channels
        self.hidden = nn.Sequential(*hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden(self.pool(self.backbone(x)[0]))
        return self.fc(self.dropout(x.flatten(1)))
