"""Divergence: a loss or a weight that became NaN or infinite stops the run with one sentence naming the generator
step, the quantity and the last good checkpoint, and a checkpoint holding such a weight is never written (it would
replace ``last.ckpt``, the last good state).

Weights are every floating-point parameter and buffer of both networks (e.g. SN's ``u``, BN's running variance,
which only the generator's eval-mode samples use). They are checked on the device, folded into the one host
transfer of a logging step's losses, and before every checkpoint.
"""

import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from .checkpointing import newest_checkpoint
from .errors import TrainingDivergedError

CHECKED_LOSSES = ("loss/d", "loss/g")


class DivergenceGuard:
    """Watches ``networks`` ({name: module}) of a run that resumed from ``resumed_from`` (None: a fresh run) and
    writes a checkpoint every ``checkpoint_every`` generator updates (named in the sentence when none was written);
    ``checkpoint_folders`` lists, when asked on the error path, the folders the run's checkpoints go to."""

    def __init__(self, networks: dict[str, nn.Module], checkpoint_every: int, resumed_from: str | None,
                 checkpoint_folders: Callable[[], list[str]]):
        self.networks, self.checkpoint_every, self.resumed_from = networks, checkpoint_every, resumed_from
        self.checkpoint_folders = checkpoint_folders
        self.saved_at: int | None = None  # the generator step of the last checkpoint this process wrote
        self.resumed_at: int | None = None  # the generator step of the checkpoint the run resumed from

    def weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        for network, module in self.networks.items():
            for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
                if tensor.is_floating_point():
                    yield f"{network} weight {name}", tensor

    def non_finite_weights(self) -> torch.Tensor:
        """1.0 if a weight holds a NaN or an infinity, else 0.0: on the device, no host sync."""
        return (~torch.stack([tensor.isfinite().all() for _, tensor in self.weights()]).all()).float()

    def check_logged(self, g_step: int, scalars: dict[str, float], non_finite_weights: float) -> None:
        """At a logging step: the losses, and the weights' flag (``non_finite_weights`` over all ranks)."""
        diverged = [f"{name} is {scalars[name]}" for name in CHECKED_LOSSES if not math.isfinite(scalars[name])]
        if diverged or non_finite_weights > 0:
            raise self.error(g_step, diverged[0] if diverged else self.first_non_finite_weight())

    def check_before_saving(self, g_step: int, non_finite_weights: float) -> None:
        if non_finite_weights > 0:
            raise self.error(g_step, self.first_non_finite_weight())
        self.saved_at = g_step

    def first_non_finite_weight(self) -> str:
        """Which weight is not finite, and its first such value (on the error path only)."""
        for name, tensor in self.weights():
            values = tensor.detach()[~tensor.detach().isfinite()]
            if values.numel():
                return f"{name} holds {values[0].item()}"
        return "a weight on another process is not finite"

    def error(self, g_step: int, quantity: str) -> TrainingDivergedError:
        # the newest checkpoint this run wrote (usually last.ckpt), else the one it resumed from, if any
        good = newest_checkpoint(*self.checkpoint_folders()) if self.saved_at is not None else None
        step = self.saved_at
        if good is None:
            good, step = (Path(self.resumed_from), self.resumed_at) if self.resumed_from else (None, None)
        if good is None:
            kept = f"no checkpoint was written before it (train.checkpoint_every={self.checkpoint_every})"
        else:
            kept = (f"the last good checkpoint, {good} (generator step {step}), is kept: resume from it with "
                    f"ckpt_path={good} once the setting that diverged is changed")
        return TrainingDivergedError(f"Training diverged at generator step {g_step}: {quantity}; {kept}.")
