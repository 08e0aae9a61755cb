"""Discriminator normalizations, selected with ``norm=<name>`` (conf/norm/<name>.yaml)."""

from .base import NoNormalization, Normalization
from .spectral import SpectralNormalization

__all__ = ["Normalization", "NoNormalization", "SpectralNormalization"]
