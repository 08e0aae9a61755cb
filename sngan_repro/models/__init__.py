"""Generators and discriminators, one module per paper family; built from ``cfg.arch``."""

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
