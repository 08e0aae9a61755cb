"""The standard CNN of Miyato et al. 2018 (Table 3), for any image size divisible by 8."""

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import OutputHead
from ..normalizations import Normalization
from .common import scale_widths
from .init import initialize

# (kernel, stride) of the discriminator's seven convolutions; every stride-2 conv halves the map.
_DISCRIMINATOR_CONVS = ((3, 1), (4, 2), (3, 1), (4, 2), (3, 1), (4, 2), (3, 1))


def _base_size(image_size: int) -> int:
    if image_size % 8 or image_size < 8:
        raise ConfigError(
            f"The standard CNN needs an image size divisible by 8 (32 for CIFAR-10, 48 for STL-10); "
            f"got dataset.image_size={image_size}."
        )
    return image_size // 8


class Generator(nn.Module):
    """z -> dense -> (M/8)^2 x 512 -> BN, ReLU -> 3 x [deconv 4x4 s2, BN, ReLU] -> conv 3x3 -> head (tanh)."""

    def __init__(self, image_size: int, channels: int, latent_dim: int = 128, width: float = 1.0,
                 widths=(512, 256, 128, 64), init: str = "default", head: nn.Module | None = None):
        super().__init__()
        self.base = _base_size(image_size)
        widths = scale_widths(widths, width)
        self.project = initialize(nn.Linear(latent_dim, widths[0] * self.base**2), init)
        layers: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [initialize(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), init), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [initialize(nn.Conv2d(widths[-1], channels, 3, 1, 1), init), head or OutputHead("tanh", channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z)
        return self.body(x.view(x.shape[0], -1, self.base, self.base))


class Discriminator(nn.Module):
    """Seven convs (3x3 s1 / 4x4 s2 alternating) with leaky ReLU, then dense -> 1."""

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0,
                 widths=(64, 64, 128, 128, 256, 256, 512), leaky_slope: float = 0.1, init: str = "default"):
        super().__init__()
        if len(widths) != len(_DISCRIMINATOR_CONVS):
            raise ConfigError(
                f"arch.discriminator.widths needs {len(_DISCRIMINATOR_CONVS)} entries; got {list(widths)}."
            )
        base = _base_size(image_size)
        widths = scale_widths(widths, width)
        layers: list[nn.Module] = []
        c_in, size = channels, image_size
        for index, (c_out, (kernel, stride)) in enumerate(zip(widths, _DISCRIMINATOR_CONVS)):
            conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=1, padding_mode=norm.conv_padding_mode)
            layers.append(norm.wrap_weight_layer(initialize(conv, init), input_size=(size, size)))
            if index > 0:  # the input layer is never feature-normalized (Miyato et al.'s baselines)
                layers.append(norm.feature_layer(c_out))
            layers.append(nn.LeakyReLU(leaky_slope))
            c_in, size = c_out, size // stride
        self.features = nn.Sequential(*layers)
        self.classifier = norm.wrap_weight_layer(initialize(nn.Linear(c_in * base * base, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1)).squeeze(1)
