"""Helpers shared by the architectures."""

from ..errors import ConfigError


def scale_widths(widths, width: float) -> list[int]:
    """Channel counts multiplied by the width multiplier ``arch.width`` (at least one channel each)."""
    if width <= 0:
        raise ConfigError(f"arch.width={width} must be positive.")
    return [max(1, round(c * width)) for c in widths]
