"""Xiang & Li's reconstruction loss (Sec. 4, Eq. 13): how well a generator reproduces held-out images.

``L_rec(G, X) = (1/m) Σ_i min_z ‖G(z) − x⁽ⁱ⁾‖²``, divided by C·H·W (per pixel, per colour channel), on
images in [0, 1]. The minimum over z is approached by RMSProp (lr 0.01, α 0.9, ε 1e-6) on the code,
starting from the all-zero vector, with G frozen in inference mode (BN running statistics). It
needs no pretrained network, so it is available offline and on CPU-only machines.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.utils import make_grid

from ..data.pixels import to_uint8_rounded, uint8_to_range
from ..errors import ConfigError
from .base import Metric, MetricSetup, require_count


def _unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1]; floating images must already be in [0, 1]."""
    if images.dtype == torch.uint8:
        return uint8_to_range(images, (0.0, 1.0))
    if not images.is_floating_point():
        raise ValueError(f"expected uint8 or floating images, got {images.dtype}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError("floating-point images must be in [0, 1] (the reconstruction loss's units)")
    return images


def _per_image_loss(generator: nn.Module, z: torch.Tensor, target: torch.Tensor, low: float, high: float):
    """(‖G(z) − x‖² / (C·H·W) per image, G(z) mapped from [low, high] to [0, 1])."""
    output = (generator(z).float() - low) / (high - low)
    return (output - target).square().flatten(1).mean(1), output


def reconstruction_loss(
    generator: nn.Module,
    images: torch.Tensor,
    latent_dim: int,
    steps: int,
    output_range: Sequence[float] = (-1.0, 1.0),
    lr: float = 0.01,
    alpha: float = 0.9,
    eps: float = 1e-6,
    chunk_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image reconstruction losses of ``images`` under ``generator`` (Xiang & Li, Sec. 4).

    ``images``: (N, C, H, W), uint8 in [0, 255] (as ``ImageDataModule.images`` returns them) or
    floating in [0, 1]. ``generator`` maps codes (n, latent_dim) to images in ``output_range``,
    which is mapped linearly to [0, 1] before comparison. Codes start at zero and take ``steps``
    RMSProp steps; the result is deterministic.

    Returns ``(losses, reconstructions)`` on ``images.device``: ``losses`` (N,) float32, each
    ‖G(z) − x‖² / (C·H·W) at the final code (so ``steps=0`` gives the loss of G(0)); and the final
    reconstructions as uint8 (N, C, H, W) like the datamodule's images (quantized for viewing only:
    the losses use the unquantized output). The paper's L_rec is ``losses.mean()``.

    G's parameters get no gradients (autograd differentiates w.r.t. the codes only) and G runs in
    eval mode; every submodule's train/eval mode is restored afterwards.
    """
    low, high = (float(v) for v in output_range)
    modes = [(module, module.training) for module in generator.modules()]
    generator.eval()
    losses, reconstructions = [], []
    try:
        # Chunks are independent problems (each code only enters its own image's loss), so each
        # gets its own optimizer: RMSProp's state is per coordinate anyway.
        for start in range(0, images.shape[0], chunk_size):
            target = _unit_range(images[start : start + chunk_size])
            z = torch.zeros(target.shape[0], latent_dim, device=target.device, requires_grad=True)
            optimizer = torch.optim.RMSprop([z], lr=lr, alpha=alpha, eps=eps)
            with torch.enable_grad():
                for _ in range(steps):
                    # The SUM of the per-image losses: each code's gradient is exactly its own
                    # problem's, so batching changes nothing (a mean would scale it by 1/N,
                    # which RMSProp's ε does not ignore).
                    (grad,) = torch.autograd.grad(_per_image_loss(generator, z, target, low, high)[0].sum(), z)
                    z.grad = grad
                    optimizer.step()
            with torch.no_grad():
                loss, output = _per_image_loss(generator, z, target, low, high)
            losses.append(loss)
            reconstructions.append(to_uint8_rounded(output))
    finally:
        for module, training in modes:
            module.train(training)
    if not losses:  # no images (e.g. a DDP rank whose share of a tiny subset is empty)
        return images.new_zeros(0, dtype=torch.float32), images.new_zeros(images.shape, dtype=torch.uint8)
    return torch.cat(losses), torch.cat(reconstructions)


class Reconstruction(Metric):
    """``reconstruction/{label}_{images}img_{steps}steps``: the mean reconstruction loss of the first ``images``
    held-out images after ``steps`` RMSProp steps, and an image of up to ``pairs`` of them beside their
    reconstructions. Xiang & Li's protocols: running (every 500 iterations; CelebA 200 images, CIFAR-10 400,
    50 steps; the best checkpoint by it is kept) and final (2,000 images, 2,000 steps).

    Under DDP every rank reconstructs its own share of the images (image i goes to rank i mod world size)
    and the per-image losses are summed across ranks: 1/world of the work each, the same value on all.
    """

    def __init__(self, images: int, steps: int, every: int = 0, label: str = "running", chunk_size: int = 512,
                 pairs: int = 16):
        super().__init__(every)
        require_count(images, "images")
        require_count(steps, "steps", minimum=0)
        require_count(chunk_size, "chunk_size")
        require_count(pairs, "pairs", minimum=0)
        self.heldout_images, self.steps, self.label = images, steps, label
        self.chunk_size, self.pairs = chunk_size, pairs
        self.name = f"reconstruction/{label}_{images}img_{steps}steps"
        self._share: torch.Tensor | None = None  # this rank's held-out images, uint8
        self._pairs: torch.Tensor | None = None

    def names(self) -> list[str]:
        return [self.name]

    def protocols(self) -> dict[str, str]:
        return {self.name: (f"Xiang & Li's reconstruction loss: mean over {self.heldout_images} held-out images of "
                            f"min_z ||G(z) - x||^2 / (C H W) in [0, 1] units, z from 0, {self.steps} RMSProp steps "
                            f"(lr 0.01, alpha 0.9, eps 1e-6) on each code's gradient of its own image's loss (the "
                            f"per-image losses summed, not averaged over the batch), generator in eval mode")}

    def prepare(self, setup: MetricSetup) -> None:
        available = getattr(setup.datamodule, "heldout", 0)
        if available < self.heldout_images:
            raise ConfigError(f"dataset.heldout={available} is smaller than the reconstruction metric's "
                              f"{self.heldout_images} images; set dataset.heldout >= {self.heldout_images} "
                              f"(Xiang & Li hold out 2,000).")
        images = setup.datamodule.images("heldout", self.heldout_images)
        self._share = images[setup.rank :: setup.world_size].to(setup.device)

    def compute(self, gan) -> dict[str, float]:
        self._share = self._share.to(gan.device)
        losses, reconstructions = reconstruction_loss(gan.generator, self._share, gan.latent_dim, self.steps,
                                                      output_range=gan.output_range, chunk_size=self.chunk_size)
        total = losses.sum()
        if gan.world_size > 1:
            total = gan.all_gather(total).sum()
        count = min(self.pairs, len(reconstructions))
        pairs = torch.stack([self._share[:count], reconstructions[:count]], 1).flatten(0, 1)
        self._pairs = make_grid(uint8_to_range(pairs, (0.0, 1.0)).cpu(), nrow=8)  # 4 (held-out, reconstruction) a row
        return {self.name: float(total) / self.heldout_images}

    def images(self) -> dict[str, torch.Tensor]:
        return {} if self._pairs is None or not self.pairs else {"reconstruction/heldout_vs_reconstructed": self._pairs}
