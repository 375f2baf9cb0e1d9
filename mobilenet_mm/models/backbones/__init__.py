from .mobilenet import (ARCH_NAMES, MobileNet, MobileNetV1, MobileNetV2,
                        MobileNetV3, MobileNetV4, build_backbone_by_name)

__all__ = [
    'ARCH_NAMES', 'MobileNet', 'MobileNetV1', 'MobileNetV2', 'MobileNetV3',
    'MobileNetV4', 'build_backbone_by_name'
]
