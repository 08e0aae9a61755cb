"""Data-parallel training of a GAN: Lightning's DDP strategy with the generator and the discriminator
each in its own ``DistributedDataParallel``.

Lightning's DDP wraps the whole LightningModule in one DDP module. With the two networks updated
by separate backward passes, every backward then leaves one network without gradients: plain
``ddp`` stops on the unused parameters, and ``ddp_find_unused_parameters_true`` searches the
autograd graph after every backward and all-reduces the buckets of both networks each time (the
idle network's as zeros), about twice the traffic of what the updates need. Here each network
has its own wrapper, so a critic update all-reduces the critic's gradients once and a generator
update the generator's once, overlapped with the backward pass as DDP does, with no graph search:

- a critic update calls the critic's wrapper (real, fake and, for the gradient penalty, the
  interpolates) and the generator itself under ``no_grad``;
- a generator update calls the generator's wrapper and the critic itself, whose parameters are
  frozen for it.

Every rank starts from rank 0's weights and buffers (DDP broadcasts them when it wraps) and applies
the same averaged gradients, so the weights stay equal; the normalizations' state (SN's ``u``,
SAN's refresh) follows from the weights and from noise drawn alike on every rank (``module.GAN.rng``),
and batch normalization is synchronized across ranks (``sync_batchnorm``), so each rank normalizes
with the statistics of the global batch, as one process does. ``train.batch_size`` is the global
batch; each rank takes ``train.batch_size / world size`` of it.
"""

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.overrides.distributed import _register_ddp_comm_hook
from pytorch_lightning.strategies import DDPStrategy
from torch import nn
from torch.distributed.nn.functional import all_gather
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from .errors import ConfigError
from .models import NETWORKS


def rank_share(setting: str, global_size: int, world_size: int) -> int:
    """Each rank's equal share of a global count (``train.batch_size`` and ``train.g_batch_size`` are global batches:
    all ranks together); ``setting`` names it in the refusal of a count that does not split evenly."""
    if global_size % world_size:
        raise ConfigError(f"{setting}={global_size} does not split evenly over the {world_size} ranks (trainer.devices "
                          f"x trainer.num_nodes); it is the global batch, so use a multiple of {world_size}.")
    return global_size // world_size


class Ranks:
    """This process's place among the ranks and the two collectives a loss may need over the global batch.

    ``mean`` averages per-rank means of equal shares (the global batch's mean); ``gather`` concatenates every rank's
    rows with the gradient flowing back to each rank's own, so that a term over pairs of samples sees the global
    batch as one process does (DDP's gradient average undoes the sum the gather's backward makes over the ranks'
    identical terms). In one process both return their input."""

    def __init__(self, rank: int = 0, world_size: int = 1):
        self.rank, self.world_size = rank, world_size

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return values
        # the all-reduce alone: Lightning's strategy.reduce puts a barrier before it, and an NCCL barrier waits on the
        # host for the device's queued work (BEGAN's k_t takes this mean at every generator update); a sum, which
        # every backend has (gloo has no average), divided here alike on every rank
        total = values.detach().clone()
        dist.all_reduce(total)
        return total / self.world_size

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.cat(all_gather(rows)) if self.world_size > 1 else rows

    def own_rows(self, draw: torch.Tensor) -> torch.Tensor:
        """This rank's rows ``rank::world_size`` of a draw made for all ranks' samples together."""
        return draw[self.rank :: self.world_size]


class _SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over all ranks; the gradient of each rank's input is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        total = gradient.clone()
        dist.all_reduce(total)
        return total


