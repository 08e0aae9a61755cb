"""Conversions between stored images (uint8, 0..255) and floating images in a value range.

Two rounding rules exist on purpose, and each function's name says which it applies:

- ``to_uint8_rounded``: round half to even, as an image file stores a value; used for datasets
  resized in floating point and for reconstructions shown beside their targets.
- ``to_uint8_truncated``: truncate toward zero, as the papers' evaluation code did (numpy's
  ``astype(uint8)`` on generator outputs scaled to [0, 255]); used for every IS/FID sample, so
  that our scores see the pixels theirs did.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _bounds(value_range: Sequence[float]) -> tuple[float, float]:
    low, high = (float(value) for value in value_range)
    return low, high


def uint8_to_range(images: torch.Tensor, value_range: Sequence[float], dtype: torch.dtype = torch.float32):
    """uint8 0..255 -> ``dtype`` in ``value_range`` (0 -> low, 255 -> high); a new tensor, no rounding."""
    low, high = _bounds(value_range)
    return images.to(dtype=dtype, copy=True).mul_((high - low) / 255.0).add_(low)


def _scaled_to_255(images: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    low, high = _bounds(value_range)
    return ((images.float() - low) * (255.0 / (high - low))).clamp_(0, 255)


def to_uint8_rounded(images: torch.Tensor, value_range: Sequence[float] = (0.0, 1.0)) -> torch.Tensor:
    """Floating images in ``value_range`` -> uint8, clamped and rounded to the nearest level."""
    return _scaled_to_255(images, value_range).round_().to(torch.uint8)


def to_uint8_truncated(images: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    """Floating images in ``value_range`` -> uint8, clamped and truncated (the papers' evaluation code)."""
    return _scaled_to_255(images, value_range).to(torch.uint8)


def resized_uint8(images: torch.Tensor, image_size: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, image_size, image_size): bilinear with antialiasing (what torchvision's
    Resize does to a PIL image), rounded; ``images`` themselves when they have that size already."""
    if images.shape[-2:] == (image_size, image_size):
        return images
    return torch.cat([to_uint8_rounded(F.interpolate(part.float(), size=(image_size,) * 2, mode="bilinear",
                                                     antialias=True, align_corners=False), (0, 255))
                      for part in images.split(chunk)])
