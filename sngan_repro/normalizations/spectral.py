"""Spectral normalization (Miyato et al. 2018) of every critic weight, including the final dense layer:
W / sigma(W), one power-iteration step per training-mode forward, the gradient flowing through sigma
(``sngan_repro.nn.SpectralNorm``)."""

from torch import nn

from ..nn import spectral_norm
from .base import Normalization


class SpectralNormalization(Normalization):
    def __init__(self, n_power_iterations: int = 1, eps: float = 1e-12):
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def wrap_weight_layer(self, layer: nn.Module, input_size=None) -> nn.Module:
        return spectral_norm(layer, self.n_power_iterations, self.eps)
