"""Xiang & Li's reconstruction loss (Sec. 4, Eq. 13): how well a generator reproduces held-out images.

``L_rec(G, X) = (1/m) Σ_i min_z ‖G(z) − x⁽ⁱ⁾‖²``, divided by C·H·W (per pixel, per colour channel), on
images in [0, 1]. The minimum over z is approached by RMSProp (lr 0.01, α 0.9, ε 1e-6) on the code,
starting from the all-zero vector, with G frozen in inference mode (BN running statistics). It
needs no pretrained network, so it is available offline and on CPU-only machines.
"""

from collections.abc import Sequence

import torch
from torch import nn


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1]; floating images must already be in [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    if not images.is_floating_point():
        raise ValueError(f"expected uint8 or floating images, got {images.dtype}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError("floating-point images must be in [0, 1] (the reconstruction loss's units)")
    return images


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8 [0, 255] (clamped, rounded): the datamodule's image format."""
    return images.clamp(0, 1).mul(255).round_().to(torch.uint8)


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
            target = to_unit_range(images[start : start + chunk_size])
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
            reconstructions.append(to_uint8(output))
    finally:
        for module, training in modes:
            module.train(training)
    if not losses:  # no images (e.g. a DDP rank whose share of a tiny subset is empty)
        return images.new_zeros(0, dtype=torch.float32), images.new_zeros(images.shape, dtype=torch.uint8)
    return torch.cat(losses), torch.cat(reconstructions)
