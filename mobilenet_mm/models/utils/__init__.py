"""Model helpers: mmcv ops on devices this mmcv build has no kernel for."""
from .mmcv_kernels import mmcv_has_kernel
from .nms import AnyDeviceNMSMixin, batched_nms, torchvision_nms

__all__ = ['AnyDeviceNMSMixin', 'batched_nms', 'mmcv_has_kernel',
           'torchvision_nms']
