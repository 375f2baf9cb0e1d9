"""Test-only hook (imported through ``custom_imports`` by
tests/tools/test_train_test_tools.py): saves the state a run starts training
from, after any resume, so a test can compare it with the checkpoint."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class MobilenetMMStateProbeHook(Hook):
    """Write iteration, optimizer and scheduler state at ``before_train``."""

    def __init__(self, out_file: str):
        self.out_file = out_file

    def before_train(self, runner) -> None:
        torch.save(
            dict(
                iter=runner.iter,
                optimizer=runner.optim_wrapper.state_dict(),
                param_schedulers=[
                    s.state_dict() for s in runner.param_schedulers
                ]), self.out_file)
