"""Xiang & Li's running reconstruction loss (Sec. 4): a fixed held-out subset, a few RMSProp steps on the
codes, every k generator updates, so that the best checkpoint can be kept (``ModelCheckpoint(monitor=
callback.name, mode="min")``) and evaluated again with the final protocol (2,000 images, 2,000 steps).

Under DDP every rank reconstructs its own share of the subset (image i goes to rank i mod world
size) and the per-image losses are summed across ranks, so every rank holds the same value, costs
1/world of the work, and the collective is entered by all ranks at the same generator steps (the
trigger depends only on ``g_step``). Loggers and the image grid are written by rank zero.
"""

import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from ..errors import ConfigError
from ..metrics.reconstruction import reconstruction_loss


class ReconstructionMetric(Callback):
    """Logs ``reconstruction/running_{num_images}img_{steps}steps`` (the mean per-pixel, per-channel
    reconstruction loss of ``num_images`` held-out images after ``steps`` RMSProp steps) at generator
    step 0, every ``every_n_g_steps`` generator updates and at the last one, to every logger at
    ``step=g_step``; also into ``trainer.callback_metrics`` (via ``pl_module.log``, from step
    ``every_n_g_steps`` on) for checkpoint monitoring; and ``reconstruction/heldout_vs_reconstructed``,
    up to ``num_pairs`` held-out images each beside its reconstruction, to TensorBoard.

    Xiang & Li's running protocols: CelebA 200 images, CIFAR-10 400 images, both 50 steps.
    """

    def __init__(self, every_n_g_steps: int, num_images: int = 200, steps: int = 50, chunk_size: int = 512,
                 num_pairs: int = 16):
        self.every_n_g_steps, self.num_images, self.steps = every_n_g_steps, num_images, steps
        self.chunk_size, self.num_pairs = chunk_size, num_pairs
        self.name = f"reconstruction/running_{num_images}img_{steps}steps"
        self._heldout: torch.Tensor | None = None  # this rank's share, uint8, on the module's device after first use

    def names(self) -> dict[str, str]:
        """The logged scalar's name, which states its protocol."""
        return {"reconstruction": self.name}

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit" or self._heldout is not None:
            return
        datamodule = trainer.datamodule
        heldout = getattr(datamodule, "heldout", 0)
        if not heldout:
            raise ConfigError(f"The reconstruction metric needs held-out images but dataset.heldout={heldout}; "
                              f"set dataset.heldout > 0 (Xiang & Li hold out 2,000).")
        if heldout < self.num_images:
            raise ConfigError(f"dataset.heldout={heldout} is smaller than the reconstruction metric's "
                              f"{self.num_images} images; set dataset.heldout >= {self.num_images}.")
        images = datamodule.images("heldout", self.num_images)
        self._heldout = images[trainer.global_rank :: trainer.world_size]

    def on_train_start(self, trainer, pl_module) -> None:
        if pl_module.g_step == 0:
            # the untrained baseline; not via pl_module.log (on_train_start only allows epoch-level values)
            self.evaluate(trainer, pl_module, log_to_module=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_stepped and (pl_module.g_step % self.every_n_g_steps == 0 or trainer.should_stop):
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer, pl_module, log_to_module: bool = True) -> float:
        """Reconstruct the held-out subset with the current generator, log the mean loss and return it."""
        self._heldout = self._heldout.to(pl_module.device)
        losses, reconstructions = reconstruction_loss(
            pl_module.generator, self._heldout, pl_module.cfg.arch.latent_dim, self.steps,
            output_range=pl_module.output_range, chunk_size=self.chunk_size,
        )
        value = trainer.strategy.reduce(losses.sum(), reduce_op="sum") / self.num_images
        if log_to_module:
            # logger=False: the loggers get it below at step=g_step, not at Lightning's global_step
            pl_module.log(self.name, value, on_step=True, on_epoch=False, logger=False, batch_size=self.num_images)
        scalar = float(value)
        for logger in trainer.loggers:
            logger.log_metrics({self.name: scalar}, step=pl_module.g_step)
        if trainer.is_global_zero:
            self._log_pairs(trainer, pl_module.g_step, reconstructions)
        return scalar

    def _log_pairs(self, trainer, g_step: int, reconstructions: torch.Tensor) -> None:
        count = min(self.num_pairs, reconstructions.shape[0])
        pairs = torch.stack([self._heldout[:count], reconstructions[:count]], 1).flatten(0, 1)
        grid = make_grid(pairs.float().cpu() / 255, nrow=8)  # 4 (held-out, reconstruction) pairs a row
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("reconstruction/heldout_vs_reconstructed", grid, global_step=g_step)
