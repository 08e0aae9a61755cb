"""Building blocks shared by architectures: weight-normalization parametrizations and layers."""

from .weight_norm import UnitNorm, output_dim, unit_norm

__all__ = ["UnitNorm", "output_dim", "unit_norm"]
