"""Segmentation decode heads (mmseg ``BaseDecodeHead`` subclasses)."""
from .lraspp_head import LRASPPHead, RASPPHead

__all__ = ['LRASPPHead', 'RASPPHead']
