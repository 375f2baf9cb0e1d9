"""Loading checkpoint files without executing code from them."""
import os

import torch


def load_checkpoint_file(path: str, map_location='cpu') -> dict:
    """Load a checkpoint (``.pth``/``.pt``/``.bin`` via safe unpickling, or
    ``.safetensors``) and return its top-level dict.

    Raises ``FileNotFoundError`` naming the path when it does not exist.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path, device=str(map_location))
    return torch.load(path, map_location=map_location, weights_only=True)
