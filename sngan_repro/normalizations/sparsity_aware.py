"""Sparsity aware normalization (SAN, Kligvasser & Michaeli).

Each critic convolution is divided by g * sigma with sigma = max_{i,j,omega} |F{w_ij}(omega)|,
the largest DFT modulus of any single input->output kernel zero-padded to the layer's input
size (Lemma 1: ||W||_{0,inf} of a circular convolution). Dense layers are divided by their top
singular value. sigma is a constant for autograd, kept in a buffer and recomputed after every
``update_every``-th critic update; critic convolutions use circular padding.

With ``subset_ratio`` r < 1, sigma is the maximum over a random fraction r of the m*n kernels,
and the compensation factor defaults to g = H_{mn} / H_{round(mn r)} (harmonic numbers: the
expected maximum of k i.i.d. exponential draws is H_k / lambda).
"""

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..diagnostics import san_constant
from ..errors import ConfigError
from .base import Normalization


def harmonic_number(n: int) -> float:
    return math.fsum(1.0 / k for k in range(1, n + 1))


def subset_size(num_kernels: int, ratio: float) -> int:
    return max(1, round(num_kernels * ratio))


def compensation_factor(num_kernels: int, ratio: float) -> float:
    """g = H_{mn} / H_{[mn r]}: corrects the expected maximum over a subset of the kernels."""
    return harmonic_number(num_kernels) / harmonic_number(subset_size(num_kernels, ratio))


class SparsityAwareScale(nn.Module):
    """Parametrization W -> W / (g * sigma), sigma a buffer refreshed by ``refresh``."""

    def __init__(self, weight: torch.Tensor, input_size, subset_ratio: float, compensation: float | None):
        super().__init__()
        self.input_size = None if input_size is None else tuple(input_size)
        self.subset_ratio = subset_ratio if self.input_size else 1.0
        num_kernels = weight.shape[0] * weight.shape[1]
        if compensation is None:
            compensation = compensation_factor(num_kernels, self.subset_ratio) if self.input_size else 1.0
        self.compensation = float(compensation)
        self.register_buffer("sigma", torch.ones((), dtype=weight.dtype, device=weight.device))
        self.refresh(weight, torch.Generator(weight.device).manual_seed(0))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / (self.compensation * self.sigma)

    @torch.no_grad()
    def refresh(self, weight: torch.Tensor, rng: torch.Generator) -> None:
        if self.input_size is None:  # dense layer: top singular value, as in SN
            self.sigma.copy_(torch.linalg.matrix_norm(weight.double(), ord=2))
            return
        kernels = weight.flatten(0, 1)
        if self.subset_ratio < 1.0:
            chosen = torch.randperm(kernels.shape[0], generator=rng, device=rng.device)
            kernels = kernels[chosen[: subset_size(kernels.shape[0], self.subset_ratio)].to(kernels.device)]
        self.sigma.copy_(san_constant(kernels, self.input_size))

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, subset_ratio={self.subset_ratio}, compensation={self.compensation:.4f}"


class SparsityAwareNormalization(Normalization):
    conv_padding_mode = "circular"  # Lemma 1 holds for circular convolutions

    def __init__(self, update_every: int = 1, subset_ratio: float = 1.0, compensation: float | None = None):
        if not (isinstance(update_every, int) and update_every >= 1):
            raise ConfigError(f"norm.update_every={update_every} must be an integer >= 1 (critic updates).")
        if not 0.0 < subset_ratio <= 1.0:
            raise ConfigError(f"norm.subset_ratio={subset_ratio} must be in (0, 1].")
        if compensation is not None and compensation <= 0:
            raise ConfigError(f"norm.compensation={compensation} must be positive (or null for H_mn / H_[mn r]).")
        self.update_every, self.subset_ratio, self.compensation = update_every, subset_ratio, compensation

    def wrap_weight_layer(self, layer: nn.Module, input_size=None) -> nn.Module:
        if isinstance(layer, nn.Conv2d) and input_size is None:
            raise ConfigError("SAN needs the input size of every convolution; this architecture does not give it.")
        scale = SparsityAwareScale(layer.weight, input_size if isinstance(layer, nn.Conv2d) else None,
                                   self.subset_ratio, self.compensation)
        parametrize.register_parametrization(layer, "weight", scale)
        return layer

    def after_discriminator_update(self, discriminator: nn.Module, step: int, rng: torch.Generator) -> None:
        if (step + 1) % self.update_every:
            return
        for layer, scale in _san_layers(discriminator):
            scale.refresh(layer.parametrizations.weight.original, rng)

    def layer_scales(self, discriminator: nn.Module) -> dict:
        return {name: scale.sigma for name, (_, scale) in _named_san_layers(discriminator)}


def _named_san_layers(module: nn.Module):
    for name, layer in module.named_modules():
        if parametrize.is_parametrized(layer, "weight"):
            scale = layer.parametrizations.weight[0]
            if isinstance(scale, SparsityAwareScale):
                yield name, (layer, scale)


def _san_layers(module: nn.Module):
    return [pair for _, pair in _named_san_layers(module)]
