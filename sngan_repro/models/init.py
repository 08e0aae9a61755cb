"""Weight initialization schemes named in the architecture configs."""

from torch import nn

from ..errors import ConfigError

INIT_SCHEMES = ("default", "normal_0.02")


def initialize(layer: nn.Module, scheme: str) -> nn.Module:
    """Initialize one conv / dense layer in place, before any weight normalization wraps it.

    ``default`` keeps PyTorch's initialization; ``normal_0.02`` draws weights from N(0, 0.02)
    with zero bias (the DCGAN convention the authors' SNGAN code uses).
    """
    if scheme == "default":
        return layer
    if scheme == "normal_0.02":
        nn.init.normal_(layer.weight, 0.0, 0.02)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
        return layer
    raise ConfigError(f"Unknown init scheme {scheme!r}; accepted: {', '.join(INIT_SCHEMES)}.")
