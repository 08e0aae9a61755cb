"""Pure functions on weights, for logging callbacks, tests and notebooks."""

import torch
from torch import nn


def sn_estimate(weight: torch.Tensor) -> torch.Tensor:
    """Exact sigma of the kernel reshaped to (out, in*kh*kw): what spectral norm estimates."""
    return torch.linalg.matrix_norm(weight.detach().flatten(1).float(), ord=2)


def power_iteration_sigma(layer: nn.Module) -> torch.Tensor:
    """The sigma a spectrally normalized ``layer`` currently divides by: u^T W v with its stored u, v.

    ``layer`` carries ``torch.nn.utils.parametrizations.spectral_norm`` on its weight.
    """
    sn = layer.parametrizations.weight[0]
    with torch.no_grad():
        matrix = sn._reshape_weight_to_matrix(layer.parametrizations.weight.original)
        return torch.dot(sn._u, matrix @ sn._v)
