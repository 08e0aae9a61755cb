"""The standard CNN of Miyato et al. 2018 (Table 3), for any image size divisible by 8.

Kligvasser & Michaeli's SAN paper (Table 4) uses the same network with 3x3 kernels throughout:
``up_kernel=3`` / ``down_kernel=3`` (conf/arch/san_cnn.yaml).
"""

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import Conv2d, OutputHead
from ..normalizations import Normalization
from .common import scale_widths
from .init import initialize

# Strides of the discriminator's seven convolutions; the stride-1 ones are 3x3, every stride-2 one
# (kernel ``down_kernel``) halves the map.
_DISCRIMINATOR_STRIDES = (1, 2, 1, 2, 1, 2, 1)


def _base_size(image_size: int) -> int:
    if image_size % 8 or image_size < 8:
        raise ConfigError(
            f"The standard CNN needs an image size divisible by 8 (32 for CIFAR-10, 48 for STL-10); "
            f"got dataset.image_size={image_size}."
        )
    return image_size // 8


def _same_padding(kernel: int) -> int:
    """Padding with which a stride-2 conv halves an even size (and a stride-1 conv of odd kernel keeps it)."""
    return (kernel - 1) // 2


# The generator's hidden normalization: BN (Miyato et al.'s Table 3), or layer norm over each sample's (C, H, W) with
# per-channel gain and bias (the generator of Feng, Xu & Li's LN row in their code, BN and LN DCGAN/dcgan_ln/net.py)
_GENERATOR_FEATURE_NORMS = {"batch": nn.BatchNorm2d, "layer": lambda channels: nn.GroupNorm(1, channels)}


class Generator(nn.Module):
    """z -> dense -> (M/8)^2 x 512 -> BN, ReLU -> 3 x [deconv kxk s2, BN, ReLU] -> conv 3x3 -> head (tanh).

    k = ``up_kernel``: 4 in Miyato et al.'s Table 3, 3 in SAN's Table 4; ``feature_norm``: ``batch`` (BN) or
    ``layer`` (layer norm in place of every BN).
    """

    def __init__(self, image_size: int, channels: int, latent_dim: int = 128, width: float = 1.0,
                 widths=(512, 256, 128, 64), up_kernel: int = 4, init: str = "default",
                 head: nn.Module | None = None, feature_norm: str = "batch"):
        super().__init__()
        if feature_norm not in _GENERATOR_FEATURE_NORMS:
            raise ConfigError(f"arch.generator.feature_norm={feature_norm!r} is not one of "
                              f"{', '.join(_GENERATOR_FEATURE_NORMS)}.")
        feature_layer = _GENERATOR_FEATURE_NORMS[feature_norm]
        self.base = _base_size(image_size)
        widths = scale_widths(widths, width)
        self.project = initialize(nn.Linear(latent_dim, widths[0] * self.base**2), init)
        padding = _same_padding(up_kernel)
        # output = 2 (input - 1) - 2 padding + kernel + output_padding = 2 input (output_padding 1 for 3x3)
        output_padding = 2 + 2 * padding - up_kernel
        layers: list[nn.Module] = [feature_layer(widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            deconv = nn.ConvTranspose2d(c_in, c_out, up_kernel, 2, padding, output_padding)
            layers += [initialize(deconv, init), feature_layer(c_out), nn.ReLU()]
        layers += [initialize(nn.Conv2d(widths[-1], channels, 3, 1, 1), init), head or OutputHead("tanh", channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z)
        return self.body(x.view(x.shape[0], -1, self.base, self.base))


class Discriminator(nn.Module):
    """Seven convs (3x3 s1 / kxk s2 alternating) with leaky ReLU, then dense -> 1.

    k = ``down_kernel``: 4 in Miyato et al.'s Table 3, 3 in SAN's Table 4.
    """

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0,
                 widths=(64, 64, 128, 128, 256, 256, 512), down_kernel: int = 4, leaky_slope: float = 0.1,
                 init: str = "default"):
        super().__init__()
        if len(widths) != len(_DISCRIMINATOR_STRIDES):
            raise ConfigError(
                f"arch.discriminator.widths needs {len(_DISCRIMINATOR_STRIDES)} entries; got {list(widths)}."
            )
        base = _base_size(image_size)
        widths = scale_widths(widths, width)
        layers: list[nn.Module] = []
        c_in, size = channels, image_size
        for index, (c_out, stride) in enumerate(zip(widths, _DISCRIMINATOR_STRIDES)):
            kernel = down_kernel if stride == 2 else 3
            conv = Conv2d(c_in, c_out, kernel, stride, _same_padding(kernel), padding_mode=norm.conv_padding_mode)
            layers.append(norm.wrap_weight_layer(initialize(conv, init), input_size=(size, size)))
            if index > 0:  # the input layer is never feature-normalized (Miyato et al.'s baselines)
                layers.append(norm.feature_layer(c_out))
            layers.append(nn.LeakyReLU(leaky_slope))
            c_in, size = c_out, size // stride
        self.features = nn.Sequential(*layers)
        self.classifier = norm.wrap_weight_layer(initialize(nn.Linear(c_in * base * base, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1)).squeeze(1)
