"""Mullery & Whelan's iWGAN (WGAN-GP) generator and critic, as in the authors' Keras notebook (the paper's Sec. 4
names the iWGAN of Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", and the paper's appendix gives the
training regime): the network in which they compare the generator output heads tanh, bn_tanh and bn_clip on 32 px
CIFAR-10 frogs.

Keras defaults are kept where the notebook relies on them: Glorot-uniform weights with zero biases
(``init: xavier_uniform``) and "same" padding, which for the critic's stride-2 convolutions pads the odd pixel
after (30 -> 15 -> 8 -> 4 at 32 px, so the dense layer sees 1024 x 4 x 4 = 16,384 features).
"""

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import OutputHead
from ..normalizations import Normalization
from .common import SameConv2d, refuse_feature_normalization, scale_widths
from .init import initialize

# Kernels of the generator's three (upsample x2, conv, ReLU, BN) stages: 512 3x3, 256 5x5, 128 5x5.
_UPSAMPLING_KERNELS = (3, 5, 5)
# (kernel, stride, Keras padding) of the critic's convolutions: the first "valid" (32 -> 30), then "same".
_CRITIC_CONVS = ((3, 1, "valid"), (4, 2, "same"), (4, 2, "same"), (4, 2, "same"))


def _base_size(image_size: int) -> int:
    """Side of the generator's first map: three x2 upsamplings reach the image; the critic needs >= 16 px."""
    if image_size % 8 or image_size < 16:
        raise ConfigError(f"arch=iwgan needs a dataset.image_size that is a multiple of 8 and at least 16 "
                          f"(32 for CIFAR-10); got {image_size}.")
    return image_size // 8


def _check_length(name: str, widths, expected: int) -> None:
    if len(widths) != expected:
        raise ConfigError(f"arch.{name}.widths needs {expected} entries; got {list(widths)}.")


def _conv_relu_bn(c_in: int, c_out: int, kernel: int, init: str) -> list[nn.Module]:
    """A stride-1 "same" conv, ReLU, BN: BN comes after ReLU in the notebook."""
    conv = initialize(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), init)
    return [conv, nn.ReLU(), nn.BatchNorm2d(c_out)]


class Generator(nn.Module):
    """z (64) -> dense 4x4x1024, ReLU, BN -> conv 5x5 1024, ReLU, BN -> 3 x [nearest upsample x2, conv, ReLU, BN]
    (512 3x3, 256 5x5, 128 5x5) -> conv 7x7 -> channels -> head (tanh; the paper's variable: tanh, bn_tanh, bn_clip).

    Mullery & Whelan give no activation after the 5x5 conv; it gets ReLU, BN like every other hidden layer (their
    notebook builds on Chollet's GAN, where that conv has its activation), as two linear maps in a row would collapse
    into one.
    """

    def __init__(self, image_size: int, channels: int, latent_dim: int = 64, width: float = 1.0,
                 head: nn.Module | None = None, widths=(1024, 512, 256, 128), init: str = "xavier_uniform"):
        super().__init__()
        _check_length("generator", widths, len(_UPSAMPLING_KERNELS) + 1)
        base = _base_size(image_size)
        widths = scale_widths(widths, width)
        self.project = initialize(nn.Linear(latent_dim, widths[0] * base * base), init)
        layers: list[nn.Module] = [nn.Unflatten(1, (widths[0], base, base)), nn.ReLU(), nn.BatchNorm2d(widths[0]),
                                   *_conv_relu_bn(widths[0], widths[0], 5, init)]
        for c_in, c_out, kernel in zip(widths[:-1], widths[1:], _UPSAMPLING_KERNELS):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv_relu_bn(c_in, c_out, kernel, init)]
        layers += [initialize(nn.Conv2d(widths[-1], channels, 7, padding=3), init),
                   head or OutputHead("tanh", channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z))


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm of each position's channel vector, per-channel gain and bias: the notebook's Keras
    LayerNormalization (axis -1 of channels-last maps, ε 1e-6). nn.GroupNorm(1, c) would instead normalize over
    (C, H, W) jointly, as Gulrajani et al.'s code does for the layer norm that "Improved Training of Wasserstein
    GANs" (2017, Sec. 4) recommends in the critic in place of batch norm."""

    def __init__(self, num_channels: int):
        super().__init__(num_channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class Critic(nn.Module):
    """conv 3x3 128 (valid), conv 4x4 s2 256, 512, 1024 ("same"), each -> layer norm over channels -> leaky ReLU
    0.2; dense -> 1. No BN.

    The layer norm is part of the paper's critic, so it is built in, and a normalization that would add its own
    feature layer (norm=bn / ln) is refused: a second feature normalization on the same activations would not be
    this critic any more. Every conv / dense layer goes through ``norm.wrap_weight_layer`` (e.g. norm=sn on top;
    the paper's own setting is norm=gp with loss=wgan); the "same" padding uses ``norm.conv_padding_mode``.
    """

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0,
                 widths=(128, 256, 512, 1024), leaky_slope: float = 0.2, init: str = "xavier_uniform"):
        super().__init__()
        _check_length("discriminator", widths, len(_CRITIC_CONVS))
        _base_size(image_size)
        refuse_feature_normalization("iwgan", "layer norm after every conv", norm)
        layers: list[nn.Module] = []
        c_in, size = channels, image_size
        for c_out, (kernel, stride, padding) in zip(scale_widths(widths, width), _CRITIC_CONVS):
            if padding == "same":
                conv = SameConv2d(c_in, c_out, kernel, stride, size, norm.conv_padding_mode)
            else:
                conv = nn.Conv2d(c_in, c_out, kernel, stride)
            conv = norm.wrap_weight_layer(initialize(conv, init), input_size=(size, size))
            layers += [conv, ChannelLayerNorm(c_out), nn.LeakyReLU(leaky_slope)]
            c_in, size = c_out, (-(-size // stride) if padding == "same" else size - kernel + 1)
        self.features = nn.Sequential(*layers)
        self.classifier = norm.wrap_weight_layer(initialize(nn.Linear(c_in * size * size, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1)).squeeze(1)
