"""LightningDataModules, one per dataset family; built from ``cfg.dataset``."""

from .base import ImageDataModule, InMemoryImages, ResumableSampler
from .cifar10 import CIFAR10DataModule
from .digits import DigitsDataModule

__all__ = [
    "ImageDataModule", "InMemoryImages", "ResumableSampler", "CIFAR10DataModule", "DigitsDataModule",
    "build_datamodule",
]


def build_datamodule(cfg) -> ImageDataModule:
    """The datamodule of ``cfg.dataset``, batching and scaling for the configured run and architecture."""
    from ..config import instantiate_checked

    return instantiate_checked(cfg.dataset, batch_size=cfg.train.batch_size,
                               value_range=list(cfg.arch.output_range), seed=cfg.seed)
