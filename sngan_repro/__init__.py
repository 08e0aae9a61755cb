"""sngan-repro: reproduce and compare normalization methods for GANs.

The notebook / test API:

- ``compose(overrides)``: the configuration the command line would run with;
- ``build_models(cfg)``: ``(generator, discriminator)`` for a configuration;
- ``build_datamodule(cfg)``: its LightningDataModule;
- ``module.GAN(cfg)`` (``sngan_repro.module.GAN``): the LightningModule; ``train.run(cfg)`` trains one and
  returns it;
- ``module.load_gan(path, device)``: the trained GAN of a checkpoint, in eval mode (docs/extending.md).
"""

from .config import compose, validate
from .data import build_datamodule
from .models import build_models

__all__ = ["compose", "validate", "build_models", "build_datamodule"]
