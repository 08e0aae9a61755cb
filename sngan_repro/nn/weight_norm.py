"""Weight normalization as a ``torch.nn.utils.parametrize`` parametrization.

One formula serves Salimans & Kingma's weight norm (Miyato et al.'s Table 2 baseline, ``norm=wn``,
with its gain disabled for the comparison) and Xiang & Li's strict weight-normalized layers: every
output unit's weight vector is divided by its Euclidean norm, computed with ``eps`` inside the
square root, and multiplied by a fixed ``scale`` (Xiang & Li's stride correction for transposed
convs) or, with ``learn_gain``, by a learned per-unit gain g (Salimans & Kingma's W = g V / ||V||,
g starting at ||V|| so that the layer starts as it was). Gradients flow through the norm.
"""

import torch
from torch import nn
from torch.nn.utils import parametrize


class UnitNorm(nn.Module):
    """W -> scale * W / sqrt(sum of W^2 over every dim but ``dim`` + eps), times a learned gain per unit if any."""

    def __init__(self, dim: int = 0, eps: float = 0.0, scale: float = 1.0, gain: torch.Tensor | None = None):
        super().__init__()
        self.dim, self.eps, self.scale = dim, eps, scale
        self.gain = None if gain is None else nn.Parameter(gain.detach().clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        norm = unit_norms(weight, self.dim, self.eps)
        scale = self.scale if self.gain is None else self.scale * self.gain.view_as(norm)
        return weight * (scale / norm)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value  # the stored tensor is the direction; any positive rescaling of it is as good

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}, scale={self.scale:.4g}, learned_gain={self.gain is not None}"


def unit_norms(weight: torch.Tensor, dim: int, eps: float = 0.0) -> torch.Tensor:
    """The norm of every output unit's weight vector (all dims but ``dim``), ``eps`` inside the root; kept dims."""
    dims = [d for d in range(weight.dim()) if d != dim]
    return weight.pow(2).sum(dims, keepdim=True).add(eps).sqrt()


def output_dim(layer: nn.Module) -> int:
    """The weight dimension that indexes output units: 1 for transposed convolutions, else 0."""
    return 1 if isinstance(layer, nn.modules.conv._ConvTransposeNd) else 0


def unit_norm(layer: nn.Module, eps: float = 0.0, scale: float = 1.0, learn_gain: bool = False) -> nn.Module:
    """Register ``UnitNorm`` on ``layer.weight`` (per output unit) and return the layer; a learned gain starts
    at the norms of the weight it receives."""
    dim = output_dim(layer)
    gain = unit_norms(layer.weight.detach(), dim, eps).flatten() / scale if learn_gain else None
    parametrize.register_parametrization(layer, "weight", UnitNorm(dim, eps, scale, gain))
    return layer
