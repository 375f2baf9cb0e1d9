"""Stop (or skip the step) when the training loss is NaN or infinite.

mmengine trains on: a NaN loss gives NaN gradients, the optimizer writes
NaN into every weight, and each later checkpoint holds a dead model while
the log only shows ``loss: nan``. :class:`NanGuardHook` checks the loss
of every iteration *before* its backward pass and either

* ``action='stop'`` (what ``tools/train.py`` adds when a config has no
  guard): raises :class:`NonFiniteLossError`, one line naming the iteration
  and the loss terms. The bad step never reaches the weights and no
  checkpoint is written after it, so the last checkpoint is the last good
  state (``--resume`` continues from it);
* ``action='skip'``: drops that iteration's update (no backward, no
  optimizer step; the learning-rate schedule still advances) with a
  warning, and stops as above after ``max_consecutive_skips`` bad
  iterations in a row.

How: at ``before_train`` the hook wraps ``update_params`` of the runner's
optimizer wrapper(s) (the one place every ``train_step`` hands the loss
to) and ``parse_losses`` of the model (to name the loss terms); both are
restored at ``after_train``. In distributed training the processes agree
(an all-reduce of the "bad" flag), so they all skip or all stop: a process
that left out the backward pass alone would hang the others' gradient
all-reduce.
"""
import math
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from ..errors import NonFiniteLossError
from ..registry import HOOKS

ACTIONS = ('stop', 'skip')


def _describe(loss: torch.Tensor, log_vars: Optional[Dict]) -> str:
    """``loss=nan (loss_cls=nan, loss_bbox=0.4123)``."""

    def fmt(value) -> str:
        if isinstance(value, torch.Tensor):
            value = value.detach().float().mean().item()
        return f'{value:.4g}' if math.isfinite(value) else str(value)

    text = f'loss={fmt(loss)}'
    if log_vars:
        terms = [f'{k}={fmt(v)}' for k, v in log_vars.items() if k != 'loss']
        if terms:
            text += f' ({", ".join(terms)})'
    return text


@HOOKS.register_module()
class NanGuardHook(Hook):
    """Check that the loss is finite before each optimizer step.

    Registered as ``mobilenet_mm.NanGuardHook``::

        custom_hooks = [dict(type='mobilenet_mm.NanGuardHook',
                             action='skip', max_consecutive_skips=10)]

    Args:
        action: ``'stop'`` raises :class:`NonFiniteLossError` naming the
            iteration; ``'skip'`` leaves the weights and optimizer state of
            that iteration unchanged and goes on. A skipped iteration also
            drops gradients accumulated since the last step
            (``accumulative_counts > 1``).
        max_consecutive_skips: with ``'skip'``, stop once this many
            iterations in a row had a non-finite loss (the model or the
            data is broken, not one batch).
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'stop', max_consecutive_skips: int = 10):
        if action not in ACTIONS:
            raise ValueError(f'NanGuardHook: action must be one of {ACTIONS},'
                             f' got {action!r}')
        if not isinstance(max_consecutive_skips,
                          int) or max_consecutive_skips < 1:
            raise ValueError('NanGuardHook: max_consecutive_skips must be a '
                             f'positive int, got {max_consecutive_skips!r}')
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped = 0  # iterations skipped in this run
        self._consecutive = 0
        self._log_vars: Optional[Dict] = None
        self._patched = []

    # -- installing the guard -------------------------------------------
    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        wrappers = (list(runner.optim_wrapper.values()) if isinstance(
            runner.optim_wrapper, OptimWrapperDict) else
                    [runner.optim_wrapper])
        for wrapper in wrappers:
            self._patch(wrapper, 'update_params',
                        self._guarded_update(runner, wrapper))
        if hasattr(model, 'parse_losses'):
            self._patch(model, 'parse_losses',
                        self._recording_parse(model.parse_losses))

    def after_train(self, runner) -> None:
        for obj, name in self._patched:
            obj.__dict__.pop(name, None)  # the class's method again
        self._patched = []

    def _patch(self, obj, name, replacement) -> None:
        setattr(obj, name, replacement)
        self._patched.append((obj, name))

    def _recording_parse(self, parse_losses):

        def parse(losses):
            loss, log_vars = parse_losses(losses)
            self._log_vars = log_vars
            return loss, log_vars

        return parse

    def _guarded_update(self, runner, wrapper):
        update_params = wrapper.update_params  # the bound original

        def guarded(loss, *args, **kwargs):
            if self._finite_everywhere(loss):
                self._consecutive = 0
                return update_params(loss, *args, **kwargs)
            self._on_bad_loss(runner, wrapper, loss)

        return guarded

    # -- checking ---------------------------------------------------------
    @staticmethod
    def _finite_everywhere(loss: torch.Tensor) -> bool:
        bad = torch.tensor(
            0. if bool(torch.isfinite(loss.detach()).all()) else 1.,
            device=loss.device)
        all_reduce(bad, op='max')  # a no-op outside distributed training
        return bad.item() == 0

    def _on_bad_loss(self, runner, wrapper, loss: torch.Tensor) -> None:
        iteration = runner.iter + 1  # runner.iter counts finished ones
        local = bool(torch.isfinite(loss.detach()).all())
        what = ('another process had a non-finite loss' if local else
                f'non-finite loss {_describe(loss, self._log_vars)}')
        where = f'iteration {iteration}'
        if get_rank() > 0:
            where += f' (rank {get_rank()})'
        self._log_vars = None
        if self.action == 'skip':
            self._consecutive += 1
            if self._consecutive <= self.max_consecutive_skips:
                self.skipped += 1
                # No backward, no step: this batch changes nothing. Count
                # the iteration, as backward would, so gradient
                # accumulation keeps its boundaries.
                wrapper.zero_grad()
                wrapper._inner_count += 1
                print_log(
                    f'{where}: {what}; the step is skipped '
                    f'({self._consecutive} in a row, at most '
                    f'{self.max_consecutive_skips})',
                    logger='current',
                    level=30)
                return
            raise NonFiniteLossError(
                f'{where}: {what}; {self._consecutive} iterations in a row '
                f'(max_consecutive_skips={self.max_consecutive_skips}), '
                f'training stopped; {_last_checkpoint(runner)}')
        raise NonFiniteLossError(
            f'{where}: {what}; training stopped before this step changed '
            f'the weights; {_last_checkpoint(runner)} '
            "(NanGuardHook action='skip' skips such steps)")


def _last_checkpoint(runner) -> str:
    from ..utils.checkpoint import find_resume_checkpoint
    found = find_resume_checkpoint(runner.work_dir)
    if found is None:
        return f'no checkpoint was written to {runner.work_dir} yet'
    return f'last good checkpoint: {found}'
