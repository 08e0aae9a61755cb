"""sngan-repro: reproduce and compare normalization methods for GANs.

The notebook / test API:

- ``compose(overrides)``: the configuration the command line would run with;
- ``build_models(cfg)``: ``(generator, discriminator)`` for a configuration;
- ``build_datamodule(cfg)``: its LightningDataModule;
- ``module.GAN(cfg)`` (``sngan_repro.module.GAN``): the LightningModule; ``train.run(cfg)`` trains one and
  returns it;
- ``load(ckpt, device="auto")``: the trained GAN of a checkpoint, in eval mode (``module.load_gan``);
  ``samples(gan, n)``: its n images as uint8 (n, C, H, W), those the metrics score and ``python -m
  sngan_repro.sample`` writes (docs/extending.md).
"""

from .config import compose, validate
from .data import build_datamodule
from .models import build_models

__all__ = ["compose", "validate", "build_models", "build_datamodule", "load", "samples"]


def load(ckpt, device: str = "auto"):
    """The trained GAN (``sngan_repro.module.GAN``) of a checkpoint written by ``python -m sngan_repro.train``, on
    ``device`` (auto: cuda when there is one) in eval mode; a missing or damaged file is refused in one sentence."""
    from .module import chosen_device, load_gan

    return load_gan(ckpt, chosen_device(str(device)))


def samples(gan, n: int, batch_size: int | None = None):
    """``n`` images of ``gan`` as uint8 (n, C, H, W) on its device: the metrics' fixed codes, the generator in eval
    mode, outputs clamped and truncated to uint8 (``batch_size``: their chunking, by default the run's metrics')."""
    from .sample import sample_images

    return sample_images(gan, n, batch_size)
