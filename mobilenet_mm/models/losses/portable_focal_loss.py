"""Focal loss that trains on a GPU with a CPU-ops mmcv.

mmdet's ``FocalLoss`` calls ``mmcv.ops.sigmoid_focal_loss`` (a CUDA kernel)
whenever the prediction is a CUDA tensor and the target is given as class
indices; with the mmcv that ``make setup`` builds (CPU ops) that kernel
does not exist and RetinaNet training on a GPU stops at its first loss.
"""
import torch.nn.functional as F
from mmdet.models.losses import FocalLoss

from ...registry import MODELS
from ..utils.mmcv_kernels import mmcv_has_kernel


@MODELS.register_module()
class PortableFocalLoss(FocalLoss):
    """mmdet's ``FocalLoss`` (same arguments); where mmcv has no
    ``sigmoid_focal_loss`` kernel for the prediction's device, the target
    goes in one-hot, which makes mmdet take its pure-PyTorch
    ``py_sigmoid_focal_loss``: the path mmdet itself takes on the CPU."""

    def forward(self, pred, target, weight=None, avg_factor=None,
                reduction_override=None):
        if (pred.is_cuda and not self.activated
                and pred.dim() != target.dim()
                and not mmcv_has_kernel('sigmoid_focal_loss', pred.device)):
            num_classes = pred.size(1)
            # Index num_classes is background: its one-hot column is cut.
            target = F.one_hot(target, num_classes + 1)[:, :num_classes]
        return super().forward(pred, target, weight, avg_factor,
                               reduction_override)
