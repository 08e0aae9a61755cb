"""Building blocks shared by architectures: weight-normalization parametrizations and layers."""

from .heads import HEADS, OutputHead
from .normalizing import ScaledWeight, assign_weight_, normalizing_constants
from .spectral_norm import SpectralNorm, spectral_norm
from .weight_norm import UnitNorm, output_dim, unit_norm, unit_norms
from .xiang import (
    AffineWeightNorm,
    MeanOnlyBatchNorm,
    TPReLU,
    TReLU,
    WNAdd,
    project_parameters_,
    swn_conv2d,
    swn_conv_transpose2d,
    swn_linear,
)

__all__ = [
    "AffineWeightNorm",
    "HEADS",
    "MeanOnlyBatchNorm",
    "OutputHead",
    "ScaledWeight",
    "SpectralNorm",
    "TPReLU",
    "TReLU",
    "UnitNorm",
    "WNAdd",
    "assign_weight_",
    "normalizing_constants",
    "output_dim",
    "project_parameters_",
    "spectral_norm",
    "swn_conv2d",
    "swn_conv_transpose2d",
    "swn_linear",
    "unit_norm",
    "unit_norms",
]
