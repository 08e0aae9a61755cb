"""The small infoGAN-style networks (Chen et al. 2016, App. C.1, the MNIST networks) with which Feng, Xu & Li's
reproducibility report ran its BEGAN, EBGAN and WGAN-GP rows: its code (``BEGAN_EBGAN_WAGAN_GP/BEGAN.py``,
``EBGAN.py``, ``WGAN_GP.py`` in COMP6248-Reproducability-Challenge/SNGAN, built on pytorch-generative-model-collections)
uses one generator for the three and, per method, a critic: a classifier for WGAN-GP, a one-convolution autoencoder
for BEGAN and EBGAN.

Every conv, transposed conv and dense weight starts from N(0, 0.02) with zero bias (that code's
``utils.initialize_weights``; ``init`` here). Any image size divisible by 4 (the report's 28 px: 28 -> 14 -> 7).

Where that code has a bug, these networks follow the papers: its autoencoder critics decode to one channel, which
broadcasts against RGB images in the reconstruction loss (every colour channel is compared with the same grey
output); ours decode to the image's channels (docs/fidelity.md).
"""

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import OutputHead
from ..normalizations import Normalization
from .autoencoder import AutoencoderCritic
from .common import refuse_feature_normalization, scale_widths
from .init import initialize


def _quarter(image_size: int) -> int:
    """Side of the generator's first map (two stride-2 stages reach the image)."""
    if image_size % 4 or image_size < 4:
        raise ConfigError(f"The infoGAN-style networks halve the image twice; dataset.image_size={image_size} must be "
                          f"a multiple of 4 (the report's 28).")
    return image_size // 4


def _up(c_in: int, c_out: int, init: str) -> nn.ConvTranspose2d:
    return initialize(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), init)


class Generator(nn.Module):
    """z -> dense 1024, BN, ReLU -> dense 128 (s/4)^2, BN, ReLU -> 4x4 stride-2 transposed conv 64, BN, ReLU ->
    4x4 stride-2 transposed conv to ``channels`` -> head (tanh). ``widths`` = (1024, 128, 64)."""

    def __init__(self, image_size: int, channels: int, latent_dim: int = 62, width: float = 1.0,
                 head: nn.Module | None = None, widths=(1024, 128, 64), init: str = "normal_0.02"):
        super().__init__()
        base = _quarter(image_size)
        dense, first_map, second_map = scale_widths(widths, width)
        self.project = nn.Sequential(
            initialize(nn.Linear(latent_dim, dense), init), nn.BatchNorm1d(dense), nn.ReLU(),
            initialize(nn.Linear(dense, first_map * base**2), init), nn.BatchNorm1d(first_map * base**2),
            nn.ReLU(), nn.Unflatten(1, (first_map, base, base)))
        self.body = nn.Sequential(_up(first_map, second_map, init), nn.BatchNorm2d(second_map), nn.ReLU(),
                                  _up(second_map, channels, init), head or OutputHead("tanh", channels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z))


class Discriminator(nn.Module):
    """The WGAN-GP row's critic: 4x4 stride-2 conv 64, leaky ReLU 0.2 -> 4x4 stride-2 conv 128, BN, leaky ReLU ->
    dense 1024, BN, leaky ReLU -> dense 1. ``widths`` = (64, 128, 1024).

    The batch norm is the code's (``batch_norm``; Gulrajani et al. 2017, Sec. 4, advise against it in a critic with a
    gradient penalty, docs/fidelity.md), so a normalization that adds feature layers (norm=bn, ln) is refused; every
    conv and dense layer goes through ``norm.wrap_weight_layer``."""

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0,
                 widths=(64, 128, 1024), batch_norm: bool = True, leaky_slope: float = 0.2,
                 init: str = "normal_0.02"):
        super().__init__()
        refuse_feature_normalization("infogan", "batch norm (arch.discriminator.batch_norm)", norm)
        quarter = _quarter(image_size)
        first, second, dense = scale_widths(widths, width)

        def hidden(layer: nn.Module, features: int, norm_layer) -> list[nn.Module]:
            return [layer, *([norm_layer(features)] if batch_norm else []), nn.LeakyReLU(leaky_slope)]

        def conv(c_in: int, c_out: int, size: int) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, 4, 2, 1, padding_mode=norm.conv_padding_mode)
            return norm.wrap_weight_layer(initialize(layer, init), input_size=(size, size))

        self.features = nn.Sequential(
            conv(channels, first, image_size), nn.LeakyReLU(leaky_slope),
            *hidden(conv(first, second, image_size // 2), second, nn.BatchNorm2d), nn.Flatten(),
            *hidden(norm.wrap_weight_layer(initialize(nn.Linear(second * quarter**2, dense), init)), dense,
                    nn.BatchNorm1d))
        self.classifier = norm.wrap_weight_layer(initialize(nn.Linear(dense, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(1)


class AutoencoderDiscriminator(AutoencoderCritic):
    """The BEGAN and EBGAN rows' critic: encoder 4x4 stride-2 conv 64, ReLU -> dense to a ``code``-dimensional
    embedding (no non-linearity: EBGAN's pulling-away term reads it); decoder dense 64 (s/2)^2 [-> BN, ReLU] ->
    4x4 stride-2 transposed conv to ``channels``. ``forward(x)``: each image's energy mean |x - Dec(Enc(x))|^power.

    ``method``/``power``: BEGAN, 1 (an L1 energy, the code's ``torch.mean(torch.abs(D(x) - x))``) or EBGAN, 2 (its
    ``nn.MSELoss()``); ``decoder_norm``: the BN and ReLU after the decoder's dense layer (EBGAN's code has them,
    BEGAN's has neither)."""

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0,
                 method: str = "BEGAN", power: int = 1, hidden: int = 64, code: int = 32, decoder_norm: bool = False,
                 init: str = "normal_0.02"):
        super().__init__(method, power, norm)
        half = _quarter(image_size) * 2
        (hidden,) = scale_widths([hidden], width)
        self.encoder = nn.Sequential(initialize(nn.Conv2d(channels, hidden, 4, 2, 1), init), nn.ReLU(), nn.Flatten(),
                                     initialize(nn.Linear(hidden * half**2, code), init))
        self.decoder = nn.Sequential(
            initialize(nn.Linear(code, hidden * half**2), init),
            *([nn.BatchNorm1d(hidden * half**2), nn.ReLU()] if decoder_norm else []),
            nn.Unflatten(1, (hidden, half, half)), _up(hidden, channels, init))
