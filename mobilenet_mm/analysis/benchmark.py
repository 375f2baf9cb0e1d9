"""Paired timing: ours against a peer, in the same process and run.

Machines here are shared and noisy, so a benchmark never reports an
absolute time alone: each repetition times ours and the peer back to back
(alternating which goes first), and the result is the median of the
per-pair ratios with its inter-quartile spread.
"""
import statistics
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch


@dataclass
class PairedResult:
    name: str
    ours_ms: float  # medians, for context only
    peer_ms: float
    ratio: float  # median of ours/peer over repetitions
    ratio_q1: float
    ratio_q3: float
    target: Optional[float] = None

    @property
    def meets_target(self) -> Optional[bool]:
        return None if self.target is None else self.ratio <= self.target

    def row(self) -> str:
        status = {None: '-', True: 'met', False: 'MISSED'}[self.meets_target]
        target = '-' if self.target is None else f'<= {self.target:.2f}'
        return (f'| {self.name} | {self.ours_ms:.2f} | {self.peer_ms:.2f} | '
                f'{self.ratio:.3f} | {self.ratio_q1:.3f}-{self.ratio_q3:.3f}'
                f' | {target} | {status} |')


TABLE_HEADER = ('| case | ours (ms) | peer (ms) | ratio ours/peer (median) | '
                'ratio IQR | target | status |\n|---|---|---|---|---|---|---|')


def _time_once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def paired_benchmark(name: str, ours: Callable[[], object],
                     peer: Callable[[], object], repeats: int = 20,
                     warmup: int = 3,
                     target: Optional[float] = None) -> PairedResult:
    """Time ``ours`` and ``peer`` alternately; report the ratio's median."""
    for _ in range(warmup):
        ours()
        peer()
    ours_times: List[float] = []
    peer_times: List[float] = []
    for index in range(repeats):
        if index % 2:
            peer_times.append(_time_once(peer))
            ours_times.append(_time_once(ours))
        else:
            ours_times.append(_time_once(ours))
            peer_times.append(_time_once(peer))
    ratios = sorted(o / p for o, p in zip(ours_times, peer_times))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else \
        [ratios[0]] * 3
    return PairedResult(name, statistics.median(ours_times),
                        statistics.median(peer_times),
                        statistics.median(ratios), quartiles[0], quartiles[2],
                        target)


def inference(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """A no-grad eval-mode forward of ``model`` on ``x``."""
    model.eval()

    def run():
        with torch.inference_mode():
            return model(x)

    return run
