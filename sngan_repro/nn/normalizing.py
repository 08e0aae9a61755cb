"""What every weight normalization of the project shares.

The rule (as in PyTorch's own parametrizations): a normalization works only on the tensor it
receives. A layer may already carry another parametrization (Xiang & Li's weight-normalized
layers, on which a critic normalization is stacked), so nothing here reaches into
``parametrizations.weight[i]`` or ``.original``:

- a normalizing constant lives in the module that divides by it (``ScaledWeight.sigma``) and is
  found by type, wherever in a parametrization chain or layer it sits;
- initial values are written with ``assign_weight_``, which goes through every parametrization's
  ``right_inverse`` down to the stored tensor, so no initializer writes into a computed tensor.
"""

import contextlib
import re

import torch
from torch import nn
from torch.nn.utils import parametrize

# "<layer>.parametrizations.<tensor>.<index>" -> "<layer>", and a child module "<layer>.<attribute>" -> "<layer>"
_PARAMETRIZATION_SUFFIX = re.compile(r"(^|\.)parametrizations\.\w+\.\d+$")


class ScaledWeight(nn.Module):
    """A module that divides a layer's weight by a normalizing constant it keeps in the buffer ``sigma``
    (spectral norm's sigma, SAN's g * ||W||_{0,inf}, ...): what the logs show per layer."""

    sigma: torch.Tensor


def full_precision(tensor: torch.Tensor):
    """Autocast switched off on ``tensor``'s device. Normalizing constants (power iterations, kernel DFTs, Gram
    matrices) are computed in the weights' own floating type under mixed precision too: in bfloat16, SN's sigma
    would be off by up to 0.4 %, and so would every layer's Lipschitz bound.

    Entered in every forward of every normalized layer, so without autocast (full precision training) it is a
    null context: building and entering an autocast context costs several microseconds a time."""
    if not torch.is_autocast_enabled(tensor.device.type):
        return contextlib.nullcontext()
    return torch.autocast(tensor.device.type, enabled=False)


def _layer_name(path: str) -> str:
    stripped = _PARAMETRIZATION_SUFFIX.sub("", path)
    return stripped if stripped != path else path.rpartition(".")[0]


def normalizing_constants(module: nn.Module) -> dict[str, torch.Tensor]:
    """{layer name: the constant its weight is divided by now} for every ``ScaledWeight`` in ``module``."""
    return {_layer_name(path): child.sigma for path, child in module.named_modules() if isinstance(child, ScaledWeight)}


@torch.no_grad()
def assign_weight_(layer: nn.Module, value: torch.Tensor) -> None:
    """Make ``value`` the layer's stored weight: through the parametrizations' ``right_inverse`` when it has any,
    in place otherwise (the Parameter object, and so the optimizer's reference to it, stays the same)."""
    if parametrize.is_parametrized(layer, "weight"):
        layer.weight = value
    else:
        layer.weight.copy_(value)
