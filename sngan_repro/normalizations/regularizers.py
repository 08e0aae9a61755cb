"""Discriminator regularizers that act through the loss or the update rather than the forward
pass: gradient penalty (WGAN-GP / GAN-GP), orthonormal regularization, weight clipping."""

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import ConfigError
from ..nn import assign_weight_, full_precision
from .base import Normalization


def _weight_layers(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


class GradientPenalty(Normalization):
    """lambda * E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) G(z), eps ~ U(0, 1) per sample
    (Gulrajani et al.). With loss=wgan this is WGAN-GP; with loss=nonsat, Miyato et al.'s GAN-GP."""

    def __init__(self, weight: float = 10.0, target: float = 1.0):
        if weight <= 0:
            raise ConfigError(f"norm.weight={weight} must be positive.")
        self.weight, self.target = weight, target

    def penalty(self, discriminator: nn.Module, real, fake, noise):
        eps = noise.rand(real.shape[0], *(1,) * (real.dim() - 1))
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(discriminator(mixed).sum(), mixed, create_graph=True)
        return self.weight * (grad.flatten(1).norm(dim=1) - self.target).pow(2).mean()


class OrthonormalRegularization(Normalization):
    """Brock et al.: strength * sum over layers of ||W^T W - I||_F^2 (W reshaped to (out, in*kh*kw)),
    weights initialized to random orthonormal operators.

    The Gram matrix is taken on the smaller side: W (W^T W - I) = (W W^T - I) W, so both sides
    give the same gradient and differ only by a constant in value.
    """

    def __init__(self, strength: float = 1e-4):
        if strength <= 0:
            raise ConfigError(f"norm.strength={strength} must be positive.")
        self.strength = strength

    def wrap_weight_layer(self, layer: nn.Module, input_size=None) -> nn.Module:
        # an orthonormal operator as the stored weight (through any parametrization the layer already has)
        assign_weight_(layer, nn.init.orthogonal_(torch.empty_like(layer.weight)))
        return layer

    def penalty(self, discriminator: nn.Module, real, fake, noise):
        total = 0.0
        for layer in _weight_layers(discriminator):
            matrix = layer.weight.flatten(1)
            with full_precision(matrix):
                gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
            total = total + (gram - torch.eye(gram.shape[0], device=gram.device)).pow(2).sum()
        return self.strength * total


class WeightClipping(Normalization):
    """Arjovsky et al.: every critic parameter clipped to [-clip, clip] after each update (WGAN)."""

    def __init__(self, clip: float = 0.01):
        if clip <= 0:
            raise ConfigError(f"norm.clip={clip} must be positive.")
        self.clip = clip

    def wrap_weight_layer(self, layer: nn.Module, input_size=None) -> nn.Module:
        if parametrize.is_parametrized(layer, "weight"):
            raise ConfigError("norm=clip bounds a layer's stored parameters, but this architecture reparametrizes its "
                              "weights (as arch.variant=wn normalizes them to unit norm), so the bound would not "
                              "hold for the weights applied; use a variant without weight-normalized layers.")
        return layer

    @torch.no_grad()
    def after_discriminator_update(self, discriminator: nn.Module, step: int, rng) -> None:
        for parameter in discriminator.parameters():
            parameter.clamp_(-self.clip, self.clip)
