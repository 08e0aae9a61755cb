"""Generators and discriminators, one module per paper family; built from ``cfg.arch``.

The contract every architecture keeps (``conf/arch/<name>.yaml`` names the two classes):

- ``Generator(image_size, channels, latent_dim, width, head, **options)``: ``forward(z)`` maps
  codes (N, latent_dim) to images (N, channels, image_size, image_size) and ends with ``head``
  (an ``sngan_repro.nn.OutputHead``: tanh, sigmoid, BN+tanh or BN+clip).
- ``Discriminator(image_size, channels, norm, width, **options)``: ``forward(x)`` returns raw
  scores (N,). It hands every conv / dense layer to ``norm.wrap_weight_layer(layer,
  input_size)`` with the (H, W) of that layer's input (None for dense layers), puts
  ``norm.feature_layer(channels)`` after hidden layers and pads its convolutions with
  ``norm.conv_padding_mode``; it never asks which normalization it was given.
- ``width`` multiplies every channel count; an image size the architecture cannot serve raises
  ``ConfigError`` with one sentence.
"""

from omegaconf import DictConfig

from ..config import instantiate_checked
from ..errors import ConfigError
from ..nn import OutputHead
from ..normalizations import Normalization


def build_normalization(cfg: DictConfig) -> Normalization:
    norm = instantiate_checked(cfg.norm)
    if not isinstance(norm, Normalization):
        raise ConfigError(f"norm._target_={cfg.norm.get('_target_')!r} is not a sngan_repro Normalization.")
    return norm


def build_models(cfg: DictConfig, norm: Normalization | None = None):
    """Return ``(generator, discriminator)`` for a composed config (see ``sngan_repro.compose``).

    ``norm`` is the discriminator's normalization, built from ``cfg.norm`` when not given.
    """
    shape = {"image_size": cfg.dataset.image_size, "channels": cfg.dataset.channels, "width": cfg.arch.width}
    head = OutputHead(cfg.arch.head, cfg.dataset.channels, cfg.arch.output_range, cfg.arch.head_frozen)
    generator = instantiate_checked(cfg.arch.generator, latent_dim=cfg.arch.latent_dim, head=head, **shape)
    discriminator = instantiate_checked(cfg.arch.discriminator, norm=norm or build_normalization(cfg), **shape)
    return generator, discriminator
