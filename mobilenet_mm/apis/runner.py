"""Building the runner for the tools: a checkpoint given on the command
line is read safely and checked against the model before anything runs."""
import warnings
from typing import Callable, Optional

from ..datasets.path_checks import is_remote
from ..utils.checkpoint import check_state_dict_matches, read_state_dict
from .launch import has_accelerator, init_cpu_distributed

__all__ = ['build_runner']


def build_runner(cfg, checkpoint: Optional[str] = None,
                 what: str = 'checkpoint', check_shapes: bool = True,
                 check_state: Optional[Callable[[dict], None]] = None):
    """Build the runner from ``cfg``; with ``checkpoint``, first load it
    safely (and pass its state dict to ``check_state``) and, once the model
    exists, check that it fits.

    Warnings raised while building are held back and shown only when the
    checks pass, so a refused checkpoint really ends in one line.
    """
    # URLs (http://, open-mmlab://...) are left to mmengine's loaders.
    check = bool(checkpoint) and not is_remote(checkpoint)
    state = read_state_dict(checkpoint, what) if check else None
    if state is not None and check_state is not None:
        check_state(state)
    if cfg.get('launcher', 'none') != 'none' and not has_accelerator():
        init_cpu_distributed(cfg)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    with warnings.catch_warnings(record=True) as caught:
        runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else
                  RUNNERS.build(cfg))
        if state is not None:
            check_state_dict_matches(runner.model, state, checkpoint, what,
                                     check_shapes)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return runner
