"""BEGAN's networks (Berthelot, Schumm & Metz 2017, Sec. 3.5 and Fig. 1): an autoencoder critic whose output is
each image's reconstruction loss, and a generator with the architecture of the critic's decoder.

Both are built from 3x3 convolutions with ELU, two per scale, no batch norm: the encoder down-samples with stride-2
convolutions while its channels grow linearly (n, 2n, 3n, ...), ends in a dense embedding h with no non-linearity,
and the decoder mirrors it from a small n-channel map with nearest-neighbour up-sampling. Any image size
``start * 2**scales`` with a start map of 4 to 8 pixels is served (8 for 32 and 64 px, 6 for 24 and 48, 7 for 28).
"""

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import OutputHead
from ..normalizations import Normalization
from .autoencoder import AutoencoderCritic
from .common import scale_widths


def _start_and_scales(image_size: int) -> tuple[int, int]:
    """(the start map's size, the number of 2x scales) with ``image_size = start * 2**scales``, 4 <= start <= 8."""
    start, scales = image_size, 0
    while start > 8 and start % 2 == 0:
        start, scales = start // 2, scales + 1
    if not 4 <= start <= 8:
        raise ConfigError(f"BEGAN's networks need dataset.image_size = s * 2^k with s from 4 to 8 (e.g. 24, 28, 32, "
                          f"48, 64); got {image_size}.")
    return start, scales


def _elu_convs(c_in: int, c_out: int) -> list[nn.Module]:
    """Two 3x3 convolutions with ELU: one scale of BEGAN's encoder or decoder."""
    return [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.ELU(), nn.Conv2d(c_out, c_out, 3, 1, 1), nn.ELU()]


class Decoder(nn.Module):
    """h -> dense -> start x start x n -> [two 3x3 convs with ELU, nearest 2x up-sampling] per scale -> two 3x3
    convs with ELU -> 3x3 conv to ``channels``."""

    def __init__(self, image_size: int, channels: int, hidden: int, n: int):
        super().__init__()
        self.start, scales = _start_and_scales(image_size)
        self.project = nn.Linear(hidden, n * self.start**2)
        layers: list[nn.Module] = []
        for _ in range(scales):
            layers += [*_elu_convs(n, n), nn.Upsample(scale_factor=2, mode="nearest")]
        self.body = nn.Sequential(*layers, *_elu_convs(n, n), nn.Conv2d(n, channels, 3, 1, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(h).view(h.shape[0], -1, self.start, self.start))


class Encoder(nn.Module):
    """image -> 3x3 conv to n with ELU -> per scale: two 3x3 convs with ELU, then a stride-2 3x3 conv to the next
    width (n, 2n, 3n, ...) with ELU -> two 3x3 convs with ELU -> dense embedding h (no non-linearity)."""

    def __init__(self, image_size: int, channels: int, hidden: int, n: int):
        super().__init__()
        start, scales = _start_and_scales(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, n, 3, 1, 1), nn.ELU()]
        for scale in range(scales):
            c_in, c_out = n * (scale + 1), n * (scale + 2)
            layers += [*_elu_convs(c_in, c_in), nn.Conv2d(c_in, c_out, 3, 2, 1), nn.ELU()]
        layers += _elu_convs(n * (scales + 1), n * (scales + 1))
        self.body = nn.Sequential(*layers)
        self.embed = nn.Linear(n * (scales + 1) * start**2, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x).flatten(1))


class Generator(nn.Module):
    """z -> the decoder's architecture (its own weights) -> ``head``."""

    def __init__(self, image_size: int, channels: int, latent_dim: int = 64, width: float = 1.0, n: int = 64,
                 head: nn.Module | None = None):
        super().__init__()
        (n,) = scale_widths([n], width)
        self.decoder = Decoder(image_size, channels, latent_dim, n)
        self.head = head or OutputHead("tanh", channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(z))


class Discriminator(AutoencoderCritic):
    """BEGAN's critic: ``forward(x)`` is each image's L1 reconstruction loss L(x) = mean |x - Dec(Enc(x))| (eta = 1,
    the paper's choice), shape (N,); the encoder's output is the embedding h."""

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0, n: int = 64,
                 hidden: int = 64):
        super().__init__("BEGAN", 1, norm)
        (n,) = scale_widths([n], width)
        self.encoder = Encoder(image_size, channels, hidden, n)
        self.decoder = Decoder(image_size, channels, hidden, n)
