"""Distributed data parallel on the CPU (gloo), SyncBN included.

torch's ``SyncBatchNorm`` has no CPU kernels and DDP refuses it on CPU
modules; mmengine's DDP wrapper passes ``device_ids``, which DDP takes for
GPU modules only. :class:`CPUDistributedDataParallel` fixes both, so that
``tools/dist_train.sh CONFIG N`` trains SyncBN configs on machines without
a GPU (``mobilenet_mm.apis.launch.init_cpu_distributed`` selects it).
"""
import torch
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient is summed the same way (every
    process's loss depends on every process's share of the statistics)."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        tensor = tensor.clone()
        torch.distributed.all_reduce(tensor, group=group)
        return tensor

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        torch.distributed.all_reduce(grad, group=ctx.group)
        return grad, None


class CPUSyncBatchNorm(_BatchNorm):
    """Synchronized batch norm that runs on the CPU (gloo).

    Same statistics as ``torch.nn.SyncBatchNorm``: mean and variance over
    the samples of all processes, computed in two passes (sum and count,
    then the sum of squared deviations), each one all-reduce that autograd
    follows. Outside distributed training (or in eval mode) it is plain
    batch norm. Built by :func:`convert_sync_batchnorm_for_cpu`.
    """

    def __init__(self, *args, process_group=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(
                f'expected at least 2D input (got {input.dim()}D input)')

    def forward(self, input):
        dist = torch.distributed
        if not (self.training and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0] + list(range(2, input.dim()))
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = input.new_tensor([input.numel() // input.size(1)])
        stats = _AllReduceSum.apply(
            torch.cat([input.sum(dims), count]), self.process_group)
        total = stats[-1].detach()
        if total <= 1:
            raise ValueError('Expected more than 1 value per channel when '
                             f'training, got {int(total)} over all processes')
        mean = stats[:-1] / total
        centered = input - mean.view(shape)
        var = _AllReduceSum.apply(centered.pow(2).sum(dims),
                                  self.process_group) / total
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked)
                          if self.momentum is None else self.momentum)
                self.running_mean.mul_(1 - factor).add_(factor * mean)
                self.running_var.mul_(1 - factor).add_(
                    factor * var * total / (total - 1))
        return out


def _sync_bn_types() -> tuple:
    types = [torch.nn.SyncBatchNorm]
    try:  # mmcv's SyncBN ('MMSyncBN') needs its CUDA ops as well
        from mmcv.ops import SyncBatchNorm as MMCVSyncBatchNorm
        types.append(MMCVSyncBatchNorm)
    except ImportError:
        pass
    return tuple(types)


def convert_sync_batchnorm_for_cpu(module: torch.nn.Module) -> torch.nn.Module:
    """Replace torch's and mmcv's SyncBatchNorm layers of ``module`` with
    :class:`CPUSyncBatchNorm`, keeping their parameters (the same objects)
    and buffers. Returns ``module`` or, if it is itself such a layer, its
    replacement."""
    if isinstance(module, _sync_bn_types()):
        new = CPUSyncBatchNorm(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
            process_group=getattr(module, 'process_group', None) or getattr(
                module, 'group', None))
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean = module.running_mean
            new.running_var = module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        new_child = convert_sync_batchnorm_for_cpu(child)
        if new_child is not child:
            setattr(module, name, new_child)
    return module


@MODEL_WRAPPERS.register_module(force=True)
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for models on the CPU: no ``device_ids``
    (DDP takes them for GPU modules only) and SyncBN layers replaced by
    :class:`CPUSyncBatchNorm` first (DDP refuses torch's SyncBatchNorm on
    CPU modules). :func:`init_cpu_distributed` selects it."""

    def __init__(self, module, **kwargs):
        kwargs['device_ids'] = None  # mmengine passes [LOCAL_RANK]
        kwargs.pop('output_device', None)
        super().__init__(
            module=convert_sync_batchnorm_for_cpu(module), **kwargs)
