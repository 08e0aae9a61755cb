"""EBGAN's critic (Zhao, Mathieu & LeCun 2017, Sec. 2.3 and App. C): a DCGAN-style convolutional autoencoder whose
output is each image's mean squared reconstruction error. Its generator is a DCGAN generator: conf/arch/ebgan.yaml
uses the standard CNN's (``sngan_cnn.Generator``: dense, then 4x4 stride-2 transposed convolutions with BN and ReLU).

The encoder halves the map once per entry of ``widths`` with a 4x4 stride-2 convolution (BN after all but the first,
leaky ReLU 0.2); its last feature map is the embedding the pulling-away term reads. The decoder mirrors it with 4x4
stride-2 transposed convolutions (BN and ReLU, a linear last layer). Any image size divisible by 2^len(widths).
"""

from torch import nn

from ..errors import ConfigError
from ..normalizations import Normalization
from .autoencoder import AutoencoderCritic
from .common import scale_widths


def _halving(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 4, 2, 1)


def _doubling(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)


class Discriminator(AutoencoderCritic):
    """EBGAN's critic: ``forward(x)`` is each image's energy D(x) = mean over pixels of (Dec(Enc(x)) - x)^2, shape
    (N,); the encoder's last feature map, flattened, is the embedding S of the pulling-away term."""

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0,
                 widths=(64, 128, 256)):
        super().__init__("EBGAN", 2, norm)
        if image_size % 2 ** len(widths):
            raise ConfigError(f"EBGAN's critic halves the image {len(widths)} times (one per "
                              f"arch.discriminator.widths entry); dataset.image_size={image_size} must be divisible "
                              f"by {2 ** len(widths)}.")
        widths = scale_widths(widths, width)
        encoder: list[nn.Module] = [_halving(channels, widths[0]), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            encoder += [_halving(c_in, c_out), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        decoder: list[nn.Module] = []
        for c_in, c_out in zip(widths[:0:-1], widths[-2::-1]):
            decoder += [_doubling(c_in, c_out), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder, _doubling(widths[0], channels))
