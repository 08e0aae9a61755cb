"""Generators and discriminators, one module per paper family; built from ``cfg.arch``.

The contract every architecture keeps (``conf/arch/<name>.yaml`` names the two classes):

- ``Generator(image_size, channels, latent_dim, width, head, **options)``: ``forward(z)`` maps
  codes (N, latent_dim) to images (N, channels, image_size, image_size) and ends with ``head``
  (an ``sngan_repro.nn.OutputHead``: tanh, sigmoid, BN+tanh or BN+clip).
- ``Discriminator(image_size, channels, norm, width, **options)``: ``forward(x)`` returns raw
  scores (N,), or, for an autoencoder critic (``autoencoder.AutoencoderCritic``, ``output = "energy"``:
  BEGAN, EBGAN), each image's reconstruction energy. It hands every conv / dense layer to
  ``norm.wrap_weight_layer(layer, input_size)`` with the (H, W) of that layer's input (None for dense layers), puts
  ``norm.feature_layer(channels)`` after hidden layers and pads its convolutions with
  ``norm.conv_padding_mode``; it never asks which normalization it was given.
- ``width`` multiplies every channel count; an image size the architecture cannot serve raises
  ``ConfigError`` with one sentence.

The generator's weights can be normalized too (``gen_norm=sn``, Feng, Xu & Li): every conv, transposed conv
and dense layer of any generator goes through ``gen_norm``'s ``wrap_weight_layer`` after it is built.
"""

from omegaconf import DictConfig
from torch import nn

from ..errors import ConfigError
from ..instantiate import instantiate_checked
from ..nn import OutputHead
from ..normalizations import Normalization, build_normalization

# The two networks of a GAN, in the order build_models returns them; also their attribute names on the module.
NETWORKS = ("generator", "discriminator")
_WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
# What a critic normalization may do besides reparametrizing weights; none of it has a meaning in a generator.
_CRITIC_ONLY_HOOKS = ("penalty", "feature_layer", "after_discriminator_update")


def normalize_generator(generator: nn.Module, norm: Normalization, choice: str = "") -> nn.Module:
    """Pass every weight layer of ``generator`` through ``norm.wrap_weight_layer``, in place."""
    critic_only = [hook for hook in _CRITIC_ONLY_HOOKS if getattr(type(norm), hook) is not getattr(Normalization, hook)]
    if critic_only or norm.conv_padding_mode != Normalization.conv_padding_mode:
        raise ConfigError(f"gen_norm={choice or type(norm).__name__} acts on the critic's loss, features, updates or "
                          f"padding, not only on weights; the generator accepts weight normalizations (none, sn).")
    for layer in [m for m in generator.modules() if isinstance(m, _WEIGHT_LAYERS)]:
        if norm.wrap_weight_layer(layer) is not layer:
            raise ConfigError(f"gen_norm={choice or type(norm).__name__} replaces layers instead of reparametrizing "
                              f"their weights; the generator accepts weight normalizations (none, sn).")
    return generator


def build_models(cfg: DictConfig, norm: Normalization | None = None):
    """Return ``(generator, discriminator)`` for a composed config (see ``sngan_repro.compose``).

    ``norm`` is the discriminator's normalization, built from ``cfg.norm`` when not given.
    """
    shape = {"image_size": cfg.dataset.image_size, "channels": cfg.dataset.channels, "width": cfg.arch.width}
    head = OutputHead(cfg.arch.head, cfg.dataset.channels, cfg.arch.output_range, cfg.arch.head_frozen)
    generator = instantiate_checked(cfg.arch.generator, latent_dim=cfg.arch.latent_dim, head=head, **shape)
    normalize_generator(generator, build_normalization(cfg, "gen_norm"), cfg.get("choices", {}).get("gen_norm", ""))
    discriminator = instantiate_checked(cfg.arch.discriminator, norm=norm or build_normalization(cfg), **shape)
    return generator, discriminator
