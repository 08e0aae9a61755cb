"""sngan-repro: reproduce and compare normalization methods for GANs.

The notebook / test API:

- ``compose(overrides)``: the configuration the command line would run with;
- ``build_models(cfg)``: ``(generator, discriminator)`` for a configuration;
- ``build_datamodule(cfg)``: its LightningDataModule;
- ``GAN(cfg)``: the LightningModule; ``train.run(cfg)`` trains it.
"""

from .config import compose, validate
from .data import build_datamodule
from .models import build_models

__all__ = ["compose", "validate", "build_models", "build_datamodule"]
