"""Spectral normalization (Miyato et al. 2018) on PyTorch's parametrization.

``torch.nn.utils.parametrizations.spectral_norm`` does what the paper does: W / sigma with sigma
from one power-iteration step per training-mode forward, u and v in buffers (saved in the
state dict), u and v constant for autograd so the gradient flows through sigma, no power
step in eval mode. Conv kernels are reshaped to (out, in*kh*kw).
"""

from torch import nn
from torch.nn.utils import parametrizations, parametrize

from ..diagnostics import power_iteration_sigma
from .base import Normalization


class SpectralNormalization(Normalization):
    def __init__(self, n_power_iterations: int = 1, eps: float = 1e-12):
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def wrap_weight_layer(self, layer: nn.Module, input_size=None) -> nn.Module:
        return parametrizations.spectral_norm(layer, n_power_iterations=self.n_power_iterations, eps=self.eps)

    def layer_scales(self, discriminator: nn.Module) -> dict:
        return {
            name: power_iteration_sigma(module)
            for name, module in discriminator.named_modules()
            if parametrize.is_parametrized(module, "weight")
        }
