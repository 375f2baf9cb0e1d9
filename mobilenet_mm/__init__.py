"""MobileNet v1-v4 backbones, SSDLite and LR-ASPP heads for OpenMMLab.

Importing the package registers its modules under the registry scope
``mobilenet_mm``; configs name them ``type='mobilenet_mm.<Name>'``.
"""
from .version import __version__
from . import models  # noqa: F401,E402  (registers the modules)
from . import datasets, engine, utils  # noqa: F401,E402
from . import deploy  # noqa: F401,E402  (registers FuseConvBNHook)

__all__ = ['__version__']
