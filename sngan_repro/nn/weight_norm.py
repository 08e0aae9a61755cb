"""Weight normalization as a ``torch.nn.utils.parametrize`` parametrization.

One formula serves Salimans & Kingma's weight norm with its gain disabled (Miyato et al.'s
Table 2 baseline, ``norm=wn``) and Xiang & Li's strict weight-normalized layers: every output
unit's weight vector is divided by its Euclidean norm, computed with ``eps`` inside the square
root, and multiplied by a fixed ``scale`` (Xiang & Li's stride correction for transposed convs).
Gradients flow through the norm.
"""

import torch
from torch import nn
from torch.nn.utils import parametrize


class UnitNorm(nn.Module):
    """W -> scale * W / sqrt(sum of W^2 over every dim but ``dim`` + eps)."""

    def __init__(self, dim: int = 0, eps: float = 0.0, scale: float = 1.0):
        super().__init__()
        self.dim, self.eps, self.scale = dim, eps, scale

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        dims = [d for d in range(weight.dim()) if d != self.dim]
        norm = weight.pow(2).sum(dims, keepdim=True).add(self.eps).sqrt()
        return weight * (self.scale / norm)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}, scale={self.scale:.4g}"


def output_dim(layer: nn.Module) -> int:
    """The weight dimension that indexes output units: 1 for transposed convolutions, else 0."""
    return 1 if isinstance(layer, nn.modules.conv._ConvTransposeNd) else 0


def unit_norm(layer: nn.Module, eps: float = 0.0, scale: float = 1.0) -> nn.Module:
    """Register ``UnitNorm`` on ``layer.weight`` (per output unit) and return the layer."""
    parametrize.register_parametrization(layer, "weight", UnitNorm(output_dim(layer), eps, scale))
    return layer