class SyncBatchNorm(_BatchNorm):
    """Batch normalization with the statistics of all ranks' samples together (ranks hold equal shares).

    torch's ``nn.SyncBatchNorm`` runs on GPUs only (its kernels, and DDP refuses it on the CPU), and
    the tests here have CPUs; this layer does the same on any device with one all-reduce of the
    per-rank means, variances and squared means (global variance = mean of the ranks' variances +
    variance of their means). Outside training, or in a single process, it is plain batch
    normalization.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() < 2:
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        variance, mean = torch.var_mean(input, dims, correction=0)
        world = dist.get_world_size()
        mean, variance, mean_square = _SumOverRanks.apply(torch.stack([mean, variance, mean * mean])) / world
        variance = variance + (mean_square - mean * mean)
        if self.track_running_stats:
            count = input.numel() // input.shape[1] * world
            self._update_running_statistics(mean.detach(), variance.detach() * count / (count - 1))
        shape = (1, -1) + (1,) * (input.dim() - 2)
        output = (input - mean.view(shape)) * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output

    @torch.no_grad()
    def _update_running_statistics(self, mean: torch.Tensor, unbiased_variance: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        # a cumulative average without momentum: 1 / count, computed on the device (no host transfer)
        factor = self.num_batches_tracked.to(mean.dtype).reciprocal() if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased_variance, factor)


def convert_batchnorm_(network: nn.Module) -> nn.Module:
    """Replace every batch-normalization layer of ``network`` by ``SyncBatchNorm`` holding the same parameters and
    buffers (so checkpoints are the same either way); returns ``network``."""
    for name, child in network.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, SyncBatchNorm):
            synced = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats)
            tensors = child.state_dict()
            if tensors:  # on the child's device, in its floating type (e.g. trainer.precision=64-true)
                like = next(iter(tensors.values()))
                synced.to(device=like.device, dtype=like.dtype).load_state_dict(tensors)
            for affine in ("weight", "bias") if child.affine else ():
                value = getattr(child, affine)
                if isinstance(value, nn.Parameter):  # the very parameter: nothing holding it (an optimizer) goes stale
                    setattr(synced, affine, value)
                else:  # a frozen head's gain and shift (arch.head_frozen): buffers, as in the layer replaced
                    delattr(synced, affine)
                    synced.register_buffer(affine, value)
            setattr(network, name, synced.train(child.training))
        else:
            convert_batchnorm_(child)
    return network


class GANStrategy(DDPStrategy):
    """DDP with one ``DistributedDataParallel`` per network (see the module's docstring).

    ``sync_batchnorm`` lists the networks whose batch normalization is synchronized across ranks
    (default both: the statistics of the global batch, as in a single-process run); a network left
    out normalizes with its rank's share of the batch and keeps rank 0's running statistics (DDP's
    buffer broadcast). Other keyword arguments go to ``DistributedDataParallel`` and Lightning's
    ``DDPStrategy`` (e.g. ``process_group_backend``, ``timeout``, ``bucket_cap_mb``).
    """

    def __init__(self, sync_batchnorm: Sequence[str] = NETWORKS, **kwargs):
        unknown = sorted(set(sync_batchnorm) - set(NETWORKS))
        if unknown:
            raise ConfigError(f"trainer.strategy.sync_batchnorm has {unknown[0]!r}; accepted: a list of "
                              f"{' and '.join(NETWORKS)}.")
        if kwargs.get("find_unused_parameters"):
            raise ConfigError("trainer.strategy.find_unused_parameters=true is not needed: each network has its own "
                              "DDP wrapper, and all its parameters get gradients in its updates.")
        super().__init__(**kwargs)
        self.sync_batchnorm = tuple(sync_batchnorm)

    def _setup_model(self, model: pl.LightningModule) -> pl.LightningModule:
        if self._layer_sync is not None:
            raise ConfigError("trainer.sync_batchnorm=true converts the whole module; with trainer=ddp choose the "
                              "networks with trainer.strategy.sync_batchnorm=[generator, discriminator] instead.")
        device_ids = self.determine_ddp_device_ids()
        for name in NETWORKS:
            network = getattr(model, name)
            if name in self.sync_batchnorm:
                convert_batchnorm_(network)
            # DDP broadcasts rank 0's buffers before each forward: the same on every rank whatever computes them
            model.distributed_wrappers[name] = DistributedDataParallel(network, device_ids=device_ids,
                                                                       **self._ddp_kwargs)
        return model  # Lightning calls training_step on the module itself; the wrappers do the all-reduce

    def _register_ddp_hooks(self) -> None:
        if self.root_device.type == "cuda" and self._ddp_comm_hook is not None:
            for wrapper in self.lightning_module.distributed_wrappers.values():
                _register_ddp_comm_hook(model=wrapper, ddp_comm_state=self._ddp_comm_state,
                                        ddp_comm_hook=self._ddp_comm_hook, ddp_comm_wrapper=self._ddp_comm_wrapper)

    def teardown(self) -> None:
        if self.lightning_module is not None:
            self.lightning_module.distributed_wrappers.clear()
        super().teardown()
