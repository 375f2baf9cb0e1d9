"""Checks that keep ``tools/test.py`` from reporting garbage as a result.

* :func:`check_finite_state`: a checkpoint whose weights hold NaN or inf
  (a training run that diverged, a corrupted file) is refused before
  testing; a single NaN tensor can otherwise still give a normal-looking
  mAP from the parts of the model that are intact.
* :func:`check_metrics`: an evaluation that returns no metrics (mmdet only
  logs "The testing results of the whole dataset is empty") or a NaN/inf
  metric is an error, so the tool exits non-zero.
"""
import math
from numbers import Number
from typing import Mapping, Optional

import torch

from ..errors import CLIError


def check_finite_state(state: Mapping, path: str,
                       what: str = 'checkpoint') -> None:
    """Raise a CLIError naming the first tensor of ``state`` that holds a
    NaN or an infinite value."""
    bad = []
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and not bool(torch.isfinite(value).all()):
            bad.append(key)
    if bad:
        raise CLIError(
            f'{what} {path} holds NaN or infinite values in {len(bad)} of '
            f'{len(state)} tensors (first: {bad[0]}); its results would be '
            'meaningless (was training diverging?)')


def check_metrics(metrics: Optional[Mapping], where: str) -> None:
    """Raise a CLIError when ``metrics`` is empty or a number in it is not
    finite."""
    if not metrics:
        raise CLIError(f'{where} gave no metrics (the evaluator found no '
                       'results; see its log above)')
    bad = [
        f'{key}={value}' for key, value in metrics.items()
        if isinstance(value, Number) and not math.isfinite(float(value))
    ]
    if bad:
        raise CLIError(f'{where} gave non-finite metrics: {", ".join(bad)}')
