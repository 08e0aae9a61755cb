"""The scalars a training run logs at its logging steps, gathered on the device between them.

Every generator update's losses stay device tensors until a logging step, where they are reduced over the ranks
in one host transfer (with the divergence check's flag); so does ``d_out/real_minus_fake``, kept for every
generator step and written at the next logging step. The critic updates before a logged generator update are
timed (Kligvasser & Michaeli, App. F: the time of one critic update); only there, since timing a GPU needs a host
sync.
"""

import time

import torch
from torch import nn

from .nn import normalizing_constants


def gradient_norm(module: nn.Module) -> torch.Tensor:
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())


def synchronized_clock(device: torch.device) -> float:
    """time.perf_counter() once ``device`` has finished its queued work (a host sync on GPUs)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class TrainingScalars:
    def __init__(self):
        # mean D(x) - mean D(G(z)) of the last critic update before each generator update, on the device
        self._pending_gaps: list[tuple[int, torch.Tensor]] = []
        # wall seconds and count of the critic updates timed before the next logged generator update
        self._critic_seconds, self._critic_updates = 0.0, 0

    def add_critic_time(self, seconds: float) -> None:
        self._critic_seconds += seconds
        self._critic_updates += 1

    def add_gap(self, g_step: int, critic_outputs: dict) -> None:
        self._pending_gaps.append((g_step, critic_outputs["d_out/real"].mean() - critic_outputs["d_out/fake"].mean()))

    def collect(self, outputs: dict, optimizers, networks: dict[str, nn.Module], loss: nn.Module,
                non_finite_weights: torch.Tensor, ranks) -> tuple[dict[str, float], float]:
        """({name: value} of a logging step, and ``non_finite_weights`` over all ranks): the means of ``outputs``
        (the last updates' losses and critic outputs) over the global batch, the learning rates of ``optimizers``
        (generator's, critic's), the gradient norms of the last updates of ``networks``, the critic's time, the
        loss's own scalars and the layers' normalizing constants."""
        means = [value.mean() for value in outputs.values()]
        means = ranks.mean(torch.stack([*means, non_finite_weights.to(means[0].dtype)]))  # one transfer for both
        scalars = dict(zip(outputs, means))  # losses and critic outputs of the global batch, logged once by rank 0
        opt_g, opt_d = optimizers
        scalars["lr/g"] = opt_g.param_groups[0]["lr"]
        scalars["lr/d"] = opt_d.param_groups[0]["lr"]
        scalars["grad_norm/g"] = gradient_norm(networks["generator"])  # of the last generator update
        scalars["grad_norm/d"] = gradient_norm(networks["discriminator"])  # of the last critic update
        if self._critic_updates:  # wall time of one critic update (loss, backward, step, normalization), this rank's
            scalars["time/critic_update_ms"] = 1000 * self._critic_seconds / self._critic_updates
        self._critic_seconds, self._critic_updates = 0.0, 0
        scalars.update(loss.logged())  # e.g. BEGAN's k_t and M_global
        for layer, scale in normalizing_constants(networks["discriminator"]).items():
            scalars[f"norm_scale/{layer}"] = scale
        for layer, scale in normalizing_constants(networks["generator"]).items():
            scalars[f"norm_scale/generator/{layer}"] = scale
        return {name: float(value) for name, value in scalars.items()}, float(means[-1])

    def flush_gaps(self, loggers, ranks) -> None:
        """Log ``d_out/real_minus_fake`` of every generator step since the last flush (one host transfer): with
        loss=wgan, the critic's Wasserstein estimate without the penalty (Mullery & Whelan's critic-loss curve)."""
        if not self._pending_gaps:
            return
        values = ranks.mean(torch.stack([gap for _, gap in self._pending_gaps])).tolist()
        for (g_step, _), value in zip(self._pending_gaps, values):
            for logger in loggers:
                logger.log_metrics({"d_out/real_minus_fake": value}, step=g_step)
        self._pending_gaps.clear()
