"""LightningDataModules, one per dataset family; built from ``cfg.dataset``."""

from .base import ImageDataModule, InMemoryImages, ResumableSampler, heldout_split
from .celeba import CelebADataModule
from .cifar10 import CIFAR10DataModule
from .digits import DigitsDataModule
from .imagefolder import ImageFolderDataModule
from .lsun import LSUNDataModule
from .stl10 import STL10DataModule
from .synthetic import SyntheticDataModule

__all__ = [
    "ImageDataModule", "InMemoryImages", "ResumableSampler", "heldout_split", "CIFAR10DataModule",
    "DigitsDataModule", "STL10DataModule", "CelebADataModule", "LSUNDataModule", "ImageFolderDataModule",
    "SyntheticDataModule", "build_datamodule",
]


def build_datamodule(cfg) -> ImageDataModule:
    """The datamodule of ``cfg.dataset``, batching and scaling for the configured run and architecture."""
    from ..instantiate import instantiate_checked

    return instantiate_checked(cfg.dataset, batch_size=cfg.train.batch_size,
                               value_range=list(cfg.arch.output_range), seed=cfg.seed)
