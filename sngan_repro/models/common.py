"""Helpers shared by the architectures."""

import torch
from torch import nn

from ..errors import ConfigError
from ..nn.conv import padded_conv2d
from ..normalizations import Normalization


def scale_widths(widths, width: float) -> list[int]:
    """Channel counts multiplied by the width multiplier ``arch.width`` (at least one channel each)."""
    if width <= 0:
        raise ConfigError(f"arch.width={width} must be positive.")
    return [max(1, round(c * width)) for c in widths]


def refuse_feature_normalization(arch: str, own: str, norm: Normalization) -> None:
    """A critic with a feature normalization of its own refuses a norm= that adds feature layers (bn, ln): a second
    one on the same activations would not be the paper's network nor the baseline's."""
    if not isinstance(norm.feature_layer(1), nn.Identity):
        raise ConfigError(f"arch={arch}'s critic has its own {own}; a normalization that adds feature layers (norm=bn, "
                          f"ln) would stack a second one; use norm=gp, sn, san, wn, ortho, clip or none.")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow/Keras "same" padding (before, after) of one side: the output has ceil(size / stride)
    positions and the odd pixel of an odd total goes after (so 15 -> 8 with a 4x4 stride-2 kernel)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A convolution with Keras' "same" padding for a ``size`` x ``size`` input, done inside its forward (as
    nn.Conv2d pads) so that hooks and normalizations see the layer's unpadded input; ``padding_mode`` as
    nn.Conv2d's (zeros, circular, ...)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, size: int, padding_mode: str = "zeros"):
        super().__init__(c_in, c_out, kernel, stride)
        before, after = same_padding(size, kernel, stride)
        self.same_pad, self.same_pad_mode = (before, after, before, after), padding_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return padded_conv2d(x, self.weight, self.bias, self.same_pad, self.same_pad_mode, self.stride, self.dilation,
                             self.groups)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, same_pad={self.same_pad}, mode={self.same_pad_mode}"
