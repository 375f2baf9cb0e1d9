"""The timm / torchvision model each of our architectures is checked
against: (library, model name, BatchNorm eps the reference uses)."""
REFERENCE_MODELS = {
    'v1': ('timm', 'mobilenetv1_100', 1e-5),
    'v2': ('torchvision', 'mobilenet_v2', 1e-5),
    'v3_large': ('torchvision', 'mobilenet_v3_large', 1e-3),
    'v3_small': ('torchvision', 'mobilenet_v3_small', 1e-3),
    'v3_large_minimalistic': ('timm', 'tf_mobilenetv3_large_minimal_100',
                              1e-3),
    'v3_small_minimalistic': ('timm', 'tf_mobilenetv3_small_minimal_100',
                              1e-3),
    'v4_conv_small': ('timm', 'mobilenetv4_conv_small', 1e-5),
    'v4_conv_medium': ('timm', 'mobilenetv4_conv_medium', 1e-5),
    'v4_conv_large': ('timm', 'mobilenetv4_conv_large', 1e-5),
    'v4_hybrid_medium': ('timm', 'mobilenetv4_hybrid_medium', 1e-5),
    'v4_hybrid_large': ('timm', 'mobilenetv4_hybrid_large', 1e-5),
}


def reference_kwargs(name: str) -> dict:
    """timm's ``tf_*`` ports pad like TF ("SAME", asymmetric at stride 2);
    our convs pad symmetrically like torchvision and timm's own models, so
    comparisons build those ports with symmetric padding."""
    return dict(pad_type='') if name.startswith('tf_') else {}


def reference_features(library: str, model, x):
    """The last feature map of a reference classifier (before pooling)."""
    if library == 'torchvision':
        return model.features(x)
    return model.forward_features(x)
