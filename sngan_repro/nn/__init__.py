"""Building blocks shared by architectures: weight-normalization parametrizations and layers."""

from .heads import HEADS, OutputHead
from .weight_norm import UnitNorm, output_dim, unit_norm
from .xiang import (
    AffineWeightNorm,
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
    "OutputHead",
    "TPReLU",
    "TReLU",
    "UnitNorm",
    "WNAdd",
    "output_dim",
    "project_parameters_",
    "swn_conv2d",
    "swn_conv_transpose2d",
    "swn_linear",
    "unit_norm",
]
