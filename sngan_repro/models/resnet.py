"""Residual GANs: Miyato et al. 2018's appendix ResNets (CIFAR-10 at 32 px, STL-10 at 48 px) and the
SAN paper's (Kligvasser & Michaeli, Tables 5 and 6), built from one set of blocks.

The layout for each image size comes from the config (conf/arch/sngan_resnet.yaml, san_resnet.yaml):
``Generator(layouts={size: [dense width, up-block widths...]})`` and
``Discriminator(layouts={size: {widths: [...], down_blocks: k}})`` (the first k blocks halve the map).
SAN's critics differ from Miyato's by global average instead of sum pooling and, at 48 px, by
dropping the last (1024-channel) block.
"""

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import Conv2d, OutputHead
from ..normalizations import Normalization
from .common import scale_widths
from .init import initialize

POOLINGS = {"sum": torch.sum, "average": torch.mean}


def _layout(layouts, image_size: int, node: str):
    layout = layouts.get(image_size)
    if layout is None:
        sizes = ", ".join(str(size) for size in sorted(layouts))
        raise ConfigError(f"The ResNet layouts (arch.{node}.layouts) serve image sizes {sizes}; "
                          f"got dataset.image_size={image_size}.")
    return layout


def _conv(c_in: int, c_out: int, kernel: int, init: str, padding_mode: str = "zeros") -> nn.Conv2d:
    """A stride-1 'same' conv (3x3 in the residual branches, 1x1 in the shortcuts), initialized."""
    return initialize(Conv2d(c_in, c_out, kernel, padding=kernel // 2, padding_mode=padding_mode), init)


def _critic_conv(norm: Normalization, c_in: int, c_out: int, kernel: int, init: str, side: int) -> nn.Module:
    """A critic conv, initialized, then normalized for its (side x side) input."""
    return norm.wrap_weight_layer(_conv(c_in, c_out, kernel, init, norm.conv_padding_mode), input_size=(side, side))


def _upsample() -> nn.Module:
    # nearest neighbour, as in Miyato et al.'s code (a common port wrongly uses bilinear)
    return nn.Upsample(scale_factor=2, mode="nearest")


class UpBlock(nn.Module):
    """Generator ResBlock: BN, ReLU, nearest x2, conv 3x3, BN, ReLU, conv 3x3; shortcut: nearest x2, conv 1x1."""

    def __init__(self, c_in: int, c_out: int, init: str, residual_init: str):
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), _upsample(), _conv(c_in, c_out, 3, residual_init),
            nn.BatchNorm2d(c_out), nn.ReLU(), _conv(c_out, c_out, 3, residual_init),
        )
        self.shortcut = nn.Sequential(_upsample(), _conv(c_in, c_out, 1, init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class DownBlock(nn.Module):
    """Critic ResBlock (no BN; SAN Tables 5, 6 remove it): ReLU, conv 3x3, ReLU, conv 3x3, [avgpool 2];
    shortcut: identity, or conv 1x1 then [avgpool 2] when the block pools or changes the width.

    ``first``: Miyato et al.'s block on the image itself: no leading ReLU, its first conv is not
    feature-normalized, and its shortcut pools before the 1x1 conv. ``size`` is the input's side.
    """

    def __init__(self, c_in: int, c_out: int, size: int, downsample: bool, first: bool, norm: Normalization,
                 init: str, residual_init: str):
        super().__init__()
        pool = [nn.AvgPool2d(2)] if downsample else []
        if first:
            layers = [_critic_conv(norm, c_in, c_out, 3, residual_init, size)]
        else:
            layers = [nn.ReLU(), _critic_conv(norm, c_in, c_out, 3, residual_init, size), norm.feature_layer(c_out)]
        layers += [nn.ReLU(), _critic_conv(norm, c_out, c_out, 3, residual_init, size), norm.feature_layer(c_out),
                   *pool]
        self.residual = nn.Sequential(*layers)
        if first:
            pooled = size // 2 if downsample else size
            self.shortcut = nn.Sequential(*pool, _critic_conv(norm, c_in, c_out, 1, init, pooled))
        elif downsample or c_in != c_out:
            self.shortcut = nn.Sequential(_critic_conv(norm, c_in, c_out, 1, init, size), *pool)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class Generator(nn.Module):
    """z -> dense -> b x b x widths[0] -> up-blocks widths[1:] -> BN, ReLU, conv 3x3 -> head (tanh).

    b = image_size / 2^(number of up-blocks): 4 x 4 x 256 and three blocks of 256 at 32 px, 6 x 6 x 512
    and blocks 256, 128, 64 at 48 px (Miyato et al.; SAN Tables 5, 6). Xavier-uniform init, gain
    sqrt(2) (``residual_init``) for the blocks' 3x3 convs, 1 (``init``) for the rest.
    """

    def __init__(self, image_size: int, channels: int, latent_dim: int = 128, width: float = 1.0, *, layouts,
                 init: str = "xavier_uniform", residual_init: str = "xavier_uniform_relu",
                 head: nn.Module | None = None):
        super().__init__()
        widths = scale_widths(_layout(layouts, image_size, "generator"), width)
        self.base = image_size >> (len(widths) - 1)
        if self.base << (len(widths) - 1) != image_size:
            raise ConfigError(f"arch.generator.layouts[{image_size}] has {len(widths) - 1} up-blocks, which cannot "
                              f"reach dataset.image_size={image_size} by doubling.")
        self.project = initialize(nn.Linear(latent_dim, widths[0] * self.base**2), init)
        blocks = [UpBlock(c_in, c_out, init, residual_init) for c_in, c_out in zip(widths[:-1], widths[1:])]
        self.body = nn.Sequential(
            *blocks, nn.BatchNorm2d(widths[-1]), nn.ReLU(), _conv(widths[-1], channels, 3, init),
            head or OutputHead("tanh", channels),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z)
        return self.body(x.view(x.shape[0], -1, self.base, self.base))


class Discriminator(nn.Module):
    """Down-blocks, ReLU, global pooling over positions, dense -> 1.

    Miyato et al.: blocks down 128, down 128, 128, 128 at 32 px; down 64, 128, 256, 512 then 1024 at
    48 px; global sum pooling; dense without bias. SAN (Tables 5, 6): global average pooling and, at
    48 px, no 1024 block. Xavier-uniform init, gain sqrt(2) for the blocks' 3x3 convs, 1 for the rest.
    """

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0, *, layouts,
                 pooling: str = "sum", classifier_bias: bool = False, init: str = "xavier_uniform",
                 residual_init: str = "xavier_uniform_relu"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"arch.discriminator.pooling={pooling!r} is not one of {', '.join(POOLINGS)}.")
        layout = _layout(layouts, image_size, "discriminator")
        blocks: list[nn.Module] = []
        c_in, size = channels, image_size
        for index, c_out in enumerate(scale_widths(layout["widths"], width)):
            downsample = index < layout["down_blocks"]
            blocks.append(DownBlock(c_in, c_out, size, downsample, index == 0, norm, init, residual_init))
            c_in, size = c_out, size // 2 if downsample else size
        self.features = nn.Sequential(*blocks, nn.ReLU())
        self.pooling = pooling
        self.classifier = norm.wrap_weight_layer(initialize(nn.Linear(c_in, 1, bias=classifier_bias), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = POOLINGS[self.pooling](self.features(x), dim=(2, 3))
        return self.classifier(pooled).squeeze(1)
