"""Building blocks shared by architectures: weight-normalization parametrizations, layers, output heads,
spectral quantities of weights, and the protocols by which layers ask the training loop for a step."""

from .conv import Conv2d, padded_conv2d
from .heads import HEADS, OutputHead
from .normalizing import ScaledWeight, assign_weight_, full_precision, normalizing_constants
from .protocols import InitializedFromData, ProjectedAfterStep, initialize_from_data_, projected_layers
from .spectral_norm import SpectralNorm, spectral_norm
from .weight_norm import UnitNorm, output_dim, unit_norm, unit_norms
from .xiang import (
    AffineWeightNorm,
    MeanOnlyBatchNorm,
    SlopeClippedPReLU,
    TPReLU,
    TReLU,
    WNAdd,
    swn_conv2d,
    swn_conv_transpose2d,
    swn_linear,
)

__all__ = [
    "AffineWeightNorm",
    "Conv2d",
    "HEADS",
    "InitializedFromData",
    "MeanOnlyBatchNorm",
    "OutputHead",
    "ProjectedAfterStep",
    "ScaledWeight",
    "SlopeClippedPReLU",
    "SpectralNorm",
    "TPReLU",
    "TReLU",
    "UnitNorm",
    "WNAdd",
    "assign_weight_",
    "full_precision",
    "initialize_from_data_",
    "normalizing_constants",
    "output_dim",
    "padded_conv2d",
    "projected_layers",
    "spectral_norm",
    "swn_conv2d",
    "swn_conv_transpose2d",
    "swn_linear",
    "unit_norm",
    "unit_norms",
]
