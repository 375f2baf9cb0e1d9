"""Paired timing: ours against a peer, in the same process and run.

Machines here are shared and noisy, so a benchmark never reports an
absolute time alone: each repetition times ours and the peer back to back
(alternating which goes first), and the result is the median of the
per-pair ratios with its inter-quartile spread.
"""
import statistics
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

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


# -- memory ------------------------------------------------------------------
def _proc_status_kib(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_cpu_peak() -> bool:
    """Return freed heap pages to the OS and restart the peak-RSS counter
    (Linux ``clear_refs`` 5), so the next peak is this call's own."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: freed pages may stay resident, peaks read low
    try:
        with open('/proc/self/clear_refs', 'w') as refs:
            refs.write('5')
        return True
    except OSError:
        return False


def peak_memory_mib(fn: Callable[[], object],
                    device: str = 'cpu') -> Optional[float]:
    """Peak memory one call of ``fn`` adds, in MiB; ``None`` where it
    cannot be measured.

    CUDA: the allocator's peak above what was allocated before. CPU: the
    process's peak resident set (``VmHWM``) above its resident set before
    the call, so everything counts: tensors, allocator caches, library
    workspaces (Python's tracemalloc would see none of torch's buffers).
    """
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    if not _reset_cpu_peak():
        return None
    base = _proc_status_kib('VmRSS')
    fn()
    peak = _proc_status_kib('VmHWM')
    if base is None or peak is None:
        return None
    return max(0, peak - base) / 1024


@dataclass
class MemoryResult:
    name: str
    ours_mib: Optional[float]
    peer_mib: Optional[float]

    def row(self) -> str:
        def fmt(value):
            return 'n/a' if value is None else f'{value:.1f}'

        ratio = ('-' if not self.ours_mib or not self.peer_mib else
                 f'{self.ours_mib / self.peer_mib:.2f}')
        return (f'| {self.name} | {fmt(self.ours_mib)} | '
                f'{fmt(self.peer_mib)} | {ratio} |')


MEMORY_HEADER = ('| case | ours peak (MiB) | peer peak (MiB) | ratio |\n'
                 '|---|---|---|---|')


# -- compute efficiency -------------------------------------------------------
def dense_conv_like(madds: int, channels: int = 128,
                    device: str = 'cpu') -> Tuple[torch.nn.Module,
                                                  torch.Tensor, int]:
    """A dense 3x3 conv (``channels`` in and out, stride 1) on a square map
    sized so that it does about ``madds`` multiply-adds: the machine's
    throughput on the best-case MobileNet op for that much work. Returns
    the conv, its input and its exact MAdds."""
    per_pixel = 9 * channels * channels
    side = max(1, round((madds / per_pixel)**0.5))
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1,
                           bias=False).to(device).eval()
    x = torch.randn(1, channels, side, side, device=device)
    return conv, x, per_pixel * side * side


@dataclass
class EfficiencyResult:
    """Backbone MAdds/s against a dense 3x3 conv of similar work, timed in
    back-to-back pairs."""
    name: str
    madds: int
    dense_madds: int
    paired: PairedResult

    def _rate(self, ratio: float) -> float:
        # (model MAdds / model time) / (dense MAdds / dense time)
        return self.madds / self.dense_madds / ratio

    def row(self) -> str:
        p = self.paired
        model_rate = self.madds / p.ours_ms / 1e6  # GMAdds/s
        dense_rate = self.dense_madds / p.peer_ms / 1e6
        return (f'| {self.name} | {self.madds / 1e6:.0f} | {p.ours_ms:.2f} |'
                f' {model_rate:.1f} | {dense_rate:.1f} | '
                f'{self._rate(p.ratio):.2f} | {self._rate(p.ratio_q3):.2f}-'
                f'{self._rate(p.ratio_q1):.2f} |')


EFFICIENCY_HEADER = (
    '| backbone | MAdds (M) | time (ms) | GMAdds/s | dense 3x3 GMAdds/s | '
    'fraction of dense (median) | fraction IQR |\n'
    '|---|---|---|---|---|---|---|')


# -- closures for the suites -------------------------------------------------
def synced(fn: Callable[[], object], device: str) -> Callable[[], object]:
    """``fn`` followed by a device synchronisation (CUDA runs async)."""
    if not device.startswith('cuda'):
        return fn

    def run():
        out = fn()
        torch.cuda.synchronize(device)
        return out

    return run


def set_backbone_layout(model: torch.nn.Module, channels_last: bool
                        ) -> torch.nn.Module:
    """Run ``model``'s backbone (and so everything after it) on NCHW or on
    channels-last inputs, for like-for-like comparisons of layouts.

    Ours switch through the backbone's ``channels_last`` argument; a peer's
    backbone gets a forward pre-hook that converts its input, which is what
    that argument does.
    """
    backbone = model.backbone
    if hasattr(backbone, 'channels_last'):  # ours
        backbone.channels_last = channels_last
    elif channels_last:
        backbone.register_forward_pre_hook(lambda module, args: (
            args[0].contiguous(memory_format=torch.channels_last),
            *args[1:]))
    return model


def random_images(batch: int, height: int, width: int,
                  seed: int = 0) -> List[torch.Tensor]:
    """uint8 ``(3, H, W)`` images, as mmcv's loader and Resize give them."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                          generator=generator) for _ in range(batch)]


def det_batch(images: List[torch.Tensor], num_classes: int = 80,
              boxes_per_image: int = 0, seed: int = 0) -> dict:
    """An mmdet data batch of ``images`` (optionally with random ground
    truth boxes), as a dataloader with ``PackDetInputs`` yields it."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for image in images:
        height, width = image.shape[-2:]
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1., 1.), pad_shape=(height, width)))
        if boxes_per_image:
            corner = torch.rand(boxes_per_image, 2, generator=generator)
            size = torch.rand(boxes_per_image, 2, generator=generator)
            x1y1 = corner * 0.7
            x2y2 = torch.minimum(x1y1 + 0.05 + size * 0.4, torch.ones(1))
            scale = torch.tensor([width, height] * 2, dtype=torch.float32)
            sample.gt_instances = InstanceData(
                bboxes=torch.cat([x1y1, x2y2], 1) * scale,
                labels=torch.randint(0, num_classes, (boxes_per_image, ),
                                     generator=generator))
        samples.append(sample)
    return dict(inputs=images, data_samples=samples)


def seg_batch(images: List[torch.Tensor]) -> dict:
    """An mmseg data batch of ``images`` (no labels), as ``PackSegInputs``
    yields it."""
    from mmseg.structures import SegDataSample
    samples = []
    for image in images:
        shape = tuple(image.shape[-2:])
        samples.append(SegDataSample(metainfo=dict(
            img_shape=shape, ori_shape=shape, pad_shape=shape)))
    return dict(inputs=images, data_samples=samples)


def seg_train_batch(images: List[torch.Tensor], num_classes: int,
                    seed: int = 0) -> dict:
    """An mmseg training batch: random label maps of ``num_classes``."""
    from mmengine.structures import PixelData
    data = seg_batch(images)
    generator = torch.Generator().manual_seed(seed)
    for image, sample in zip(images, data['data_samples']):
        labels = torch.randint(0, num_classes, (1, *image.shape[-2:]),
                               generator=generator)
        sample.gt_sem_seg = PixelData(data=labels)
    return data


def predict_step_fn(model: torch.nn.Module,
                    data: dict) -> Callable[[], object]:
    """Pre-processing + prediction (boxes after NMS, or label maps) under
    ``no_grad``, as mmengine's test loop runs it."""
    model.eval()

    def run():
        with torch.no_grad():
            return model.test_step(data)

    return run


def train_step_fn(model: torch.nn.Module, optim_wrapper,
                  data: dict) -> Callable[[], object]:
    """One training iteration: pre-processing, forward, loss, backward,
    optimizer step (mmengine's ``train_step``)."""
    model.train()

    def run():
        return model.train_step(data, optim_wrapper)

    return run


# -- the CPU ------------------------------------------------------------------
# /proc/cpuinfo flags that decide INT8 speed: AVX2 (8-bit dot products in
# three instructions), AVX-512, VNNI (one instruction, either width) and
# AMX's INT8 tiles.
ISA_FLAGS = (('AVX2', ('avx2', )), ('AVX-512', ('avx512f', )),
             ('VNNI', ('avx512_vnni', 'avx_vnni')),
             ('AMX-INT8', ('amx_int8', )))


def cpu_flags() -> set:
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def vector_isa(flags: Optional[set] = None) -> str:
    """One line: which of AVX2, AVX-512, VNNI and AMX-INT8 the CPU has
    (``unknown`` without ``/proc/cpuinfo``)."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return 'CPU vector ISA: unknown (no /proc/cpuinfo flags)'
    parts = []
    for name, names in ISA_FLAGS:
        found = [f for f in names if f in flags]
        parts.append(f'{name} {"yes" if found else "no"}'
                     + (f' ({", ".join(found)})' if len(names) > 1 and found
                        else ''))
    return 'CPU vector ISA: ' + ', '.join(parts)
