"""Losses: mmdet's focal loss, trainable on a GPU with a CPU-ops mmcv."""
from .portable_focal_loss import PortableFocalLoss

__all__ = ['PortableFocalLoss']
