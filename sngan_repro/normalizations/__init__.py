"""Discriminator normalizations, selected with ``norm=<name>`` (conf/norm/<name>.yaml)."""

from .base import NoNormalization, Normalization, build_normalization
from .feature import BatchNormalization, LayerNormalization
from .regularizers import GradientPenalty, OrthonormalRegularization, WeightClipping
from .sparsity_aware import SparsityAwareNormalization, compensation_factor
from .spectral import SpectralNormalization
from .weight_norm import WeightNormalization

__all__ = [
    "Normalization", "NoNormalization", "build_normalization", "SpectralNormalization", "SparsityAwareNormalization",
    "compensation_factor", "BatchNormalization", "LayerNormalization", "WeightNormalization",
    "GradientPenalty", "OrthonormalRegularization", "WeightClipping",
]
