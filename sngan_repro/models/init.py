"""Weight initialization schemes named in the architecture configs."""

import math

from torch import nn

from ..errors import ConfigError

# Glorot & Bengio's uniform init, U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)); Miyato et al.'s
# ResNets use gain sqrt(2) for the 3x3 convs inside residual blocks (followed by ReLU) and 1 elsewhere.
_XAVIER_GAINS = {"xavier_uniform": 1.0, "xavier_uniform_relu": math.sqrt(2.0)}
INIT_SCHEMES = ("default", "normal_0.02", *_XAVIER_GAINS)


def initialize(layer: nn.Module, scheme: str) -> nn.Module:
    """Initialize one conv / dense layer in place, before any weight normalization wraps it.

    ``default`` keeps PyTorch's initialization; ``normal_0.02`` draws weights from N(0, 0.02)
    with zero bias (the DCGAN convention the authors' SNGAN code uses); ``xavier_uniform`` and
    ``xavier_uniform_relu`` (gain 1 and sqrt(2)) use Xavier-uniform weights with zero bias.
    """
    if scheme == "default":
        return layer
    if scheme == "normal_0.02":
        nn.init.normal_(layer.weight, 0.0, 0.02)
    elif scheme in _XAVIER_GAINS:
        nn.init.xavier_uniform_(layer.weight, gain=_XAVIER_GAINS[scheme])
    else:
        raise ConfigError(f"Unknown init scheme {scheme!r}; accepted: {', '.join(INIT_SCHEMES)}.")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer
